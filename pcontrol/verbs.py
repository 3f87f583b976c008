"""The controller's commands: one table, each command declared once with its usage line.

The same table serves the socket (server.py), `pcontrol COMMAND ...`, the interactive
prompt (help and completion), and the sched shell's `controller ...`. Handlers take the
connection's Session and the bound arguments, call the Controller, and return text + data.

Commands that would end work (`delete` of a live job, `host delete`/`host off` of a host
with jobs, `shutdown` with jobs out) refuse with the consequence in words and the data
{"needs_force": true} unless given -force; the interactive prompt asks instead.
"""

from __future__ import annotations

import base64
import bisect
import json
import os
import shlex
from operator import attrgetter
from typing import Any, Protocol

from .commands import CommandResult, CommandTable
from .controller import Controller, JobSpec
from .operations import NEEDS_FORCE
from .errors import ConflictError, NotFoundError, UsageError
from .model import HostState, Job, JobState, parse_enum
from .waiting import why_pending
from .textfmt import host_detail, host_table, job_detail, job_table, more_jobs, status_text
from .wire import WIRE_VERSION, Interest

TABLE = CommandTable()
command = TABLE.command

VERSION = "pcontrol 0.1"

#: Metavariables whose completions are host names / job states.
HOST_METAVARS = {"NAME", "H"}
STATE_METAVARS = {"STATE"}
#: Rows the `jobs` table shows without -limit (its -json data is then every job, as ever).
TEXT_ROWS = 1000
#: A `jobs` page ends once its records come to about this many bytes, whatever -limit says:
#: a reply line must stay well under the wire's MAX_LINE, and -json text doubles it.
PAGE_BYTES = 4 * 1024 * 1024
#: `jobs -json` without -limit refuses to make a reply of more than about this many bytes
#: (the client could not read it: with its JSON text it would pass MAX_LINE).
UNPAGED_BYTES = 2 * PAGE_BYTES
#: A job record's size without its strings, and per attempt (see _record_bytes).
RECORD_BYTES = 600
ATTEMPT_BYTES = 200
#: Bytes of output one `output` reply carries unless -size says otherwise (4/3 of it as base64).
OUTPUT_PIECE = 1 << 20


class Session(Protocol):
    """What a handler may use of the connection it serves."""

    controller: Controller

    def subscribe(self, owner: str | None, interests: frozenset[Interest] | None = None,
                  brief: bool = False) -> None: ...

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


@command("subscribe", "?-owner OWNER? ?-only INTERESTS? ?-brief?",
         "send job and host events on this connection (only OWNER's jobs if given; only the "
         "events named in the comma list INTERESTS if given: queued, start, running, end, "
         "harvest, host, load, alert; -brief: a job event carries the job's short record, "
         "where it is and how it ended, not what it was submitted with)")
def _subscribe(session: Session, args: dict[str, Any]) -> CommandResult:
    if args["only"] is None:
        session.subscribe(args["owner"], None, args["brief"])
        interests = None
    else:
        try:
            chosen = Interest.parse_list(args["only"])
        except ValueError as exc:
            raise UsageError(f"-only: {exc}") from None
        session.subscribe(args["owner"], chosen, args["brief"])
        interests = sorted(i.value for i in chosen)
    who = f" for owner {args['owner']}" if args["owner"] else ""
    data = {"subscribed": True, "owner": args["owner"]}
    if interests is not None:
        data["only"] = interests
    if args["brief"]:
        data["brief"] = True
    return CommandResult(f"subscribed{who}", data)


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
        record["command"] = None if host.slurm or host.pull else controller.agent_argv(host)
    except ValueError:
        record["command"] = None
    return record


@command("hosts", "?-state STATE? ?-json?", "list the hosts")
def _hosts(session: Session, args: dict[str, Any]) -> CommandResult:
    state = _state(HostState, args["state"]) if args["state"] else None
    records = [h.to_record() for h in session.controller.hosts.values()
               if state is None or h.state is state]
    return CommandResult(host_table(records), records)


@command("host add", "NAME ?-slots SLOTS? ?-connect COMMAND? ?-address ADDRESS? ?-port N? ?-slurm? "
                     "?-partition P? ?-account A? ?-qos Q? ?-sbatch OPTIONS? ?-output DIR? ?-pull?",
         "define a host and start its agent (localhost: local pclient; else ssh NAME, or ssh "
         "-p N ADDRESS, sending pcontrol's own agent to its python3; -address localhost "
         "without -port: a local pclient under the name NAME); -slurm: the host is a Slurm cluster, "
         "its jobs submitted with sbatch (-slots: at most that many in the cluster at once; "
         "-output: where they write stdout and stderr, shared with pcontrol); -pull: a probe "
         "pcontrol cannot reach, which checks in (`host key NAME` makes its key); a host that "
         "is already there as given is left as it is, one defined otherwise is refused")
def _host_add(session: Session, args: dict[str, Any]) -> CommandResult:
    slurm = None
    slurm_words = ("partition", "account", "qos", "sbatch", "output")
    if args["slurm"]:
        from .slurmstate import SlurmOptions  # a Slurm host's words only for one (start-up, issue 13)

        slurm = SlurmOptions(**{word: args[word] for word in slurm_words})
    else:
        given = [f"-{word}" for word in slurm_words if args[word] is not None]
        if given:
            raise UsageError(f"{', '.join(given)} {'goes' if len(given) == 1 else 'go'} "
                             "only with -slurm")
    existed = args["name"] in session.controller.hosts
    host = session.controller.add_host(args["name"], slots=args["slots"],
                                       connect=args["connect"], slurm=slurm, pull=bool(args["pull"]),
                                       address=args["address"], port=args["port"])
    if existed:   # added before as given (a script run again): nothing changes
        return CommandResult(f"host {host.name} is already there as given ({host.state.value})",
                             host.to_record())
    if host.pull:
        return CommandResult(f"host {host.name} added: its jobs wait for its probe to check in "
                             f"(make its key with `host key {host.name}`)", host.to_record())
    return CommandResult(f"host {host.name} added; connecting", host.to_record())


@command("host key", "NAME ?-revoke?",
         "make (again) the secret key of pull probe NAME and print it, once: put it in the probe's "
         "--key-file; -revoke: delete it, so that the probe is refused")
def _host_key(session: Session, args: dict[str, Any]) -> CommandResult:
    controller = session.controller
    host = controller.host(args["name"])
    if controller.pull is None or not host.pull:
        raise UsageError(f"host {host.name} is not a pull host (host add NAME -pull)")
    if args["revoke"]:
        if not controller.pull.revoke_key(host.name):
            raise NotFoundError(f"pull host {host.name} has no key")
        return CommandResult(f"the key of {host.name} is revoked: its probe is refused",
                             {"name": host.name, "revoked": True})
    key = controller.pull.create_key(host.name)
    return CommandResult(key, {"name": host.name, "key": key})


@command("alert", "SUBJECT BODY",
         "send an alert: to the log, to the subscribers (an `alert` event) and by mail when "
         "pcontrol has mail settings (--alerts FILE)")
def _alert(session: Session, args: dict[str, Any]) -> CommandResult:
    session.controller.alerter.send(args["subject"], args["body"])
    mailed = session.controller.alerter.settings is not None
    return CommandResult("alert sent" + (" (mail queued)" if mailed else " (no mail settings: logged)"),
                         {"mail": mailed})


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


# -- synchronized runs -----------------------------------------------------------------------

@command("sync run", "SPEC ?-quiet? ?-json?",
         "run a synchronized start (SPEC: the run as JSON, see syncspec.py): check every "
         "target's host and its clock offset, fork every command held at a gate, start them "
         "all at one instant, wait for them; prints the targets and the start skew "
         "(-quiet: without their output). Answers when the run is over")
async def _sync_run(session: Session, args: dict[str, Any]) -> CommandResult:
    try:
        data = json.loads(args["spec"])
    except ValueError as exc:
        raise UsageError(f"sync run: SPEC is not valid JSON: {exc}") from None
    from .syncspec import SyncSpec, result_text  # with the first sync run (start-up, issue 13)

    spec = SyncSpec.from_record(data)
    result = await session.controller.syncs.run(spec)
    return CommandResult(result_text(result, output=not args["quiet"]), result)


@command("sync runs", "?-json?", "the last synchronized runs that ended (up to 20, newest last): "
                                "verdict, start skew, and each target's start offset, without output")
def _sync_runs(session: Session, args: dict[str, Any]) -> CommandResult:
    runs = list(session.controller.syncs.recent)
    text = "\n".join(f"{r['name']}: {r['verdict']}, {r['succeeded']}/{r['total']} succeeded, "
                     f"start skew max {r['skew_ms']['max']} ms" for r in runs)
    return CommandResult(text or "no synchronized run has ended", runs)


@command("sync kill", "NAME", "end the sync runs named NAME now: their targets are killed (KILLED) "
                              "and each run answers its `sync run` with a failed verdict")
def _sync_kill(session: Session, args: dict[str, Any]) -> CommandResult:
    count = session.controller.syncs.kill(args["name"])
    if not count:
        raise NotFoundError(f'no sync run named "{args["name"]}" is under way')
    return CommandResult(f"killing {count} sync run(s) named {args['name']}",
                         {"name": args["name"], "runs": count})


# -- jobs ------------------------------------------------------------------------------------

@command("job", "?-host H? ?-required? ?-timeout S? ?-pending S? ?-priority N? ?-retry COUNT? "
                "?-cwd DIR? ?-env K=V? ?-owner OWNER? ?-task TASK? ?-output-limit BYTES? "
                "?-spool? ?-mail? ?-inbox TEXT? ?-noskew? ?-not-before EPOCH? ?-id N? ?-brief? -- ARGV...",
         "submit a job; prints its id (-id: this id, which a pool's scheduler chose under its "
         "fencing token; -retry: run it again, elsewhere if allowed, when its "
         "host is lost, up to COUNT times; -spool: its agent keeps its whole output, every "
         "byte, for `output`; -mail: it gets $PSCHED_INBOX holding the lines of -inbox and "
         "$PSCHED_OUTBOX, whose lines come back with its end; -noskew: never on a SKEWED "
         "host, it waits for one in line; -not-before: its planned start, seconds since the "
         "epoch: it waits until then, and a pull probe is told that time ahead; -brief: the "
         "reply's data is the job's short record, as `subscribe -brief` sends)")
async def _job(session: Session, args: dict[str, Any]) -> CommandResult:
    job = await session.controller.submit_durable(job_spec(args))   # the id only once on disk
    return job_result(job, args)


def job_spec(args: dict[str, Any]) -> JobSpec:
    """What a `job` command's bound arguments ask for (UsageError for a NUL byte)."""
    _refuse_nul(args)
    spec = JobSpec(argv=args["argv"], host=args["host"], required=args["required"],
                   timeout=args["timeout"], pending=args["pending"],
                   priority=args["priority"] or 0, cwd=args["cwd"], env=args["env"],
                   owner=args["owner"], task=args["task"], retry=args["retry"] or 0,
                   spool=args["spool"], mail=args["mail"] or bool(args["inbox"]),
                   inbox=tuple((args["inbox"] or "").splitlines()), noskew=args["noskew"],
                   not_before=args["not-before"], id=args["id"])
    if args["output-limit"] is not None:
        spec.output_limit = args["output-limit"]
    return spec


def job_result(job: Job, args: dict[str, Any]) -> CommandResult:
    """The reply to a `job` command once its job is on disk."""
    return CommandResult(str(job.id), job.to_brief() if args["brief"] else job.to_record())


@command("adopt", "?-owner OWNER? ?-task TASK? ?-host H? ?-required? ?-timeout S? ?-env K=V? ?-spool? "
                  "?-mail? ?-noskew? -- ID ARGV...",
         "in a pool: take over job ID of an earlier leader's controller, which this one's agents "
         "found (its record; null data when no agent has it: it never reached one)")
async def _adopt(session: Session, args: dict[str, Any]) -> CommandResult:
    _refuse_nul(dict(args, cwd=None))
    number = _job_id(args["id"], "ID")
    spec = JobSpec(argv=args["argv"], host=args["host"], required=args["required"], timeout=args["timeout"],
                   env=args["env"], owner=args["owner"], task=args["task"], spool=args["spool"],
                   mail=args["mail"], noskew=args["noskew"])
    job = await session.controller.adopt(number, spec)
    if job is None:
        return CommandResult(f"no agent has job {number}", None)
    await session.controller.durable()
    return CommandResult(f"adopted job {number} ({job.state.value})", job.to_record())


def _refuse_nul(args: dict[str, Any]) -> None:
    """A NUL byte cannot reach exec() or the environment: refuse it now, naming the word,
    rather than have the job fail on its host."""
    for number, word in enumerate(args["argv"], 1):
        if "\0" in word:
            raise UsageError(f"ARGV word {number} ({_excerpt(word)}) holds a NUL byte (at "
                             f"character {word.index(chr(0)) + 1}), which no program can "
                             f"receive as an argument", data={"argv_word": number})
    for key, value in args["env"].items():
        if "\0" in key or "\0" in value:
            raise UsageError(f"-env {_excerpt(key)}: the variable holds a NUL byte, which no "
                             f"environment can carry", data={"env": key})
    if args["cwd"] is not None and "\0" in args["cwd"]:
        raise UsageError(f"-cwd {_excerpt(args['cwd'])} holds a NUL byte, which no "
                         f"directory name can", data={"cwd": args["cwd"]})


def _excerpt(word: str, limit: int = 40) -> str:
    return repr(word) if len(word) <= limit else repr(word[:limit]) + "..."


@command("jobs", "?-state STATE? ?-owner OWNER? ?-host H? ?-limit N? ?-after ID? ?-json?",
         "list jobs in id order (finished ones stay until harvested or deleted); -limit N: "
         "at most N (fewer when they are big), -after ID: those after job ID; page until a "
         f"page comes back empty. Without -limit the table stops at {TEXT_ROWS} rows, saying "
         "how to see the rest, and -json gives every job (or refuses if they would not fit "
         "one reply)")
def _jobs(session: Session, args: dict[str, Any]) -> CommandResult:
    state = _state(JobState, args["state"]) if args["state"] else None
    limit = args["limit"]
    if limit is not None and limit < 1:
        raise UsageError(f"-limit must be at least 1, got {limit}")
    after = _job_id(args["after"], "-after")
    unpaged = limit is None and args["json"]
    if limit is None and not args["json"]:
        limit = TEXT_ROWS
    jobs = session.controller.jobs_where(state=state, owner=args["owner"], host=args["host"])
    page, more = _page(jobs, after, limit, UNPAGED_BYTES if unpaged else PAGE_BYTES)
    if unpaged and more:
        raise UsageError(f"{len(page) + more} jobs match, more than one reply can carry; "
                         f"fetch them in pages: jobs ... -limit N -after ID (from -after 0 "
                         f"until a page comes back empty)",
                         data={"matching": len(page) + more})
    records = [_with_waiting(session, job, job.to_record()) for job in page]
    text = job_table(records)
    if more:
        last = records[-1]["id"]
        words = ["jobs"] + [word for name in ("state", "owner", "host") if args[name]
                            for word in (f"-{name}", args[name])]
        text += "\n" + more_jobs(more, last, shlex.join(
            words + ["-limit", str(args["limit"] or TEXT_ROWS), "-after", str(last)]))
    return CommandResult(text, records)


def _page(jobs: list[Job], after: int | None, limit: int | None,
          budget: int) -> tuple[list[Job], int]:
    """The jobs with ids above `after` -- at most `limit` of them, and no more than about
    `budget` bytes of records (but at least one) -- and how many more follow.

    Costs a pass over `jobs` (attribute reads, no records) whatever the page: the records
    and their encoding, the expensive part, are made for the page only."""
    jobs.sort(key=attrgetter("id"))        # almost always in order already: linear
    start = 0 if after is None else bisect.bisect_right(jobs, after, key=attrgetter("id"))
    stop = len(jobs) if limit is None else min(len(jobs), start + limit)
    size = 0
    end = start
    while end < stop:
        size += _record_bytes(jobs[end])
        if size > budget and end > start:
            break
        end += 1
    return jobs[start:end], len(jobs) - end


def _record_bytes(job: Job) -> int:
    """About the size of a job's record on the wire (its text counted twice, for escapes)."""
    text = (sum(map(len, job.argv)) + sum(len(k) + len(v) for k, v in job.env.items())
            + len(job.cwd or "") + len(job.reason or "") + len(job.owner or "")
            + len(job.task or ""))
    return RECORD_BYTES + 2 * text + ATTEMPT_BYTES * len(job.attempts)


def _with_waiting(session: Session, job: Job, record: dict[str, Any]) -> dict[str, Any]:
    """A PENDING job's record says why it waits ("waiting"), as squeue's REASON does."""
    if job.state is JobState.PENDING:
        record["waiting"] = why_pending(job, session.controller.hosts, session.controller.clock())
    return record


def _job_id(word: str | None, what: str) -> int | None:
    if word is None:
        return None
    try:
        return int(word, 10)
    except ValueError:
        raise UsageError(f'expected a job id for {what} but got "{word}"') from None


@command("check job", "ID ?-output? ?-json?",
         "one job in detail (-output: include its stdout and stderr in the data)")
def _check_job(session: Session, args: dict[str, Any]) -> CommandResult:
    job = session.controller.job(args["id"])
    session.controller.output_requests += bool(args["output"])
    record = _with_waiting(session, job, job.to_record(output=args["output"]))
    text = job_detail(record)
    if args["output"]:
        text += "\n--- stdout\n" + record["stdout"] + "\n--- stderr\n" + record["stderr"]
    return CommandResult(text, record)


def _stream(session: Session, args: dict[str, Any], stream: str) -> CommandResult:
    job = session.controller.job(args["id"])
    session.controller.output_requests += 1
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


@command("output", "ID STREAM ?-offset N? ?-size BYTES? ?-json?",
         "a piece of the whole stdout or stderr of a finished job run with -spool, read from "
         "its host's agent: base64 in the data, with `eof` (default: 1 MiB from offset 0)")
async def _output(session: Session, args: dict[str, Any]) -> CommandResult:
    offset = args["offset"] or 0
    session.controller.output_requests += 1
    data, eof = await session.controller.output(args["id"], args["stream"], offset,
                                                args["size"] or OUTPUT_PIECE)
    text = f"{len(data)} bytes from offset {offset}" + (", the end" if eof else "")
    return CommandResult(text, {"id": int(args["id"]), "stream": args["stream"], "offset": offset,
                                "data": base64.b64encode(data).decode("ascii"), "eof": eof})


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
