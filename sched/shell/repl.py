"""The interactive sched shell: a prompt_toolkit prompt on the process's one asyncio loop.

    interact(interp, interrupts) -> exit status      (called by psched.shell.cli)

One concern per piece, as in ptpython: the completer (psched.shell.completer), the highlighting
(psched.shell.highlight through PygmentsLexer), the validator and the key bindings here, and a loop that
never dies: read a command, run it, print its result (if not empty) or its error, prompt again.

- Enter runs the input when it is complete and inserts a newline while something is open (a
  block, brace, quote, bracket or a trailing backslash); each continuation line's prompt says
  what is open at its start (`task>`, `{>`, `if>`). Esc Enter runs the input as it is. Both
  questions go to one psched.lang.openness.OpenTracker, which looks at each line once, so a long
  block costs the same per line as a short one.
- Inside a block the new line gets the indentation of the one before, unless more keys are
  already waiting (text pasted by a terminal without bracketed paste): pasted lines bring their
  own indentation, which must not pile up on ours. A bracketed paste lands as it is.
- The validator refuses input that cannot parse (other than being unfinished), shows why and
  puts the cursor at the error.
- `patch_stdout()` is active while a prompt is shown, so output of background work (the
  scheduler's messages, logging) appears above the prompt without garbling it. Background code
  must look up `sys.stdout` / `sys.stderr` when it writes (or use `interp.write`), not keep a
  reference from earlier. While a command runs, output goes straight to the terminal.
- Ctrl-C cancels the line being edited; while a command runs it interrupts it (see
  psched.shell.session.InterruptHandler). Ctrl-D on an empty line, `quit` and `exit` leave, after the quit
  checks agree or the user confirms (`confirm_leave`).
- History persists in $SCHED_HOME/history (psched.shell.paths).
- The scheduler's commands are loaded before the first prompt (as prompt_toolkit is), not at
  their first use as in `sched -c` and scripts (psched.lang.declared): the user's first task
  block runs at once.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, Callable

from prompt_toolkit import PromptSession
from prompt_toolkit.document import Document
from prompt_toolkit.enums import DEFAULT_BUFFER
from prompt_toolkit.application.current import get_app
from prompt_toolkit.filters import Condition, emacs_insert_mode, has_focus
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPress, KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.lexers import PygmentsLexer
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.styles import Style
from prompt_toolkit.validation import ValidationError, Validator

from .completer import SchedCompleter
from ..lang.errors import IncompleteError, ParseError, Pos, SchedError
from ..scheduler import commands as _scheduler_commands  # noqa: F401  (loaded up front at the prompt, see below)
from ..scheduler.eventloop import run_until
from .highlight import SchedLexer
from ..lang.openness import OpenTracker
from ..lang.parser import parse
from .paths import history_path
from .session import ExitStatus, InterruptHandler, QuitRequest, needs_more, quit_vetoes

log = logging.getLogger(__name__)

__all__ = ["interact", "Shell", "InputValidator", "confirm_leave", "continuation_label", "PROMPT", "INPUT_FILE"]

PROMPT = "sched> "
INPUT_FILE = "<input>"
"""The file name errors give for commands typed at the prompt."""

_TEXT_OPENERS = frozenset('{"[(\\')
"""Open constructs whose continuation lines are literal text (no auto-indent)."""

_CANCELLED = object()
"""What the prompt coroutine returns for Ctrl-C."""

STYLE = Style.from_dict({
    "prompt": "bold",
    "prompt-continuation": "#888888",
})


# --- pieces ------------------------------------------------------------------------------------------


def continuation_label(text_before: str, tracker: OpenTracker | None = None) -> str:
    """What is open at the end of `text_before`, as a continuation prompt shows it ("task", "{")."""
    still_open = needs_more(text_before, tracker)
    return still_open.opener if still_open is not None else "."


def _index_of(document: Document, pos: Pos | None) -> int:
    if pos is None:
        return len(document.text)
    return document.translate_row_col_to_index(max(pos.line - 1, 0), max(pos.column - 1, 0))


class InputValidator(Validator):
    """Refuse input that cannot parse; unfinished input is Enter's business, not an error.

    With the shell's tracker, input that it saw parse line by line is not parsed again.
    """

    def __init__(self, tracker: OpenTracker | None = None):
        self.tracker = tracker

    def validate(self, document: Document) -> None:
        if self.tracker is not None and self.tracker.parses(document.text):
            return
        try:
            parse(document.text, INPUT_FILE)
        except IncompleteError:
            return
        except ParseError as err:
            raise ValidationError(cursor_position=_index_of(document, err.pos), message=err.message) from None


def _typed(event: KeyPressEvent) -> bool:
    """No keys waiting: a person's keystroke, which gets an undo step. A paste gets none per
    key: each step is a copy of the whole buffer, and a pasted block of 2,000 lines made 2,000
    copies of a growing text (the paste is undone in one step, back to before it)."""
    return not event.app.key_processor.input_queue


def _key_bindings(tracker: OpenTracker) -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("enter", filter=has_focus(DEFAULT_BUFFER), save_before=_typed)
    def _enter(event: KeyPressEvent) -> None:
        buffer = event.current_buffer
        state = buffer.complete_state
        if state is not None and state.current_completion is not None:
            buffer.complete_state = None  # Enter takes the completion chosen in the menu
            return
        text = buffer.text
        still_open = needs_more(text, tracker) if text.strip() else None
        if still_open is not None:
            # Inside a block keep the indentation; inside braces or quotes the blanks would be
            # part of the text, so add none. Keys already waiting are a paste, whose lines bring
            # their own indentation.
            queue = event.app.key_processor.input_queue
            buffer.newline(copy_margin=still_open.opener not in _TEXT_OPENERS and not queue)
            _take_paste(buffer, queue, tracker)
        else:
            buffer.validate_and_handle()

    waiting = Condition(lambda: bool(get_app().key_processor.input_queue))

    @bindings.add(Keys.Any, filter=emacs_insert_mode & has_focus(DEFAULT_BUFFER) & waiting, save_before=_typed)
    def _insert_run(event: KeyPressEvent) -> None:
        # Keys already waiting are a paste (a person cannot type that fast): take what follows
        # in one go, not one key binding lookup (a walk of the whole layout) per key.
        event.current_buffer.insert_text(event.data * event.arg)
        _take_paste(event.current_buffer, event.app.key_processor.input_queue, tracker)

    @bindings.add("escape", "enter", filter=has_focus(DEFAULT_BUFFER))
    def _run_as_is(event: KeyPressEvent) -> None:
        event.current_buffer.validate_and_handle()

    return bindings


def _take_paste(buffer: Any, queue: Any, tracker: OpenTracker) -> None:
    """Insert the pasted keys waiting in `queue`: plain characters, and Enter while something
    is open (a newline, without copying the margin: pasted lines bring their own). Stops at
    any other key, and at an Enter that would run the input: the key bindings take those."""
    while queue:
        run = []
        while queue and _plain(queue[0]):
            run.append(queue.popleft().data)
        if run:
            buffer.insert_text("".join(run))
        if not queue or queue[0].key != Keys.ControlM or buffer.complete_state is not None:
            return
        text = buffer.text
        if not text.strip() or needs_more(text, tracker) is None:
            return
        queue.popleft()
        buffer.newline(copy_margin=False)


def _plain(key: KeyPress) -> bool:
    """A printable character that nothing but self-insert handles."""
    return len(key.data) == 1 and key.key == key.data and key.data.isprintable()


class _SafeFileHistory(FileHistory):
    """File history that survives an unreadable or unwritable file (then it is kept in memory)."""

    def load_history_strings(self):  # type: ignore[override]
        try:
            yield from super().load_history_strings()
        except OSError as err:
            log.warning("cannot read the history %s: %s", self.filename, err)

    def store_string(self, string: str) -> None:
        try:
            super().store_string(string)
        except OSError as err:
            log.warning("cannot save the history to %s: %s", self.filename, err)


def _history(path: Path | None) -> History:
    try:
        return _SafeFileHistory(str(path if path is not None else history_path()))
    except OSError as err:
        log.warning("history will not be kept: %s", err)
        return InMemoryHistory()


def confirm_leave(interp: Any, force: bool, ask: Callable[[str], bool]) -> bool:
    """May the shell leave? Yes when forced or no quit check objects; else `ask` the user."""
    if force:
        return True
    reasons = quit_vetoes(interp)
    if not reasons:
        return True
    return ask(f"{'; '.join(reasons)}: really quit?")


# --- the shell -----------------------------------------------------------------------------------------


class Shell:
    """The prompt loop around one interpreter."""

    def __init__(self, interp: Any, interrupts: InterruptHandler, *, history: History | None = None,
                 input: Any = None, output: Any = None):
        self.interp = interp
        self.interrupts = interrupts
        self._input = input
        self._output = output
        self._stdout = interp.stdout  # where the interpreter writes while no prompt is shown
        self._tracker = OpenTracker()  # what is open in the buffer, line by line
        self.session: PromptSession[str] = PromptSession(
            PROMPT,
            multiline=True,
            prompt_continuation=self._continuation,
            key_bindings=_key_bindings(self._tracker),
            history=history if history is not None else _history(None),
            completer=SchedCompleter(interp),
            complete_while_typing=False,
            lexer=PygmentsLexer(SchedLexer),
            validator=InputValidator(self._tracker),
            validate_while_typing=False,
            style=STYLE,
            input=input,
            output=output,
        )
        # A paste arrives faster than the screen can be drawn: draw at most 25 times a second.
        self.session.app.min_redraw_interval = 0.04

    def _continuation(self, width: int, line_number: int, wrap_count: int) -> str:
        if wrap_count:
            return " " * width
        opener = self._tracker.opener_at(self.session.default_buffer.text, line_number)
        return f"{opener or '.'}> ".rjust(width)

    def read(self) -> str:
        """One complete input from the prompt (KeyboardInterrupt: cancelled, EOFError: Ctrl-D).

        The event loop runs while the prompt waits: that is when the scheduler does its work.
        """
        return self._prompt(self.session, None)

    def _prompt(self, session: PromptSession, message: str | None) -> str:
        answer = run_until(self._prompt_async(session, message), "prompt", interruptible=False)
        if answer is _CANCELLED:
            raise KeyboardInterrupt
        return answer

    async def _prompt_async(self, session: PromptSession, message: str | None) -> Any:
        # Only while a prompt is on the screen does output need to go above it: evaluation then
        # writes straight to the terminal, in order with the programs it runs. Leaving the
        # context flushes whatever background work wrote meanwhile.
        with patch_stdout():
            self.interp.stdout = sys.stdout
            try:
                return await session.prompt_async(message, handle_sigint=False)
            except KeyboardInterrupt:
                # Not raised through the loop: asyncio lets a KeyboardInterrupt escape its task
                # and then complains that nobody retrieved it.
                return _CANCELLED
            finally:
                self.interp.stdout = self._stdout

    def run(self) -> int:
        """Prompt, run, repeat, until the user leaves; returns the exit status."""
        interp = self.interp
        interp.interactive = True
        try:
            while True:
                try:
                    text = self.read()
                except KeyboardInterrupt:
                    continue
                except EOFError:
                    if self.may_leave(force=False):
                        return ExitStatus.OK
                    continue
                status = self.execute(text)
                if status is not None:
                    return status
        finally:
            interp.interactive = False

    def execute(self, text: str) -> int | None:
        """Run one input; print its result or error. Returns an exit status when leaving."""
        if not text.strip():
            return None
        try:
            with self.interrupts.running():
                result = self.interp.eval(text, INPUT_FILE)
        except SchedError as err:
            print(err.render(), file=sys.stderr)
            return None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return None
        except QuitRequest as request:
            return request.status if self.may_leave(request.force) else None
        if result:
            print(result)
        return None

    def may_leave(self, force: bool) -> bool:
        return confirm_leave(self.interp, force, self.ask)

    def ask(self, question: str) -> bool:
        """A yes/no question at the prompt; anything but y/yes (or Ctrl-C, Ctrl-D) is no."""
        session: PromptSession[str] = PromptSession(input=self._input, output=self._output)
        try:
            answer = self._prompt(session, f"{question} [y/N] ")
        except (KeyboardInterrupt, EOFError):
            return False
        return answer.strip().lower() in ("y", "yes")


def interact(interp: Any, interrupts: InterruptHandler, *, history: History | None = None,
             input: Any = None, output: Any = None) -> int:
    """Run the interactive shell on `interp` until the user leaves; returns the exit status."""
    return Shell(interp, interrupts, history=history, input=input, output=output).run()
