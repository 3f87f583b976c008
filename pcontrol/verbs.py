"""The controller's commands: one table, each command declared once with its usage line.

The same table serves the socket (server.py), `pcontrol COMMAND ...`, the interactive
prompt (help and completion), and the sched shell's `controller ...`. Handlers take the
connection's Session and the bound arguments, call the Controller, and return text + data.

Commands that would end work (`delete` of a live job, `host delete`/`host off` of a host
with jobs, `shutdown` with jobs out) refuse with the consequence in words and the data
{"needs_force": true} unless given -force; the interactive prompt asks instead.
"""

from __future__ import annotations

import os
from typing import Any, Protocol

from .commands import CommandResult, CommandTable
from .controller import NEEDS_FORCE, Controller, JobSpec
from .errors import ConflictError, UsageError
from .model import HostState, JobState, parse_enum
from .textfmt import host_detail, host_table, job_detail, job_table, status_text
from .wire import WIRE_VERSION

TABLE = CommandTable()
command = TABLE.command

VERSION = "pcontrol 0.1"

#: Metavariables whose completions are host names / job states.
HOST_METAVARS = {"NAME", "H"}
STATE_METAVARS = {"STATE"}


class Session(Protocol):
    """What a handler may use of the connection it serves."""

    controller: Controller

    def subscribe(self, owner: str | None) -> None: ...

    def unsubscribe(self) -> None: ...

    def request_shutdown(self) -> None: ...

    # A connection of the server also has `server` (its ControlServer), whose
    # `connection_count` `status` reports; sessions without one report None.


# -- general ---------------------------------------------------------------------------------

@command("help", "?COMMAND...? ?-json?", "list commands, or show the usage of one")
def _help(session: Session, args: dict[str, Any]) -> CommandResult:
    return TABLE.help(args["command"])


@command("ping", "", "check that pcontrol answers")
def _ping(session: Session, args: dict[str, Any]) -> CommandResult:
    return CommandResult("pong", {"pong": True, "pid": os.getpid()})


@command("version", "?-json?", "versions of pcontrol and its protocols")
def _version(session: Session, args: dict[str, Any]) -> CommandResult:
    from pclient.protocol import PROTOCOL_VERSION
    data = {"pcontrol": VERSION, "wire": WIRE_VERSION, "agent_protocol": PROTOCOL_VERSION,
            "pid": os.getpid()}
    return CommandResult(f"{VERSION} (client protocol {WIRE_VERSION}, agent protocol "
                         f"{PROTOCOL_VERSION}), pid {os.getpid()}", data)


@command("status", "?-json?", "counts of hosts and jobs by state")
def _status(session: Session, args: dict[str, Any]) -> CommandResult:
    data = session.controller.status()
    server = getattr(session, "server", None)
    data["connections"] = getattr(server, "connection_count", None)
    return CommandResult(status_text(data), data)


@command("subscribe", "?-owner OWNER?",
         "send job and host events on this connection (only OWNER's jobs if given)")
def _subscribe(session: Session, args: dict[str, Any]) -> CommandResult:
    session.subscribe(args["owner"])
    who = f" for owner {args['owner']}" if args["owner"] else ""
    return CommandResult(f"subscribed{who}", {"subscribed": True, "owner": args["owner"]})


@command("unsubscribe", "", "stop sending events on this connection")
def _unsubscribe(session: Session, args: dict[str, Any]) -> CommandResult:
    session.unsubscribe()
    return CommandResult("unsubscribed", {"subscribed": False})


@command("shutdown", "?-kill? ?-force?",
         "stop pcontrol; running jobs go on under their agents' lease and are taken over by "
         "the next start (-kill: end every job, pending and running, as KILLED); with jobs "
         "out it refuses, saying what would happen to them, unless -force")
def _shutdown(session: Session, args: dict[str, Any]) -> CommandResult:
    refusal = session.controller.stop_refusal(kill=bool(args["kill"]))
    if refusal is not None and not args["force"]:
        raise ConflictError(refusal, data=NEEDS_FORCE)
    session.controller.kill_on_stop = bool(args["kill"])
    session.request_shutdown()
    text = "pcontrol is stopping" + (" and killing every job" if args["kill"] else
                                     "; running jobs are left to their agents")
    return CommandResult(text, {"stopping": True, "kill": bool(args["kill"]),
                                "pid": os.getpid()})


# -- hosts -----------------------------------------------------------------------------------

def _host_record(controller: Controller, name: str) -> dict[str, Any]:
    host = controller.host(name)
    record = host.to_record()
    try:
        record["command"] = controller.agent_argv(host)
    except ValueError:
        record["command"] = None
    return record


@command("hosts", "?-state STATE? ?-json?", "list the hosts")
def _hosts(session: Session, args: dict[str, Any]) -> CommandResult:
    state = _state(HostState, args["state"]) if args["state"] else None
    records = [h.to_record() for h in session.controller.hosts.values()
               if state is None or h.state is state]
    return CommandResult(host_table(records), records)


@command("host add", "NAME ?-slots SLOTS? ?-connect COMMAND?",
         "define a host and start its agent (localhost: local pclient; else ssh NAME pclient)")
def _host_add(session: Session, args: dict[str, Any]) -> CommandResult:
    host = session.controller.add_host(args["name"], slots=args["slots"],
                                       connect=args["connect"])
    return CommandResult(f"host {host.name} added; connecting", host.to_record())


@command("host delete", "NAME ?-force?",
         "forget a host (-force: even if it runs jobs, which end KILLED, or pending jobs "
         "require it, which end DOWN)")
def _host_delete(session: Session, args: dict[str, Any]) -> CommandResult:
    text = session.controller.delete_host(args["name"], force=args["force"])
    return CommandResult(text, {"name": args["name"], "deleted": True})


@command("host on", "NAME", "use a host that was switched off")
def _host_on(session: Session, args: dict[str, Any]) -> CommandResult:
    text = session.controller.host_on(args["name"])
    return CommandResult(text, _host_record(session.controller, args["name"]))


@command("host off", "NAME ?-force?",
         "stop using a host (-force: even if it runs jobs, which end KILLED)")
def _host_off(session: Session, args: dict[str, Any]) -> CommandResult:
    text = session.controller.host_off(args["name"], force=args["force"])
    return CommandResult(text, _host_record(session.controller, args["name"]))


@command("host retry", "NAME", "try to connect a DOWN host now")
def _host_retry(session: Session, args: dict[str, Any]) -> CommandResult:
    text = session.controller.host_retry(args["name"])
    return CommandResult(text, _host_record(session.controller, args["name"]))


@command("check host", "NAME ?-json?", "one host in detail, with its last DOWN reason")
def _check_host(session: Session, args: dict[str, Any]) -> CommandResult:
    record = _host_record(session.controller, args["name"])
    return CommandResult(host_detail(record), record)


# -- jobs ------------------------------------------------------------------------------------

@command("job", "?-host H? ?-required? ?-timeout S? ?-pending S? ?-priority N? ?-retry COUNT? "
                "?-cwd DIR? ?-env K=V? ?-owner OWNER? ?-task TASK? ?-output-limit BYTES? "
                "-- ARGV...",
         "submit a job; prints its id (-retry: run it again, elsewhere if allowed, when its "
         "host is lost, up to COUNT times)")
async def _job(session: Session, args: dict[str, Any]) -> CommandResult:
    spec = JobSpec(argv=args["argv"], host=args["host"], required=args["required"],
                   timeout=args["timeout"], pending=args["pending"],
                   priority=args["priority"] or 0, cwd=args["cwd"], env=args["env"],
                   owner=args["owner"], task=args["task"], retry=args["retry"] or 0)
    if args["output-limit"] is not None:
        spec.output_limit = args["output-limit"]
    job = await session.controller.submit_durable(spec)   # the id only once on disk
    return CommandResult(str(job.id), job.to_record())


@command("jobs", "?-state STATE? ?-owner OWNER? ?-host H? ?-json?",
         "list jobs (every finished job stays until harvested or deleted)")
def _jobs(session: Session, args: dict[str, Any]) -> CommandResult:
    state = _state(JobState, args["state"]) if args["state"] else None
    jobs = session.controller.jobs_where(state=state, owner=args["owner"], host=args["host"])
    records = [job.to_record() for job in jobs]
    return CommandResult(job_table(records), records)


@command("check job", "ID ?-output? ?-json?",
         "one job in detail (-output: include its stdout and stderr in the data)")
def _check_job(session: Session, args: dict[str, Any]) -> CommandResult:
    record = session.controller.job(args["id"]).to_record(output=args["output"])
    text = job_detail(record)
    if args["output"]:
        text += "\n--- stdout\n" + record["stdout"] + "\n--- stderr\n" + record["stderr"]
    return CommandResult(text, record)


def _stream(session: Session, args: dict[str, Any], stream: str) -> CommandResult:
    job = session.controller.job(args["id"])
    text = getattr(job, stream)
    data = {"id": job.id, "state": job.state.value, stream: text,
            "bytes": getattr(job, f"{stream}_bytes"),
            "truncated": getattr(job, f"{stream}_truncated")}
    return CommandResult(text, data)


@command("stdout", "ID ?-json?", "what a finished job wrote to stdout")
def _stdout(session: Session, args: dict[str, Any]) -> CommandResult:
    return _stream(session, args, "stdout")


@command("stderr", "ID ?-json?", "what a finished job wrote to stderr")
def _stderr(session: Session, args: dict[str, Any]) -> CommandResult:
    return _stream(session, args, "stderr")


@command("kill", "ID ?-force? ?-owner OWNER?",
         "kill a pending or running job (a scheduler's job: only with its -owner or -force)")
def _kill(session: Session, args: dict[str, Any]) -> CommandResult:
    text = session.controller.kill(args["id"], force=args["force"], owner=args["owner"])
    return CommandResult(text, session.controller.job(args["id"]).to_record())


@command("delete", "ID ?-force? ?-owner OWNER?",
         "forget a finished job (a scheduler's job: only with its -owner or -force); "
         "-force also deletes a pending job (cancelled) or a running one (killed, and "
         "deleted once it has ended)")
def _delete(session: Session, args: dict[str, Any]) -> CommandResult:
    controller = session.controller
    text = controller.delete(args["id"], force=args["force"], owner=args["owner"])
    job_id = int(args["id"])
    return CommandResult(text, {"id": job_id, "deleted": job_id not in controller.jobs})


@command("harvest", "ID... ?-owner OWNER?",
         "the owner has collected these finished jobs; pcontrol may forget them")
def _harvest(session: Session, args: dict[str, Any]) -> CommandResult:
    results = session.controller.harvest(args["id"], owner=args["owner"])
    return CommandResult(f"harvested {len(results)} job{'s' if len(results) != 1 else ''}",
                         results)


def _state(enum_type: Any, word: str) -> Any:
    try:
        return parse_enum(enum_type, word)
    except ValueError:
        choices = ", ".join(m.value for m in enum_type)
        raise UsageError(f'unknown state "{word}": should be one of {choices}') from None
