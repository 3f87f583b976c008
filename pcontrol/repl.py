"""The interactive `pcontrol` prompt (prompt_toolkit).

Each line is split like a shell line (shlex: quotes work, Tcl braces do not) and sent to the
daemon as one command; the reply's text is printed. `help` is answered from the command
table, `start` / `stop` manage the daemon, `quit` / `exit` / Ctrl-D leave, Ctrl-C clears the
line. Completion knows commands, subcommands, options, host names and job states, all from
the same table as everything else. History lives in $SCHED_HOME/pcontrol_history.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
from collections.abc import Iterable

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


class Prompt:
    def __init__(self, paths: Paths):
        self.paths = paths
        self.client: ControllerClient | None = None
        self.completer = PcontrolCompleter()

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
        if verb in ("start", "stop"):
            runner = daemon.start if verb == "start" else daemon.stop
            args = (self.paths, words[1:]) if verb == "start" else (self.paths,)
            outcome = await asyncio.to_thread(runner, *args)
            print(outcome.message, file=sys.stdout if outcome.ok else sys.stderr)
            if verb == "stop" and self.client is not None:
                await self.client.close()
                self.client = None
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

    async def loop(self) -> int:
        self.paths.ensure_home()
        session: PromptSession[str] = PromptSession(
            history=FileHistory(str(self.paths.history)), completer=self.completer,
            complete_while_typing=False)
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


def run_prompt(paths: Paths) -> int:
    return asyncio.run(Prompt(paths).loop())
