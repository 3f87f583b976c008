"""Answering a client's request: run the command from the verb table, turn any refusal or bug
into an error reply. One implementation for the socket server (server.py) and the
in-process connection of `sched --simulate` (inprocess.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .commands import CommandResult
from .errors import CommandError, ErrorCode
from .verbs import TABLE
from .wire import BATCHABLE, Reply, Request, reply_object

log = logging.getLogger(__name__)

__all__ = ["answer", "answer_batch"]


async def answer(session: Any, request_id: int, argv: tuple[str, ...]) -> Reply:
    """The reply to one command run for `session` (a verbs.Session)."""
    try:
        result: CommandResult = await TABLE.run(session, list(argv))
    except CommandError as exc:
        return Reply.failure(request_id, exc.code, exc.message, exc.data)
    except Exception as exc:      # a bug: report it, keep serving
        log.exception("command %r failed", list(argv))
        return Reply.failure(request_id, ErrorCode.INTERNAL,
                             f"internal error in pcontrol: {type(exc).__name__}: {exc}")
    return Reply.success(request_id, result.text, result.data)


async def answer_batch(session: Any, request: Request) -> Reply:
    """The commands of a batch, started in order without waiting for each other (so the
    jobs they submit share the journal's writes); one reply holding theirs, in order."""
    runs: list[asyncio.Future[Reply]] = []
    for argv in request.batch:
        if argv[0] in BATCHABLE:
            runs.append(asyncio.ensure_future(answer(session, request.id, argv)))
        else:
            refused = asyncio.get_running_loop().create_future()
            refused.set_result(Reply.failure(
                request.id, ErrorCode.USAGE,
                f'"{argv[0]}" cannot be batched (a batch carries only: {", ".join(sorted(BATCHABLE))})'))
            runs.append(refused)
    replies = await asyncio.gather(*runs)
    return Reply.success(request.id, f"{len(replies)} replies", [reply_object(r) for r in replies])
