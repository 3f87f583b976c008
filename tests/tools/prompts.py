"""Waiting for a new prompt of a prompt_toolkit program (sched, pcontrol) on a pty.

prompt_toolkit redraws the whole input, prompt text included, at every keystroke, so matching
the bare prompt text ("sched>") can take a redraw of a block still being typed for the prompt
after it. The test's next keys then reach the terminal between two prompts, where its line
discipline (not the program) reads them: a Ctrl-D there is lost, and the test waits for a
reply that never comes. A prompt that starts turns bracketed paste on (ESC [?2004h) first; a
redraw does not. So: that sequence, then the prompt text, with no other start in between.
"""

from __future__ import annotations

import re


def new_prompt(text: str) -> re.Pattern[str]:
    """A pattern for pexpect's `expect` that matches a new prompt showing `text`."""
    return re.compile(r"\x1b\[\?2004h(?:(?!\x1b\[\?2004h).)*?" + re.escape(text), re.S)


#: a terminal control sequence (CSI ... final byte) prompt_toolkit may put between the characters
#: of one word it draws in two pieces (the typed part, then a completion)
_CSI = r"(?:\x1b\[[0-9;?]*[ -/]*[@-~])*"


def drawn(text: str) -> re.Pattern[str]:
    """A pattern that matches `text` as drawn on the screen, control sequences allowed between
    its characters (`check ho` typed, then `st` completed, is drawn `check ho` ESC[... `st`)."""
    return re.compile(_CSI.join(re.escape(ch) for ch in text))
