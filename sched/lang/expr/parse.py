"""The syntax of Tcl's `expr`: the lexer turns expression text into tokens (substitutions
become parse-tree leaves there), and the parser (precedence climbing over the token list) builds
the parse tree that the compiler in expr turns into closures.

Every node records its offset in the text and its depth; trees deeper than MAX_DEPTH are refused.
"""

from __future__ import annotations

import enum
import re

from ..lazyre import lazy_compile
from ..errors import ExprError
from .funcs import FUNCTIONS
from .ops import _BINARY, _LOGIC_PREC, _UNARY, _WORD_OPS
from .values import _BOOL_WORDS, Value, _short, parse_number
from ..tcllist import backslash_at, skip_braced

# Deeper trees than this are refused (evaluation recurses once per level).
MAX_DEPTH = 100


# =============================================================================================
# tokens


class Tok(enum.Enum):
    NUM = "number"
    STR = "string"  # {braced} text or a boolean bareword: a constant string
    QUOTE = "quoted string"  # "..." with substitutions
    VAR = "variable"
    SCRIPT = "command substitution"
    FUNC = "function name"
    OP = "operator"
    LPAREN = "("
    RPAREN = ")"
    COMMA = ","
    QUESTION = "?"
    COLON = ":"
    END = "end of expression"


class _Token:
    __slots__ = ("kind", "value", "start", "end", "extra")

    def __init__(self, kind: Tok, value: object, start: int, end: int, extra: object = None):
        self.kind = kind
        self.value = value
        self.start = start
        self.end = end
        self.extra = extra


_SPACE_RE = lazy_compile(r"[ \t\n\r\f\v]*")
_NUM_TOKEN_RE = lazy_compile(
    r"0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[dD][0-9]+"
    r"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
)
_WORD_TAIL_RE = lazy_compile(r"[\w.]*")
_DIGITS = frozenset("0123456789")
_BAREWORD_RE = lazy_compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VARNAME_RE = lazy_compile(r"(?:[A-Za-z0-9_]|::+)+")
_OP_RE = lazy_compile(r"\*\*|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%<>&^|!~?:(),]")
_QUOTE_SCAN_RE = lazy_compile(r'[\\\[$"]')
_INDEX_SCAN_RE = lazy_compile(r"[\\\[$)]")
_BS_NEWLINE_RE = lazy_compile(r"\\\\|\\\n[ \t]*")
_PUNCT = {"(": Tok.LPAREN, ")": Tok.RPAREN, ",": Tok.COMMA, "?": Tok.QUESTION, ":": Tok.COLON}


def find_script_end(text: str, pos: int) -> int:
    """Index of the `]` closing the command substitution whose body starts at `pos`.

    Honours nested brackets, braces and quotes at word starts, and backslashes.
    Raises ExprError("missing close-bracket") at the opening bracket.
    """
    stack = ["["]  # open contexts: "[" a script, '"' a quoted word inside it
    word_start = True
    i = pos
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            word_start = False
            continue
        if stack[-1] == '"':
            if c == '"':
                stack.pop()
            elif c == "[":
                stack.append("[")
                word_start = True
            i += 1
            continue
        if c == "]":
            stack.pop()
            if not stack:
                return i
            word_start = False
        elif c == "[":
            stack.append("[")
            word_start = True
        elif word_start and c == "{":
            end = skip_braced(text, i)
            if end < 0:
                break
            i = end
            word_start = False
            continue
        elif word_start and c == '"':
            stack.append('"')
            word_start = False
        else:
            word_start = c in " \t\n\r\f\v;"
        i += 1
    raise ExprError("missing close-bracket", offset=pos - 1)


def _braced_body(raw: str) -> str:
    """A {braced} operand is literal, except that backslash-newline-blanks becomes one space."""
    if "\\\n" not in raw:
        return raw
    return _BS_NEWLINE_RE.sub(lambda m: m.group() if m.group() == "\\\\" else " ", raw)


class _Lexer:
    """Turns expression text into tokens; substitutions become parse-tree leaves here."""

    def __init__(self, text: str):
        self.text = text

    def tokens(self) -> list[_Token]:
        text = self.text
        n = len(text)
        out: list[_Token] = []
        pos = _SPACE_RE.match(text, 0).end()  # type: ignore[union-attr]
        while pos < n:
            out.append(self._token(pos))
            pos = _SPACE_RE.match(text, out[-1].end).end()  # type: ignore[union-attr]
        out.append(_Token(Tok.END, None, n, n))
        return out

    def _token(self, pos: int) -> _Token:
        text = self.text
        c = text[pos]
        if c in _DIGITS or (c == "." and text[pos + 1 : pos + 2] in _DIGITS):
            return self._number(pos)
        if c == "$":
            node = self._varref(pos, 0)
            if node is None:
                raise ExprError('missing variable name after "$"', offset=pos)
            return _Token(Tok.VAR, node, pos, node.end)
        if c == "[":
            end = find_script_end(text, pos + 1)
            return _Token(Tok.SCRIPT, _Script(text[pos + 1 : end], pos), pos, end + 1)
        if c == '"':
            parts, end = self._parts(pos + 1, '"', 0)
            return _Token(Tok.QUOTE, parts, pos, end + 1)
        if c == "{":
            end = skip_braced(text, pos)
            if end < 0:
                raise ExprError("missing close-brace", offset=pos)
            return _Token(Tok.STR, _braced_body(text[pos + 1 : end - 1]), pos, end)
        m = _BAREWORD_RE.match(text, pos)
        if m is not None:
            return self._bareword(m)
        m = _OP_RE.match(text, pos)
        if m is not None:
            op = m.group()
            return _Token(_PUNCT.get(op, Tok.OP), op, pos, m.end())
        shown = f'"{c}"' if c.isprintable() else f"U+{ord(c):04X}"
        raise ExprError(f"invalid character {shown}", offset=pos)

    def _number(self, pos: int) -> _Token:
        text = self.text
        m = _NUM_TOKEN_RE.match(text, pos)
        end = m.end()  # type: ignore[union-attr]
        if end < len(text) and (text[end].isalnum() or text[end] in "_."):
            word_end = _WORD_TAIL_RE.match(text, end).end()  # type: ignore[union-attr]
            raise ExprError(f'invalid bareword "{text[pos:word_end]}"', offset=pos)
        spelling = text[pos:end]
        value = parse_number(spelling)
        if value is None:
            raise ExprError(f'number too large: "{_short(spelling)}"', offset=pos)
        return _Token(Tok.NUM, value, pos, end, spelling)

    def _bareword(self, m: re.Match[str]) -> _Token:
        word, pos, end = m.group(), m.start(), m.end()
        text = self.text
        if word in _WORD_OPS:
            return _Token(Tok.OP, word, pos, end)
        after = _SPACE_RE.match(text, end).end()  # type: ignore[union-attr]
        if after < len(text) and text[after] == "(":
            return _Token(Tok.FUNC, word, pos, end)
        lower = word.lower()
        if lower in ("inf", "infinity", "nan"):
            return _Token(Tok.NUM, parse_number(word), pos, end, word)
        if lower in _BOOL_WORDS:
            return _Token(Tok.STR, word, pos, end)
        raise ExprError(
            f'invalid bareword "{word}" (a string must be quoted "{word}" or braced {{{word}}},'
            f" a variable needs ${word})",
            offset=pos,
        )

    def _varref(self, pos: int, depth: int) -> _Var | None:
        """A `$` reference at `pos`, or None when no variable name follows the `$`."""
        text = self.text
        if text.startswith("${", pos):
            close = text.find("}", pos + 2)
            if close < 0:
                raise ExprError("missing close-brace for variable name", offset=pos + 1)
            return _Var(text[pos + 2 : close], None, pos, close + 1)
        m = _VARNAME_RE.match(text, pos + 1)
        if m is None:
            return None
        name, end = m.group(), m.end()
        if end < len(text) and text[end] == "(":
            index, close = self._parts(end + 1, ")", depth + 1)
            return _Var(name, index, pos, close + 1)
        return _Var(name, None, pos, end)

    def _parts(self, pos: int, terminator: str, depth: int) -> tuple[list[str | _Node], int]:
        """Text with $, [] and backslash substitution up to `terminator`; returns parts and its index."""
        if depth > MAX_DEPTH:
            raise ExprError(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", offset=pos)
        text = self.text
        n = len(text)
        parts: list[str | _Node] = []
        literal: list[str] = []
        i = pos
        scan_re = _QUOTE_SCAN_RE if terminator == '"' else _INDEX_SCAN_RE
        while i < n:
            c = text[i]
            if c == terminator:
                if literal:
                    parts.append("".join(literal))
                return parts, i
            if c == "\\":
                sub, i = backslash_at(text, i)
                literal.append(sub)
            elif c == "[":
                end = find_script_end(text, i + 1)
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append(_Script(text[i + 1 : end], i))
                i = end + 1
            elif c == "$":
                var = self._varref(i, depth)
                if var is None:
                    literal.append("$")
                    i += 1
                else:
                    if literal:
                        parts.append("".join(literal))
                        literal = []
                    parts.append(var)
                    i = var.end
            else:
                m = scan_re.search(text, i)
                j = m.start() if m is not None else n
                literal.append(text[i:j])
                i = j
        if terminator == '"':
            raise ExprError("missing close-quote", offset=pos - 1)
        raise ExprError('missing ")" to close the array index', offset=pos - 1)


# =============================================================================================
# parse tree


class _Node:
    """A parse-tree node; `offset` is where it starts in the text, `depth` its height."""

    __slots__ = ("offset", "depth")


class _Lit(_Node):
    __slots__ = ("value", "text")

    def __init__(self, value: Value, text: str, offset: int):
        self.value, self.text, self.offset, self.depth = value, text, offset, 1


def _parts_depth(parts: list[str | _Node] | None) -> int:
    return 1 + max((p.depth for p in parts or () if isinstance(p, _Node)), default=0)


class _Var(_Node):
    __slots__ = ("name", "index", "end")

    def __init__(self, name: str, index: list[str | _Node] | None, offset: int, end: int):
        self.name, self.index, self.offset, self.end = name, index, offset, end
        self.depth = _parts_depth(index)


class _Script(_Node):
    __slots__ = ("body",)

    def __init__(self, body: str, offset: int):
        self.body, self.offset, self.depth = body, offset, 1


class _Quote(_Node):
    __slots__ = ("parts",)

    def __init__(self, parts: list[str | _Node], offset: int):
        self.parts, self.offset, self.depth = parts, offset, _parts_depth(parts)


class _Unary(_Node):
    __slots__ = ("op", "operand")

    def __init__(self, op: str, operand: _Node, offset: int):
        self.op, self.operand, self.offset, self.depth = op, operand, offset, operand.depth + 1


class _Chain(_Node):
    """first op1 x1 op2 x2 ... evaluated left to right (a left-nested tree, flattened)."""

    __slots__ = ("first", "rest")

    def __init__(self, first: _Node, op: str, op_offset: int, second: _Node):
        self.first = first
        self.rest = [(op, op_offset, second)]
        self.offset = first.offset
        self.depth = max(first.depth, second.depth) + 1


class _Logic(_Node):
    __slots__ = ("op", "operands")

    def __init__(self, op: str, left: _Node, right: _Node):
        self.op, self.offset = op, left.offset
        self.operands = [left, right]
        self.depth = max(left.depth, right.depth) + 1


class _Cond(_Node):
    __slots__ = ("cond", "then", "other")

    def __init__(self, cond: _Node, then: _Node, other: _Node):
        self.cond, self.then, self.other, self.offset = cond, then, other, cond.offset
        self.depth = max(cond.depth, then.depth, other.depth) + 1


class _Call(_Node):
    __slots__ = ("name", "args")

    def __init__(self, name: str, args: list[_Node], offset: int):
        self.name, self.args, self.offset = name, args, offset
        self.depth = 1 + max((a.depth for a in args), default=0)


# =============================================================================================
# parser


def _too_deep(offset: int) -> ExprError:
    return ExprError(f"expression is nested too deeply (more than {MAX_DEPTH} levels)", offset=offset)


class _Parser:
    """Precedence parsing over the token list; recursion only for (), ?:, unary ops and calls."""

    def __init__(self, text: str, tokens: list[_Token]):
        self.text = text
        self.toks = tokens
        self.i = 0

    def _spelling(self, t: _Token) -> str:
        return _short(self.text[t.start : t.end]) if t.kind is not Tok.END else "end of expression"

    def parse(self) -> _Node:
        if self.toks[0].kind is Tok.END:
            raise ExprError("empty expression", offset=0)
        node = self._ternary(0)
        t = self.toks[self.i]
        if t.kind is not Tok.END:
            self._after_operand(t)
        return node

    def _after_operand(self, t: _Token) -> None:
        """Raise the error for token `t` found where an operator (or the end) was expected."""
        if t.kind is Tok.RPAREN:
            raise ExprError('unexpected ")" (unbalanced parentheses)', offset=t.start)
        if t.kind is Tok.COLON:
            raise ExprError('unexpected ":" without a preceding "?"', offset=t.start)
        if t.kind is Tok.COMMA:
            raise ExprError('unexpected "," outside a function call', offset=t.start)
        raise ExprError(f'missing operator before "{self._spelling(t)}"', offset=t.start)

    def _ternary(self, depth: int) -> _Node:
        if depth >= MAX_DEPTH:
            raise _too_deep(self.toks[self.i].start)
        cond = self._binary(depth)
        q = self.toks[self.i]
        if q.kind is not Tok.QUESTION:
            return cond
        self.i += 1
        then = self._ternary(depth + 1)
        colon = self.toks[self.i]
        if colon.kind is not Tok.COLON:
            if colon.kind is Tok.END or colon.kind is Tok.RPAREN or colon.kind is Tok.COMMA:
                raise ExprError('missing ":" for the "?" of a conditional', offset=colon.start)
            self._after_operand(colon)
        self.i += 1
        other = self._ternary(depth + 1)
        node = _Cond(cond, then, other)
        if node.depth > MAX_DEPTH:
            raise _too_deep(q.start)
        return node

    def _binary(self, depth: int) -> _Node:
        operands = [self._unary(depth)]
        ops: list[tuple[str, int, int]] = []  # (operator, precedence, offset)
        toks = self.toks
        while True:
            t = toks[self.i]
            if t.kind is not Tok.OP:
                break
            op = t.value
            entry = _BINARY.get(op)  # type: ignore[arg-type]
            prec = entry[0] if entry is not None else _LOGIC_PREC.get(op)  # type: ignore[arg-type]
            if prec is None:
                break  # "!" or "~" where an operator belongs: reported by the caller
            self.i += 1
            while ops and (ops[-1][1] > prec or (ops[-1][1] == prec and op != "**")):
                self._reduce(operands, ops)
            ops.append((op, prec, t.start))  # type: ignore[arg-type]
            operands.append(self._unary(depth))
        while ops:
            self._reduce(operands, ops)
        return operands[0]

    @staticmethod
    def _reduce(operands: list[_Node], ops: list[tuple[str, int, int]]) -> None:
        op, _, offset = ops.pop()
        right = operands.pop()
        left = operands.pop()
        node: _Node
        if op in _LOGIC_PREC:
            if isinstance(left, _Logic) and left.op == op:
                left.operands.append(right)
                left.depth = max(left.depth, right.depth + 1)
                node = left
            else:
                node = _Logic(op, left, right)
        elif isinstance(left, _Chain):
            left.rest.append((op, offset, right))
            left.depth = max(left.depth, right.depth + 1)
            node = left
        else:
            node = _Chain(left, op, offset, right)
        if node.depth > MAX_DEPTH:
            raise _too_deep(offset)
        operands.append(node)

    def _unary(self, depth: int) -> _Node:
        t = self.toks[self.i]
        self.i += 1
        kind = t.kind
        if kind is Tok.NUM:
            return _Lit(t.value, t.extra, t.start)  # type: ignore[arg-type]
        if kind is Tok.VAR or kind is Tok.SCRIPT:
            return t.value  # type: ignore[return-value]
        if kind is Tok.STR:
            return _Lit(t.value, t.value, t.start)  # type: ignore[arg-type]
        if kind is Tok.QUOTE:
            parts = t.value
            if all(type(p) is str for p in parts):  # type: ignore[attr-defined]
                s = "".join(parts)  # type: ignore[arg-type]
                return _Lit(s, s, t.start)
            return _Quote(parts, t.start)  # type: ignore[arg-type]
        if kind is Tok.OP and t.value in _UNARY:
            if depth >= MAX_DEPTH:
                raise _too_deep(t.start)
            node = _Unary(t.value, self._unary(depth + 1), t.start)  # type: ignore[arg-type]
            if node.depth > MAX_DEPTH:
                raise _too_deep(t.start)
            return node
        if kind is Tok.LPAREN:
            return self._paren(t, depth)
        if kind is Tok.FUNC:
            return self._call(t, depth)
        self.i -= 1
        prev = self.toks[self.i - 1] if self.i > 0 else None
        if kind is Tok.END and prev is not None and prev.kind is Tok.LPAREN:
            raise ExprError('unbalanced parentheses: this "(" is never closed', offset=prev.start)
        if kind is Tok.RPAREN and (prev is None or prev.kind is Tok.LPAREN):
            raise ExprError('unexpected ")" (unbalanced parentheses)', offset=t.start)
        if prev is None:
            raise ExprError(f'missing operand before "{self._spelling(t)}"', offset=t.start)
        raise ExprError(f'missing operand after "{self._spelling(prev)}"', offset=t.start)

    def _paren(self, open_tok: _Token, depth: int) -> _Node:
        if depth >= MAX_DEPTH:
            raise _too_deep(open_tok.start)
        if self.toks[self.i].kind is Tok.RPAREN:
            raise ExprError('empty subexpression "()"', offset=open_tok.start)
        inner = self._ternary(depth + 1)
        close = self.toks[self.i]
        if close.kind is Tok.RPAREN:
            self.i += 1
            return inner
        if close.kind is Tok.END:
            raise ExprError('unbalanced parentheses: this "(" is never closed', offset=open_tok.start)
        self._after_operand(close)
        raise AssertionError("unreachable")

    def _call(self, name_tok: _Token, depth: int) -> _Node:
        name = name_tok.value
        open_tok = self.toks[self.i]  # the lexer only makes FUNC tokens before a "("
        self.i += 1
        spec = FUNCTIONS.get(name)  # type: ignore[arg-type]
        if spec is None:
            raise ExprError(f'unknown math function "{name}"', offset=name_tok.start)
        if depth >= MAX_DEPTH:
            raise _too_deep(name_tok.start)
        args: list[_Node] = []
        if self.toks[self.i].kind is Tok.RPAREN:
            self.i += 1
        else:
            while True:
                args.append(self._ternary(depth + 1))
                sep = self.toks[self.i]
                self.i += 1
                if sep.kind is Tok.COMMA:
                    continue
                if sep.kind is Tok.RPAREN:
                    break
                if sep.kind is Tok.END:
                    raise ExprError(
                        f'unbalanced parentheses: the "(" of {name}() is never closed', offset=open_tok.start
                    )
                self._after_operand(sep)
        _, least, most, _ = spec
        if len(args) < least:
            preposition = "to" if name in ("min", "max") else "for"  # (Tcl's words)
            raise ExprError(f'not enough arguments {preposition} math function "{name}"', offset=name_tok.start)
        if most is not None and len(args) > most:
            raise ExprError(f'too many arguments for math function "{name}"', offset=name_tok.start)
        node = _Call(name, args, name_tok.start)  # type: ignore[arg-type]
        if node.depth > MAX_DEPTH:
            raise _too_deep(name_tok.start)
        return node

