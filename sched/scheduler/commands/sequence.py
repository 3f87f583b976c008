"""`sequence load FILE.json -command TEMPLATE ?-name NAME?`: pktgen's per-host job sequences as a
task (psched.scheduler.sequences), and `controller host load FILE.json`'s reading of a hosts file.

The hosts a jobs file names must be the controller's (asked with `hosts -json`); the task is
named after the file (`jobs.json`: `jobs`) unless -name says otherwise, and an existing task of
that name lends it its macros and directives (`task jobs` with `task.exit` first, or after).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pcontrol.errors import ClientError

from ..attach import controller_of, scheduler_of
from ...lang.errors import ScriptError
from ...lang.registry import BUILTINS
from ...lang.tcllist import split_list
from ..eventloop import run_until
from ..seqfiles import read_hosts, read_sequences
from ..sequences import Sequence

HOST_LOAD_USAGE = "controller host load file.json"
"""`controller host load`'s usage line (the controller command hands it here)."""


def _controller_call(interp: Any, *argv: str) -> Any:
    link = controller_of(scheduler_of(interp))

    async def call() -> Any:
        await link.connect()
        return await link.client.call(*argv)

    try:
        return run_until(call(), argv[0])
    except ClientError as exc:  # pcontrol refused, or the connection is lost
        raise ScriptError(f"controller {' '.join(argv[:2])}: {exc}") from None


def load_hosts(interp: Any, argv: list[str]) -> str:
    """`controller host load FILE.json`: `host add` for each entry (all checked first)."""
    if len(argv) != 1:
        raise ScriptError(f'wrong # args: should be "{HOST_LOAD_USAGE}"')
    path = argv[0]
    hosts = read_hosts(path)
    known = {h["name"] for h in _controller_call(interp, "hosts", "-json")}
    added = []
    for host in hosts:
        if host.name in known:
            continue  # loaded before: the controller has it (its own record is the truth)
        words = ["host", "add", host.name]
        if host.slots is not None:
            words += ["-slots", str(host.slots)]
        words += ["-address", host.address]
        if host.port is not None:
            words += ["-port", str(host.port)]
        _controller_call(interp, *words)
        added.append(host.name)
    kept = len(hosts) - len(added)
    return f"{Path(path).name}: added {len(added)} host(s)" + (f" ({', '.join(added)})" if added else "") + \
        (f"; {kept} the controller had already" if kept else "")


@BUILTINS.command("sequence load file.json -command template ?-name name?",
                  "job sequences from JSON files (pktgen): run each host's jobs of a pktgen jobs file {host: [{id, params}]} in order, the next when the "
              "previous has ended, as the task NAME (default: the file's name): params fill $name in the "
              "command template and reach the job as environment variables")
def cmd_sequence_load(interp: Any, argv: list[str]) -> str:
    if argv[1] != "load":
        raise ScriptError(f'sequence: unknown subcommand "{argv[1]}": must be load')
    path, options = argv[2], argv[3:]
    template: list[str] | None = None
    name = Path(path).stem
    while options:
        word = options.pop(0)
        if word in ("-command", "-name") and options:
            value = options.pop(0)
            if word == "-command":
                template = split_list(value)
            else:
                name = value
        else:
            raise ScriptError(f'sequence load: unknown or incomplete option "{word}": should be -command TEMPLATE ?-name NAME?')
    if not template:
        raise ScriptError("sequence load: -command TEMPLATE is required (the command of each job, $param filled)")
    sched = scheduler_of(interp)
    known = {h["name"] for h in _controller_call(interp, "hosts", "-json")}
    plan = read_sequences(path, known)
    seq = Sequence(name, path, template, plan)
    if sched.staging is not None:  # a reload reading its files (psched.scheduler.reload): staged as a task block is
        sched.staging.stage(seq.task_spec(sched.staging.specs.get(name)))
        return seq.describe()
    existing = sched.tasks.get(name)
    if existing is not None and existing.jobs_out:
        raise ScriptError(f"sequence load: task {name} has {len(existing.jobs_out)} job(s) out; "
                          "wait for them, or load as another -name")
    sched.define(seq.task_spec(existing.spec if existing is not None else None))
    return seq.describe()
