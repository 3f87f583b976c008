"""The LALR parser of lang/grammar/sched.lark as a module of its own, made by lark's standalone
tool: importing it costs a fraction of importing lark and loading a parser lark has cached
(start-up, issue 13; measured with bench/bench_user.py, figure 4).

    lalr = parser_module()     # .Lark_StandAlone, .Token, .UnexpectedInput, ...

The package ships the module (lang/grammar/lalr.py, written by scripts/gentables)
with a stamp: the hash of the grammar and of the options it was made with. When the grammar
differs from the stamp's (someone is editing it), the module is made again from the grammar with
lark and kept in $XDG_CACHE_HOME/psched (by default ~/.cache/psched) under the new stamp, so a
changed grammar is always the one parsed; with no usable cache directory it is made in memory
at each start. tests/lang/test_parser_cache.py checks that the shipped module is current.

The generated code tries `import regex` (for grammars with Unicode categories, which ours has
none of); that line is left out of the module, as importing the package costs ~10 ms. So is its
`import pickle, zlib, base64`, which only lark's own cache and save/load use, never the standalone
parser. The shipped module also holds the grammar text and options it was made from, so that a
run knows it is current by comparing them, without hashing (hashlib loads OpenSSL: ~3 ms).
"""

from __future__ import annotations

import io
import logging
import os
import sys
import types
from pathlib import Path

from . import grammar

log = logging.getLogger(__name__)

__all__ = ["parser_module", "stamp", "generate", "write_shipped", "CACHE_DIR_VAR"]

OPTIONS = {"parser": "lalr", "lexer": "contextual", "maybe_placeholders": False}
"""How lark builds the parser; the callbacks (psched.lang.parser._Builder) are given at load."""
CACHE_DIR_VAR = "XDG_CACHE_HOME"
"""Where a parser made for a changed grammar is kept: $XDG_CACHE_HOME/psched."""
GRAMMAR = Path(grammar.__file__).with_name("sched.lark")
SHIPPED = Path(grammar.__file__).with_name("lalr.py")
_REGEX_IMPORT = "try:\n    import regex\n    _has_regex = True\nexcept ImportError:\n    _has_regex = False\n"
_NO_REGEX = "_has_regex = False  # (psched.lang.lalr: the grammar has no Unicode categories)\n"
_PICKLE_IMPORT = "import pickle, zlib, base64\n"
_NO_PICKLE = "# (psched.lang.lalr: no `import pickle, zlib, base64`: only lark's cache and save/load use them)\n"


def stamp(text: str) -> str:
    """What a generated module must have been made from: the grammar and the options."""
    import hashlib  # only for a grammar the shipped module was not made from (see the module doc)

    return hashlib.sha256(repr((text, _options())).encode()).hexdigest()[:24]


def generate(text: str) -> str:
    """The standalone module's code for grammar `text` (needs lark)."""
    from lark import Lark  # only to make the module: never in a run whose grammar is the shipped one
    from lark.tools.standalone import gen_standalone

    out = io.StringIO()
    gen_standalone(Lark(text, **OPTIONS), out=out)
    code = out.getvalue()
    if _REGEX_IMPORT not in code or _PICKLE_IMPORT not in code:
        raise RuntimeError("lark's standalone module no longer imports regex and pickle as psched.lang.lalr expects")
    return ("# psched: made from lang/grammar/sched.lark by scripts/gentables (psched.lang.lalr); do not edit\n"
            f"GRAMMAR_STAMP = {stamp(text)!r}\n"
            f"GRAMMAR_TEXT = {text!r}\n"
            f"GRAMMAR_OPTIONS = {_options()!r}\n"
            + code.replace(_REGEX_IMPORT, _NO_REGEX).replace(_PICKLE_IMPORT, _NO_PICKLE))


def _options() -> list:
    return sorted(OPTIONS.items())


def parser_module() -> types.ModuleType:
    """The standalone parser module for the grammar as it is now."""
    text = GRAMMAR.read_text(encoding="utf-8")
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
    sys.modules[module.__name__] = module  # the generated code's dataclasses look their module up
    exec(compile(code, module.__file__, "exec"), module.__dict__)
    return module


def _cache_dir() -> Path | None:
    base = os.environ.get(CACHE_DIR_VAR) or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "psched" if os.path.isabs(base) else None


def _keep(path: Path, code: str) -> None:
    """Write the module whole (a temporary file renamed), or not at all."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}")
        temp.write_text(code, encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        log.debug("parser not kept in %s: %s", path.parent, exc)


def write_shipped() -> Path:
    """Write the module the package ships (scripts/gentables)."""
    SHIPPED.write_text(generate(GRAMMAR.read_text(encoding="utf-8")), encoding="utf-8")
    return SHIPPED
