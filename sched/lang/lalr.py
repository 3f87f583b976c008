"""The LALR tables of lang/grammar/sched.lark, made by lark in advance and run by our own small
engine (psched.lang.lalrrun): a run imports neither lark nor its standalone module, and builds
no parser (start-up, issue 13; measured with bench/bench_user.py, figure 4).

    tables = parser_module()     # .STATES, .RULES, .LEXERS, ... for lalrrun.Parser

The package ships the tables (lang/grammar/lalr.py, written by scripts/gentables) with the
grammar text and options they were made from (compared at each start, without hashing: hashlib
loads OpenSSL) and a stamp (a hash of both). When the grammar differs (someone is editing it),
the tables are made again from the grammar with lark and kept in $XDG_CACHE_HOME/psched (by
default ~/.cache/psched) under the new stamp, so a changed grammar is always the one parsed;
with no usable cache directory they are made in memory at each start.
tests/lang/test_parser_cache.py checks that the shipped tables are current.

What the tables hold is what lark's LALR parser with its contextual lexer uses once built: the
parse table (by state: a terminal or rule name -> shift to a state, or reduce by a rule), the
rules (name, length, which children the tree keeps and which `_rule`s it splices), and each
state's lexer as lark compiles it (its alternation of terminals, the string terminals folded
into a pattern, the terminals that may hold a newline, the ignored ones).
"""

from __future__ import annotations

import os
import types
from typing import TYPE_CHECKING, Any

from . import grammar
from .lazylog import lazy_logger

if TYPE_CHECKING:
    from pathlib import Path

log = lazy_logger(__name__)  # logging loads at the first message (start-up)

__all__ = ["parser_module", "stamp", "generate", "write_shipped", "CACHE_DIR_VAR"]

OPTIONS = {"parser": "lalr", "lexer": "contextual", "maybe_placeholders": False}
"""How lark builds the parser the tables are taken from."""
CACHE_DIR_VAR = "XDG_CACHE_HOME"
"""Where a parser made for a changed grammar is kept: $XDG_CACHE_HOME/psched."""
GRAMMAR = os.path.join(os.path.dirname(grammar.__file__), "sched.lark")
"""(Paths as strings: a run reads the grammar without loading pathlib, which an installed package
would load for nothing else; start-up, issue 13.)"""
SHIPPED = os.path.join(os.path.dirname(grammar.__file__), "lalr.py")


def stamp(text: str) -> str:
    """What a generated module must have been made from: the grammar and the options."""
    import hashlib  # only for a grammar the shipped module was not made from (see the module doc)

    return hashlib.sha256(repr((text, _options())).encode()).hexdigest()[:24]


def generate(text: str) -> str:
    """The tables module's code for grammar `text` (needs lark)."""
    from lark import Lark  # only to make the tables: never in a run whose grammar is the shipped one

    tables = _tables(Lark(text, **OPTIONS))
    lines = ["# psched: made from lang/grammar/sched.lark by scripts/gentables (psched.lang.lalr); do not edit",
             f"GRAMMAR_STAMP = {stamp(text)!r}",
             f"GRAMMAR_TEXT = {text!r}",
             f"GRAMMAR_OPTIONS = {_options()!r}"]
    lines += [f"{name} = {value!r}" for name, value in tables.items()]
    return "\n".join(lines) + "\n"


def _tables(lark: Any) -> dict[str, Any]:
    """What psched.lang.lalrrun needs of a built lark parser (LALR, contextual lexer)."""
    from lark.lexer import UnlessCallback
    from lark.parse_tree_builder import ChildFilterLALR_NoPlaceholders

    frontend = lark.parser
    parser = frontend.parser.parser
    table = parser.parse_table
    rules, rule_index = [], {}
    for rule, callback in parser.callbacks.items():
        if rule.options.expand1 or rule.alias or rule.options.template_source:
            raise RuntimeError(f"rule {rule} uses a lark feature psched.lang.lalrrun does not run")
        if isinstance(callback, ChildFilterLALR_NoPlaceholders):
            include = tuple((i, bool(expand)) for i, expand in callback.to_include)
        elif hasattr(callback, "to_include") or hasattr(callback, "node_builder"):
            raise RuntimeError(f"rule {rule}: a child filter psched.lang.lalrrun does not run")
        else:
            include = None
        rule_index[rule] = len(rules)
        rules.append((str(rule.origin.name), len(rule.expansion), include))
    states = {}
    for state, actions in table.states.items():
        states[state] = {str(name): (True, arg) if action.name == "Shift" else (False, rule_index[arg])
                         for name, action_arg in actions.items() for action, arg in [action_arg]}
    lexers, lexer_of_state, index_of = [], {}, {}
    for state, lexer in frontend.lexer.lexers.items():
        if id(lexer) not in index_of:
            index_of[id(lexer)] = len(lexers)
            lexers.append(_lexer_spec(lexer, UnlessCallback))
        lexer_of_state[state] = index_of[id(lexer)]
    (start,) = table.start_states.values()
    (end,) = table.end_states.values()
    return {"START_STATE": start, "END_STATE": end, "STATES": states, "RULES": tuple(rules),
            "LEXER_OF_STATE": lexer_of_state, "LEXERS": tuple(lexers),
            "ROOT_LEXER": _lexer_spec(frontend.lexer.root_lexer, UnlessCallback)}


def _lexer_spec(lexer: Any, unless_type: type) -> tuple:
    scanner = lexer.scanner  # (built now: lark builds it at the lexer's first use)
    unless = {}
    for name, callback in lexer.callback.items():
        if not isinstance(callback, unless_type):
            raise RuntimeError(f"terminal {name}: a lexer callback psched.lang.lalrrun does not run")
        unless[name] = tuple((m.pattern, m.flags) for m in callback.scanner._mres)
    return (tuple((m.pattern, m.flags) for m in scanner._mres), unless, tuple(sorted(lexer.newline_types)),
            tuple(sorted(lexer.ignore_types)), tuple(sorted(scanner.allowed_types)))


def _options() -> list:
    return sorted(OPTIONS.items())


def parser_module() -> types.ModuleType:
    """The tables module for the grammar as it is now."""
    with open(GRAMMAR, encoding="utf-8") as file:
        text = file.read()
    try:
        from .grammar import lalr as shipped  # the generated module: absent until scripts/gentables made it
    except ImportError:
        shipped = None
    if (shipped is not None and getattr(shipped, "GRAMMAR_TEXT", None) == text
            and getattr(shipped, "GRAMMAR_OPTIONS", None) == _options()):
        return shipped
    return _made(text, stamp(text))


def _made(text: str, want: str) -> types.ModuleType:
    """A module made for a grammar the shipped one is not: from the cache, else made (and kept)."""
    folder = _cache_dir()
    path = folder / f"lalr-{want}.py" if folder is not None else None
    code = None
    if path is not None:
        try:
            code = path.read_text(encoding="utf-8")
        except OSError:
            code = None
        if code is not None and f"GRAMMAR_STAMP = {want!r}\n" not in code[:400]:
            code = None  # damaged, or half written by a sched starting at the same moment
    if code is None:
        code = generate(text)
        if path is not None:
            _keep(path, code)
    module = types.ModuleType(f"psched.lang.grammar.lalr_{want}")
    module.__file__ = str(path) if path is not None else "<psched.lang.lalr>"
    exec(compile(code, module.__file__, "exec"), module.__dict__)
    return module


def _cache_dir() -> Path | None:
    from pathlib import Path  # a changed grammar only

    base = os.environ.get(CACHE_DIR_VAR) or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "psched" if os.path.isabs(base) else None


def _keep(path: Path, code: str) -> None:
    """Write the module whole (a temporary file renamed), or not at all."""
    from pclient.replacefile import replace_file  # (only when a new parser is kept: rare, after a grammar change)

    try:
        replace_file(path, code, dir_mode=0o700)
    except OSError as exc:
        log.debug("parser not kept in %s: %s", path.parent, exc)


def write_shipped() -> Path:
    """Write the tables the package ships (scripts/gentables)."""
    from pathlib import Path

    shipped = Path(SHIPPED)
    shipped.write_text(generate(Path(GRAMMAR).read_text(encoding="utf-8")), encoding="utf-8")
    return shipped
