"""`controller ...`: the controller's commands from the sched shell, and its daemon's life.

    controller start | stop ?-kill? ?-force? | status     manage the pcontrol daemon of $SCHED_HOME
    controller connect ?HOST:PORT|local? ?-secret FILE?  use a remote pcontrol over TCP (or the
                                                    local one again); alone: say which is used
    controller host load FILE.json                  add the hosts of a pktgen hosts file (commands/sequence.py)
    controller COMMAND ...                          any pcontrol command: host add, hosts, jobs...

A command is sent over the scheduler's own connection (psched.scheduler.remote), and its reply text
is the result; a refusal is an error with pcontrol's message. pcontrol itself refuses `kill`
and `delete` of a job that a scheduler owns unless `-force` is given.

With a remote controller (`controller connect HOST:PORT`, or $PCONTROL_CONNECT when sched
started) `start` is refused (it starts on its own machine), `stop` sends it `shutdown`, and
every error names the address.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from pcontrol.errors import ClientError

from ..attach import controller_of, scheduler_of
from ...lang.errors import ScriptError
from ..eventloop import get_loop, run_until
from ...lang.registry import BUILTINS
from ..remote_output import call_from_macro
from .sequence import HOST_LOAD_USAGE, load_hosts

if TYPE_CHECKING:
    from ..remote import ControllerLink

CONNECT_USAGE = "controller connect ?HOST:PORT|local? ?-secret FILE?"


def _client() -> ModuleType:
    """pcontrol's client module, imported when a `controller` command runs (by then the
    controller link has loaded it): registering this command must not load it."""
    from pcontrol import client

    return client


def _link(interp: Any) -> ControllerLink:
    return controller_of(scheduler_of(interp))


@BUILTINS.command("controller subcommand ?arg ...?",
                  "talk to the controller: start | stop ?-kill? ?-force? | status | connect ?HOST:PORT|local? "
                  "?-secret FILE? (a remote pcontrol over TCP, or the local one) | any pcontrol command "
                  "(host add, hosts, jobs, check...) | " + HOST_LOAD_USAGE.removeprefix("controller ") +
                  " (a pktgen hosts file: [{name, address[, port][, slots]}])")
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
    if sub == "host" and args[:1] == ["load"]:
        return load_hosts(interp, args[1:])
    return _send(link, argv[1:])


def _connect(link: ControllerLink, args: list[str]) -> str:
    """`controller connect ?HOST:PORT|local? ?-secret FILE?`: say or change which pcontrol is used."""
    target, secret_file = _connect_args(args)
    if target is None:
        if secret_file is not None:
            raise ScriptError(f'wrong # args: should be "{CONNECT_USAGE}"')
        return f"controller: pcontrol at {link.address} ({link.state})"
    if target == "local":
        if secret_file is not None:
            raise ScriptError("controller connect: -secret is for a TCP controller, not the local one")
        address = _client().ControllerAddress.local(link.paths.home)
    else:
        try:
            address = _client().ControllerAddress.remote(target, link.paths.home, secret_file)
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


def _start(link: ControllerLink) -> str:
    if link.address.is_tcp:
        raise ScriptError(f"controller start: the controller is pcontrol at {link.address}, which starts on its "
                          "own machine (`controller connect local` uses the local one again)")
    outcome = link.start_daemon()
    if not outcome.ok:
        raise ScriptError(f"controller start: {outcome.message}")
    return outcome.message


def _stop(link: ControllerLink, kill: bool, force: bool) -> str:
    """Stop the daemon. Its agents keep running jobs for their lease and the next pcontrol
    takes them back; with -kill every job ends. Jobs of this scheduler make it ask for -force."""
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
    outcome = link.stop_daemon(kill=kill, force=force, on_purpose=True)
    if not outcome.ok:
        raise ScriptError(f"controller stop: {outcome.message}")
    return outcome.message


def _status(link: ControllerLink) -> str:
    if not link.address.is_tcp and not link.connected and not _client().is_running(link.paths.home):
        return f"pcontrol is not running in {link.paths.home}"
    text = _send(link, ["status"])
    return f"{text}\nsched: {link.state} (pcontrol at {link.address}); owner {link.owner}; {link.jobs_out()} job(s) out"


def _send(link: ControllerLink, argv: list[str]) -> str:
    """Send a pcontrol command; its reply's text. In a macro (the loop is running and cannot
    wait) on a connection of its own, while the macro waits (remote_output.call_from_macro)."""
    async def request() -> Any:
        await link.connect()
        return await link.client.request(argv)

    in_macro = get_loop().is_running()
    try:
        reply = call_from_macro(argv, link.address) if in_macro else run_until(request(), "controller")
    except ClientError as exc:
        hint = ""
        if in_macro and isinstance(exc, _client().ControllerNotRunning) and not link.address.is_tcp:
            hint = " (a macro does not start it: `controller start` before `run`, or sched starts it with the first job for it)"
        raise ScriptError(f"controller: {exc}{hint}") from None
    if not reply.ok:
        raise ScriptError(f"controller {argv[0]}: {reply.text}")
    return reply.text


@BUILTINS.command("alert subject body",
                  "send an alert through the controller: to its log and, when pcontrol has mail settings "
                  "(pcontrol serve --alerts FILE), by mail (for task.exit macros: a job that failed, a probe gone quiet)")
def cmd_alert(interp: Any, argv: list[str]) -> str:
    link, words = _link(interp), ["alert", argv[1], argv[2]]
    if not get_loop().is_running():
        return _send(link, words)
    sched = scheduler_of(interp)  # in a macro: sent in the background; a failure is reported

    async def send() -> None:
        try:
            await link.connect()
            reply = await link.client.request(words)
        except ClientError as exc:
            sched.report(f"alert {argv[1]!r} not sent: {exc}")
            return
        if not reply.ok:
            sched.report(f"alert {argv[1]!r} not sent: {reply.text}")

    link.spawn(send(), name="alert")
    return "alert sent"
