"""Answering a client's request: run the command from the verb table, turn any refusal or bug
into an error reply. One implementation for the socket server (server.py) and the
in-process connection of `sched --simulate` (inprocess.py).

A batch of submissions (`job` commands, what a scheduler sends) takes a path of its own: each
command is bound and its job submitted in turn, in this loop turn, and then the batch waits
once for the journal to hold them all (Controller.durable_submits), not once per job in a task
of its own; each job's reply is what `job` alone would have answered.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .commands import CommandResult
from .errors import CommandError, ErrorCode
from .model import Job
from .verbs import TABLE, job_result, job_spec
from .wire import BATCHABLE, Reply, Request, reply_object, success_object

log = logging.getLogger(__name__)

__all__ = ["answer", "answer_batch"]

#: The verb of a submission, which a batch submits without a task per command.
SUBMIT = "job"


async def answer(session: Any, request_id: int, argv: tuple[str, ...]) -> Reply:
    """The reply to one command run for `session` (a verbs.Session)."""
    try:
        result: CommandResult = await TABLE.run(session, list(argv))
    except Exception as exc:
        return _failure(request_id, argv, exc)
    return Reply.success(request_id, result.text, result.data)


def _failure(request_id: int, argv: tuple[str, ...], exc: Exception) -> Reply:
    """A refusal's reply; a bug is logged and reported, and serving goes on."""
    if isinstance(exc, CommandError):
        return Reply.failure(request_id, exc.code, exc.message, exc.data)
    log.error("command %r failed", list(argv), exc_info=exc)
    return Reply.failure(request_id, ErrorCode.INTERNAL,
                         f"internal error in pcontrol: {type(exc).__name__}: {exc}")


async def answer_batch(session: Any, request: Request) -> Reply:
    """The commands of a batch, in order (submissions share one wait for the journal; any
    other batchable command runs without waiting for the others); one reply holding theirs,
    in order."""
    replies: list[Reply | asyncio.Future[Reply] | dict[str, Any] | None] = []
    submitted: list[tuple[int, Job, dict[str, Any], tuple[str, ...]]] = []
    for argv in request.batch:
        if argv[0] == SUBMIT:
            try:
                _, args = TABLE.bind(list(argv))
                job = session.controller.submit(job_spec(args))
            except Exception as exc:
                replies.append(_failure(request.id, argv, exc))
                continue
            submitted.append((len(replies), job, args, argv))
            replies.append(None)
        elif argv[0] in BATCHABLE:
            replies.append(asyncio.ensure_future(answer(session, request.id, argv)))
        else:
            replies.append(Reply.failure(
                request.id, ErrorCode.USAGE,
                f'"{argv[0]}" cannot be batched (a batch carries only: {", ".join(sorted(BATCHABLE))})'))
    if submitted:
        refusals = await session.controller.durable_submits([job for _, job, _, _ in submitted])
        for (index, job, args, argv), refusal in zip(submitted, refusals):
            if refusal is not None:
                replies[index] = _failure(request.id, argv, refusal)
            else:
                result = job_result(job, args)
                replies[index] = success_object(request.id, result.text, result.data)  # as reply_object makes it
    done = [await r if isinstance(r, asyncio.Future) else r for r in replies]
    return Reply.success(request.id, f"{len(done)} replies",
                         [r if type(r) is dict else reply_object(r) for r in done if r is not None])
