"""Pygments lexer for the sched language: highlighting at the prompt and in `pygmentize -l sched`.

Registered under the entry point group "pygments.lexers" (pyproject.toml), so any Pygments tool
finds it by the name `sched` or by a file name `*.sched`. The shell uses it through
prompt_toolkit's PygmentsLexer.

It follows the language's rules closely enough for colour, not for meaning:

    # comment                  Comment.Single     (only where a command may start)
    task / if / end / ...      Keyword            (block and control words as the first word)
    set / echo / ...           Name.Builtin       (a command the language defines)
    mymacro                    Name.Function      (any other first word: a macro or proc)
    $x ${x} $a(key)            Name.Variable
    "text"                     String.Double      ($vars and [commands] inside still light up)
    \\n \\t \\$                   String.Escape
    -option                    Name.Attribute
    42 3.5 0x1f                Number
    { } [ ] ;                  Punctuation        (braces and brackets start nested commands)
"""

from __future__ import annotations

from pygments.lexer import RegexLexer, default, include, words
from pygments.token import Comment, Keyword, Name, Number, Punctuation, String, Text, Whitespace

from ..lang.registry import BUILTINS

__all__ = ["SchedLexer", "KEYWORDS"]

KEYWORDS = (
    "task.exec", "task.exit", "task", "macro", "proc", "if", "elif", "elseif", "else", "end", "while",
    "for", "foreach", "break", "continue", "return", "skip", "catch", "error", "switch", "case", "default",
    "try", "on", "trap", "finally", "throw",
)
"""First words shown as keywords: block openers and control flow."""

_WORD_END = r"(?=[\s;\]}]|$)"
_VAR_NAME = r"(?:::)?[A-Za-z0-9_]+(?:::[A-Za-z0-9_]+)*"
_BARE_FIRST = r'[^\s;\[\]{}"$\\#][^\s;\[\]{}"$\\]*'


def _builtin_names() -> dict:
    """The language's commands, once the package has registered them."""
    return BUILTINS.commands


def _command_name(lexer: RegexLexer, match):
    name = match.group(0)
    kind = Name.Builtin if name in _builtin_names() else Name.Function
    yield match.start(), kind, name


def _command_rules(suffix: str) -> list:
    """What may stand where a command starts; `suffix` names the closing context."""
    return [
        (r"[ \t\r\f\v]+|\\\n", Whitespace),
        (r"\n", Whitespace),
        (r";", Punctuation),
        (r"#(\\\n|\\.|[^\\\n])*", Comment.Single),
        (words(KEYWORDS, suffix=_WORD_END), Keyword, "args" + suffix),
        (_BARE_FIRST, _command_name, "args" + suffix),
        default("args" + suffix),
    ]


class SchedLexer(RegexLexer):
    """Lexer for sched scripts (`*.sched`) and the sched shell."""

    name = "Sched"
    aliases = ["sched"]
    filenames = ["*.sched"]
    mimetypes = ["text/x-sched"]

    tokens = {
        "root": _command_rules(""),
        "brace": [(r"\}", Punctuation, "#pop"), *_command_rules("-brace")],
        "bracket": [(r"\]", Punctuation, "#pop"), *_command_rules("-bracket")],
        "args": [
            (r"\n", Whitespace, "#pop"),
            (r";", Punctuation, "#pop"),
            include("word"),
        ],
        "args-brace": [
            (r"\}", Punctuation, ("#pop", "#pop")),
            (r"\n", Whitespace, "#pop"),
            (r";", Punctuation, "#pop"),
            include("word"),
        ],
        "args-bracket": [
            (r"\]", Punctuation, ("#pop", "#pop")),
            (r"\n", Whitespace, "#pop"),
            (r";", Punctuation, "#pop"),
            include("word"),
        ],
        "word": [
            (r"[ \t\r\f\v]+|\\\n", Whitespace),
            (r"\{", Punctuation, "brace"),
            (r"\[", Punctuation, "bracket"),
            (r'"', String.Double, "string"),
            include("substitution"),
            (r"(elseif|else|then)" + _WORD_END, Keyword),
            (r"-[A-Za-z][\w.-]*" + _WORD_END, Name.Attribute),
            (r"0[xX][0-9a-fA-F]+" + _WORD_END, Number.Hex),
            (r"[-+]?(\d+\.\d*|\.\d+)([eE][-+]?\d+)?" + _WORD_END, Number.Float),
            (r"[-+]?\d+" + _WORD_END, Number.Integer),
            (r'[^\s;\[\]{}"$\\]+', Text),
            (r'"', Text),
            (r"[\]}]", Punctuation),  # a stray closer: the parser will say so
        ],
        "substitution": [
            (r"\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|[0-7]{1,3}|.)", String.Escape),
            (r"\$\{[^}]*\}", Name.Variable),
            (r"\$" + _VAR_NAME + r"\(", Name.Variable, "index"),
            (r"\$" + _VAR_NAME, Name.Variable),
            (r"\$", Text),
        ],
        "string": [
            (r'"', String.Double, "#pop"),
            (r"\\\n[ \t]*", String.Escape),
            (r"\[", Punctuation, "bracket"),
            include("substitution"),
            (r'[^"\\$\[]+', String.Double),
        ],
        "index": [
            (r"\)", Name.Variable, "#pop"),
            (r"\[", Punctuation, "bracket"),
            include("substitution"),
            (r"[^)$\[\\]+", String),
        ],
    }
