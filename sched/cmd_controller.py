"""`controller ...`: the controller's commands from the sched shell, and its daemon's life.

    controller start | stop ?-kill? ?-force? | status     manage the pcontrol daemon of $SCHED_HOME
    controller connect ?HOST:PORT|local? ?-secret FILE?  use a remote pcontrol over TCP (or the
                                                    local one again); alone: say which is used
    controller COMMAND ...                          any pcontrol command: host add, hosts, jobs...

A command is sent over the scheduler's own connection (psched.controller), and its reply text
is the result; a refusal is an error with pcontrol's message. pcontrol itself refuses `kill`
and `delete` of a job that a scheduler owns unless `-force` is given.

With a remote controller (`controller connect HOST:PORT`, or $PCONTROL_CONNECT when sched
started) `start` is refused (it starts on its own machine), `stop` sends it `shutdown`, and
every error names the address.
"""

from __future__ import annotations

from typing import Any

from pcontrol.client import ControllerAddress
from pcontrol.errors import ClientError

from .errors import ScriptError
from .eventloop import run_until
from .registry import BUILTINS
from .scheduler import scheduler_of

MANAGE = ("start", "stop", "status", "connect")
CONNECT_USAGE = "controller connect ?HOST:PORT|local? ?-secret FILE?"


def _link(interp: Any):
    from .controller import controller_of

    return controller_of(scheduler_of(interp))


def controller_subcommands() -> list[str]:
    """What may follow `controller` (for completion): ours, then pcontrol's command words."""
    words = list(MANAGE)
    try:
        from pcontrol.verbs import TABLE

        words += sorted({c.path.split()[0] for c in TABLE.root.commands()} - set(MANAGE) - {"shutdown"})
    except Exception:  # completion must never fail because of this
        pass
    return words


_HOST_VERBS = {("host", "on"), ("host", "off"), ("host", "delete"), ("host", "retry"), ("check", "host")}


def controller_host_words(interp: Any, words: list[str]) -> list[str]:
    """After `controller host add|on|...` or `controller check`: subcommands, then host names."""
    sched = interp.extensions.get("scheduler")
    link = getattr(sched, "remote", None)
    hosts = sorted(getattr(link, "hosts", ()) or ())
    if len(words) == 2 and words[1] == "host":
        return ["add", "delete", "on", "off", "retry"]
    if len(words) == 2 and words[1] == "check":
        return ["host", "job"]
    if len(words) == 3 and (words[1], words[2]) in _HOST_VERBS:
        return hosts
    return []


@BUILTINS.command("controller subcommand ?arg ...?",
                  "talk to the controller: start | stop ?-kill? ?-force? | status | connect ?HOST:PORT|local? "
                  "?-secret FILE? (a remote pcontrol over TCP, or the local one) | any pcontrol command "
                  "(host add, hosts, jobs, check...)")
def cmd_controller(interp: Any, argv: list[str]) -> str:
    link = _link(interp)
    sub, args = argv[1], argv[2:]
    if sub == "start":
        return _start(link)
    if sub == "stop":
        return _stop(link, kill="-kill" in args, force="-force" in args)
    if sub == "status":
        return _status(link)
    if sub == "connect":
        return _connect(link, args)
    return _send(link, argv[1:])


def _connect(link: Any, args: list[str]) -> str:
    """`controller connect ?HOST:PORT|local? ?-secret FILE?`: say or change which pcontrol is used."""
    target, secret_file = _connect_args(args)
    if target is None:
        if secret_file is not None:
            raise ScriptError(f'wrong # args: should be "{CONNECT_USAGE}"')
        return f"controller: pcontrol at {link.address} ({link.state})"
    if target == "local":
        if secret_file is not None:
            raise ScriptError("controller connect: -secret is for a TCP controller, not the local one")
        address = ControllerAddress.local(link.paths.home)
    else:
        try:
            address = ControllerAddress.remote(target, link.paths.home, secret_file)
        except ValueError as exc:
            raise ScriptError(f"controller connect: {exc}") from None
    try:
        run_until(link.retarget(address), "controller connect")
    except (ClientError, OSError, ValueError) as exc:
        raise ScriptError(f"controller connect: {exc}; still using pcontrol at {link.address}") from None
    return f"controller: connected to pcontrol at {link.address}"


def _connect_args(args: list[str]) -> tuple[str | None, str | None]:
    target = secret_file = None
    words = list(args)
    while words:
        word = words.pop(0)
        if word == "-secret":
            if not words:
                raise ScriptError('controller connect: option "-secret" needs a value (FILE)')
            secret_file = words.pop(0)
        elif word.startswith("-"):
            raise ScriptError(f'controller connect: unknown option "{word}": should be -secret')
        elif target is None:
            target = word
        else:
            raise ScriptError(f'wrong # args: should be "{CONNECT_USAGE}"')
    return target, secret_file


def _start(link: Any) -> str:
    from pcontrol import daemon

    if link.address.is_tcp:
        raise ScriptError(f"controller start: the controller is pcontrol at {link.address}, which starts on its "
                          "own machine (`controller connect local` uses the local one again)")
    outcome = daemon.start(link.paths, [])
    if not outcome.ok:
        raise ScriptError(f"controller start: {outcome.message}")
    if "already running" not in outcome.message:
        link.started_daemon = True
    return outcome.message


def _stop(link: Any, kill: bool, force: bool) -> str:
    """Stop the daemon. Its agents keep running jobs for their lease and the next pcontrol
    takes them back; with -kill every job ends. Jobs of this scheduler make it ask for -force."""
    from pcontrol import daemon

    out = link.jobs_out()
    if out and not force:
        then = ("-kill ends them KILLED" if kill else
                "they keep running on their hosts, but their ends reach this sched only after pcontrol is started again")
        raise ScriptError(f"controller stop: {out} job(s) of this scheduler are still out at the controller; "
                          f"{then} (add -force to stop anyway)")
    if link.address.is_tcp:  # its pid file is over there: ask it to shut down
        text = _send(link, ["shutdown"] + (["-kill"] if kill else []) + (["-force"] if force else []))
        run_until(link.aclose(), "controller stop")
        return text
    run_until(link.aclose(), "controller stop")
    outcome = daemon.stop(link.paths, kill=kill, force=force)
    if not outcome.ok:
        raise ScriptError(f"controller stop: {outcome.message}")
    link.started_daemon = False
    return outcome.message


def _status(link: Any) -> str:
    from pcontrol.client import is_running

    if not link.address.is_tcp and not link.connected and not is_running(link.paths.home):
        return f"pcontrol is not running in {link.paths.home}"
    text = _send(link, ["status"])
    return f"{text}\nsched: {link.state} (pcontrol at {link.address}); owner {link.owner}; {link.jobs_out()} job(s) out"


def _send(link: Any, argv: list[str]) -> str:
    async def request() -> Any:
        await link.connect()
        return await link.client.request(argv)

    try:
        reply = run_until(request(), "controller")
    except ClientError as exc:
        raise ScriptError(f"controller: {exc}") from None
    if not reply.ok:
        raise ScriptError(f"controller {argv[0]}: {reply.text}")
    return reply.text
