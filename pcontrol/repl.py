"""The interactive `pcontrol` prompt (prompt_toolkit).

Each line is split like a shell line (shlex: quotes work, Tcl braces do not) and sent to the
daemon as one command; the reply's text is printed. `help` is answered from the command
table, `start` / `stop` manage the daemon, `quit` / `exit` / Ctrl-D leave, Ctrl-C clears the
line. Completion knows commands, subcommands, options, host names and job states, all from
the same table as everything else. History lives in $SCHED_HOME/pcontrol_history.

A command that pcontrol refuses because it would end work (`delete` of a running job, `host
delete` of a busy host, `stop` with jobs out: the refusal's data says needs_force) is not
just refused here: the prompt shows the consequence and asks "... anyway? [y/N]"; yes runs
it again with -force.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory

from . import daemon
from .client import ControllerClient
from .errors import ClientError, CommandError, ControllerNotRunning
from .model import HostState, JobState
from .paths import Paths
from .verbs import HOST_METAVARS, STATE_METAVARS, TABLE

LOCAL_WORDS = ("quit", "exit", "start", "stop")


class PcontrolCompleter(Completer):
    """Completes from the command table; host names from a cache the prompt refreshes."""

    def __init__(self) -> None:
        self.host_names: list[str] = []

    def values(self, metavar: str) -> Iterable[str]:
        if metavar in HOST_METAVARS:
            return self.host_names
        if metavar in STATE_METAVARS:
            return [s.value for s in JobState] + [s.value for s in HostState]
        return ()

    def candidates(self, text: str) -> tuple[list[str], str]:
        """The candidates for the word at the end of `text`, and that word's typed part."""
        try:
            words = shlex.split(text)
        except ValueError:
            return [], ""
        if text and not text[-1].isspace() and words:
            prefix = words.pop()
        else:
            prefix = ""
        found = TABLE.complete(words, prefix, self.values)
        if not words:
            found = sorted(set(found) | {w for w in LOCAL_WORDS if w.startswith(prefix)})
        return found, prefix

    def get_completions(self, document: Document,
                        complete_event: CompleteEvent) -> Iterable[Completion]:
        found, prefix = self.candidates(document.text_before_cursor)
        for word in found:      # every candidate is a whole word: add the space too
            yield Completion(word + " ", start_position=-len(prefix), display=word)


def needs_force(data: Any) -> bool:
    """A refusal that -force would overcome (see verbs: NEEDS_FORCE)."""
    return isinstance(data, dict) and bool(data.get("needs_force"))


class Prompt:
    """`ask(question)` answers a y/N question (the prompt session's, or a test's)."""

    def __init__(self, paths: Paths, ask: Callable[[str], Awaitable[bool]] | None = None):
        self.paths = paths
        self.client: ControllerClient | None = None
        self.completer = PcontrolCompleter()
        self.ask = ask or _never

    async def connect(self, quiet: bool = False) -> bool:
        if self.client is not None and not self.client.closed:
            return True
        try:
            self.client = await ControllerClient.connect(self.paths.home)
        except ClientError as exc:
            if not quiet:
                print(f"pcontrol is not running in {self.paths.home} ({exc}); "
                      "type `start` to start it", file=sys.stderr)
            self.client = None
            return False
        await self.refresh_hosts()
        return True

    async def refresh_hosts(self) -> None:
        if self.client is None:
            return
        try:
            reply = await self.client.request(["hosts"], timeout=5.0)
        except ClientError:
            return
        if reply.ok and isinstance(reply.data, list):
            self.completer.host_names = [h["name"] for h in reply.data]

    async def run_line(self, line: str) -> bool:
        """Run one line; False when the user wants to leave."""
        try:
            words = shlex.split(line)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return True
        if not words:
            return True
        verb = words[0]
        if verb in ("quit", "exit"):
            return False
        if verb == "start":
            outcome = await asyncio.to_thread(daemon.start, self.paths, words[1:])
            print(outcome.message, file=sys.stdout if outcome.ok else sys.stderr)
            return True
        if verb == "stop":
            await self.stop(words[1:])
            return True
        if verb == "help":
            try:
                print((await TABLE.run(None, words)).text)
            except CommandError as exc:
                print(f"error: {exc.message}", file=sys.stderr)
            return True
        if not await self.connect():
            return True
        assert self.client is not None
        try:
            reply = await self.client.request(words)
            if not reply.ok and needs_force(reply.data) and "-force" not in words:
                print(reply.text, file=sys.stderr)
                if not await self.ask(f"{shlex.join(words)} anyway?"):
                    print("not done", file=sys.stderr)
                    return True
                reply = await self.client.request(words + ["-force"])
        except ControllerNotRunning:
            print("pcontrol is not running; type `start` to start it", file=sys.stderr)
            self.client = None
            return True
        except ClientError as exc:
            print(f"error: {exc}", file=sys.stderr)
            self.client = None
            return True
        if reply.ok:
            if reply.text:
                print(reply.text)
        else:
            print(f"error: {reply.text}", file=sys.stderr)
        if words[0].startswith("ho"):
            await self.refresh_hosts()
        return True

    async def stop(self, flags: list[str]) -> None:
        """`stop ?-kill? ?-force?`: asks before stopping with jobs out."""
        names = {flag.lstrip("-") for flag in flags}
        if not names <= {"kill", "force"}:
            print("usage: stop ?-kill? ?-force?", file=sys.stderr)
            return
        kill, force = "kill" in names, "force" in names
        outcome = await asyncio.to_thread(daemon.stop, self.paths, kill=kill, force=force)
        if not outcome.ok and outcome.needs_force:
            print(outcome.message, file=sys.stderr)
            if not await self.ask("stop" + (" -kill" if kill else "") + " anyway?"):
                print("not stopped", file=sys.stderr)
                return
            outcome = await asyncio.to_thread(daemon.stop, self.paths, kill=kill, force=True)
        print(outcome.message, file=sys.stdout if outcome.ok else sys.stderr)
        if outcome.ok and self.client is not None:
            await self.client.close()
            self.client = None

    async def loop(self) -> int:
        self.paths.ensure_home()
        session: PromptSession[str] = PromptSession(
            history=FileHistory(str(self.paths.history)), completer=self.completer,
            complete_while_typing=False)

        async def ask(question: str) -> bool:
            try:
                answer = await PromptSession().prompt_async(f"{question} [y/N] ")
            except (KeyboardInterrupt, EOFError):
                return False
            return answer.strip().lower() in ("y", "yes")

        self.ask = ask
        await self.connect()
        # Replies are printed between prompts, never while one is shown, so plain print()
        # keeps them in order; patch_stdout would write them from a helper thread, possibly
        # after the next prompt is drawn.
        while True:
            try:
                line = await session.prompt_async("pcontrol> ")
            except KeyboardInterrupt:
                continue
            except EOFError:
                break
            if not await self.run_line(line):
                break
        if self.client is not None:
            await self.client.close()
        return 0


async def _never(question: str) -> bool:
    """Without a terminal to ask on, the answer is no."""
    return False


def run_prompt(paths: Paths) -> int:
    return asyncio.run(Prompt(paths).loop())
