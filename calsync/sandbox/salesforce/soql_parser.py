"""Lexer and parser for the SOQL subset the Salesforce emulator understands.

Turns query text into a small syntax tree (`Query` and the condition nodes below) without
looking at any schema; `soql.py` resolves names against the schema and evaluates. Grammar:

    query      := SELECT (COUNT '(' ')' | path (',' path)*) FROM name
                  [WHERE cond] [ORDER BY order (',' order)*] [LIMIT int] [OFFSET int]
    cond       := term (AND term)* | term (OR term)*     -- one connective per level (reference B1)
    term       := NOT term | '(' cond ')' | path op literal | path [NOT] IN '(' list | query ')'
                  | path LIKE string
    order      := path [ASC | DESC] [NULLS (FIRST | LAST)]

Every syntax problem raises `SoqlError("MALFORMED_QUERY", ...)` with Salesforce's caret layout
("\\n<line>\\n   ^\\nERROR at Row:1:Column:4\\nunexpected token: 'X'").
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Union

MAX_QUERY_LENGTH = 100_000  # characters per SOQL statement (reference B1)
MAX_LITERAL_LENGTH = 4_000  # characters per string literal in WHERE (reference B1)
MAX_OFFSET = 2_000  # (reference B1)
_MAX_DEPTH = 100  # nesting of parentheses / NOT; keeps garbage input away from RecursionError

MALFORMED_QUERY = "MALFORMED_QUERY"
INVALID_FIELD = "INVALID_FIELD"
INVALID_TYPE = "INVALID_TYPE"


class SoqlError(Exception):
    """A query Salesforce would refuse; `error_code` is its errorCode (reference B5)."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(f"{error_code}: {message}")
        self.error_code = error_code
        self.message = message


def located_message(text: str, pos: int, message: str) -> str:
    """Salesforce's error layout: the offending line, a caret, Row/Column (1-based), the text.

    Very long lines (an `Email IN (...)` batch) are cut to a window around the caret so the
    error body stays readable; Salesforce echoes the whole line (the caret part is approximate).
    """
    pos = max(0, min(pos, len(text)))
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    if line_end < 0:
        line_end = len(text)
    row = text.count("\n", 0, pos) + 1
    column = pos - line_start + 1
    line = text[line_start:line_end].rstrip("\r")
    caret = column - 1
    if len(line) > 200:
        start = max(0, caret - 100)
        line = line[start : start + 200]
        caret -= start
    return f"\n{line}\n{' ' * caret}^\nERROR at Row:{row}:Column:{column}\n{message}"


def error_at(code: str, text: str, pos: int, message: str) -> SoqlError:
    return SoqlError(code, located_message(text, pos, message))


# ---------------------------------------------------------------------------------------------
# Tokens

@dataclass(frozen=True)
class Token:
    kind: str  # IDENT, STRING, NUMBER, DATE, DATETIME, OP, EOF
    text: str  # source text (for STRING: decoded value)
    pos: int
    # STRING only: indices in `text` of `_`/`%` written as `\_`/`\%` (literal in LIKE)
    escaped_wildcards: frozenset[int] = frozenset()
    value: object = None  # NUMBER: int | float; DATE: date; DATETIME: aware datetime


_WS = re.compile(r"[ \t\r\n\f]+")
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,3}))?(Z|[+-]\d{2}:?\d{2})",
    re.ASCII,
)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?![0-9A-Za-z:])", re.ASCII)
_LEXEME = re.compile(r"[^\s'(),]+")  # the "token" quoted in an unexpected-character error
_NUMBER = re.compile(r"\d+(?:\.\d+)?(?![A-Za-z_0-9])", re.ASCII)
_OPS = ("!=", "<>", "<=", ">=", "=", "<", ">", "(", ")", ",", ".", ":", "-", "+")
# Escapes allowed in a quoted string (reference B1); `_`/`%` only mean something in LIKE.
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def _token_name(tok: Token) -> str:
    if tok.kind == "EOF":
        return "<EOF>"
    if tok.kind == "STRING":
        return "'" + tok.text[:40] + "'"  # Salesforce shows string tokens quoted
    return tok.text


def _parse_offset(raw: str) -> dt.timezone:
    if raw == "Z":
        return dt.timezone.utc
    sign = -1 if raw[0] == "-" else 1
    digits = raw[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens; unknown characters and bad escapes are MALFORMED_QUERY."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        m = _WS.match(text, i)
        if m:
            i = m.end()
            continue
        c = text[i]
        if c == "'":
            token, i = _lex_string(text, i)
            tokens.append(token)
            continue
        if "0" <= c <= "9":  # ASCII only: '²'.isdigit() is true but int('²') fails
            m = _DATETIME.match(text, i)
            if m:
                tokens.append(_datetime_token(text, m))
                i = m.end()
                continue
            m = _DATE.match(text, i)
            if m:
                try:
                    value = dt.date(int(m[1]), int(m[2]), int(m[3]))
                except ValueError:
                    raise error_at(MALFORMED_QUERY, text, i,
                                   f"invalid date literal: '{m[0]}'") from None
                tokens.append(Token("DATE", m[0], i, value=value))
                i = m.end()
                continue
            m = _NUMBER.match(text, i)
            if m:
                raw = m[0]
                tokens.append(Token("NUMBER", raw, i, value=float(raw) if "." in raw else int(raw)))
                i = m.end()
                continue
            raise error_at(MALFORMED_QUERY, text, i, f"unexpected token: '{_lexeme(text, i)}'")
        m = _IDENT.match(text, i)
        if m:
            tokens.append(Token("IDENT", m[0], i))
            i = m.end()
            continue
        for op in _OPS:
            if text.startswith(op, i):
                tokens.append(Token("OP", op, i))
                i += len(op)
                break
        else:
            raise error_at(MALFORMED_QUERY, text, i, f"unexpected token: '{_lexeme(text, i)}'")
    tokens.append(Token("EOF", "", n))
    return tokens


def _lexeme(text: str, i: int) -> str:
    m = _LEXEME.match(text, i)
    return (m[0] if m else text[i : i + 1])[:40]


def _datetime_token(text: str, m: re.Match[str]) -> Token:
    try:
        millis = int((m[7] or "0").ljust(3, "0"))
        value = dt.datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]),
                            millis * 1000, tzinfo=_parse_offset(m[8]))
    except ValueError:
        raise error_at(MALFORMED_QUERY, text, m.start(),
                       f"invalid dateTime literal: '{m[0]}'") from None
    return Token("DATETIME", m[0], m.start(), value=value)


def _lex_string(text: str, start: int) -> tuple[Token, int]:
    """Decode a quoted literal with exactly the escapes of reference B1; also the end position."""
    out: list[str] = []
    wildcards: set[int] = set()
    i, n = start + 1, len(text)
    while True:
        if i >= n:
            raise error_at(MALFORMED_QUERY, text, start, "unterminated string literal: missing closing quote")
        c = text[i]
        if c == "'":
            i += 1
            break
        if c != "\\":
            out.append(c)
            i += 1
            continue
        if i + 1 >= n:
            raise error_at(MALFORMED_QUERY, text, i, "Invalid string literal: dangling backslash")
        e = text[i + 1]
        lower = e.lower()
        if e in "\"'\\" or e in "nrtbfNRTBF":  # letters also upper-case (reference B1)
            out.append(_ESCAPES[lower])
            i += 2
        elif e in "_%":
            wildcards.add(len(out))
            out.append(e)
            i += 2
        elif lower == "u":
            digits = text[i + 2 : i + 6]
            if len(digits) != 4 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise error_at(MALFORMED_QUERY, text, i,
                               f"Invalid string literal '\\u{digits}'. Illegal unicode escape")
            out.append(chr(int(digits, 16)))
            i += 6
        else:
            # Any other backslash is an error (reference B1).
            raise error_at(MALFORMED_QUERY, text, i,
                           f"Invalid string literal '\\{e}'. Illegal character sequence '\\{e}' "
                           "in string literal.")
    value = "".join(out)
    if len(value) > MAX_LITERAL_LENGTH:
        raise error_at(MALFORMED_QUERY, text, start,
                       f"String literal is too long: {len(value)} characters; the maximum is "
                       f"{MAX_LITERAL_LENGTH}.")
    return Token("STRING", value, start, frozenset(wildcards)), i


# ---------------------------------------------------------------------------------------------
# Syntax tree

@dataclass(frozen=True)
class Path:
    """A field reference as written: `Email`, `Account.Name`, `What.Type`."""

    parts: tuple[str, ...]
    pos: int

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Literal:
    """kind: string, number, boolean, null, date, datetime, date_range.

    date_range value: (start offset in days from today, end offset exclusive), e.g. TODAY (0, 1).
    """

    kind: str
    value: object
    pos: int
    escaped_wildcards: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Comparison:
    path: Path
    op: str  # '=', '!=', '<', '>', '<=', '>=' ('<>' is stored as '!=')
    value: Literal


@dataclass(frozen=True)
class InList:
    path: Path
    negated: bool
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class SemiJoin:
    path: Path
    negated: bool
    query: Query


@dataclass(frozen=True)
class Like:
    path: Path
    pattern: Literal


@dataclass(frozen=True)
class Not:
    operand: Condition


@dataclass(frozen=True)
class BoolOp:
    op: str  # 'AND' | 'OR'
    operands: tuple[Condition, ...]


Condition = Union[Comparison, InList, SemiJoin, Like, Not, BoolOp]


@dataclass(frozen=True)
class OrderItem:
    path: Path
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Query:
    fields: tuple[Path, ...]  # empty for COUNT()
    is_count: bool
    object_name: str
    object_pos: int
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None
    pos: int  # where SELECT starts (for errors about the whole statement)


# Words that can never be a field or object name here (SOQL reserved words).
_RESERVED = {
    "AND", "ASC", "DESC", "EXCLUDES", "FIRST", "FROM", "GROUP", "HAVING", "IN", "INCLUDES",
    "LAST", "LIKE", "LIMIT", "NOT", "NULL", "NULLS", "OR", "SELECT", "WHERE", "WITH", "TRUE",
    "FALSE", "TYPEOF", "WHEN", "ELSE", "END", "THEN", "USING",
}
# Relative date literals (reference B1; optional subset): name -> (start, end) day offsets.
_DATE_LITERALS = {"TODAY": (0, 1), "YESTERDAY": (-1, 0), "TOMORROW": (1, 2)}
_DATE_N_LITERALS = {"LAST_N_DAYS", "NEXT_N_DAYS"}


def parse(text: str) -> Query:
    """Parse one SOQL statement; raises SoqlError (MALFORMED_QUERY) on anything outside the subset."""
    if len(text) > MAX_QUERY_LENGTH:
        raise SoqlError(MALFORMED_QUERY,
                        f"SOQL statements cannot be longer than {MAX_QUERY_LENGTH:,} characters "
                        f"(this one has {len(text):,}).")
    parser = _Parser(text, tokenize(text))
    query = parser.query(nested=False)
    parser.expect_eof()
    return query


class _Parser:
    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.i = 0
        self.depth = 0

    # -- token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def peek(self, ahead: int = 1) -> Token:
        return self.tokens[min(self.i + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        if tok.kind != "EOF":
            self.i += 1
        return tok

    def is_kw(self, word: str, tok: Token | None = None) -> bool:
        tok = tok or self.tok
        return tok.kind == "IDENT" and tok.text.upper() == word

    def is_op(self, op: str) -> bool:
        return self.tok.kind == "OP" and self.tok.text == op

    def unexpected(self, tok: Token | None = None) -> SoqlError:
        tok = tok or self.tok
        return error_at(MALFORMED_QUERY, self.text, tok.pos, f"unexpected token: '{_token_name(tok)}'")

    def expect_kw(self, word: str) -> Token:
        if not self.is_kw(word):
            raise self.unexpected()
        return self.advance()

    def expect_op(self, op: str) -> Token:
        if not self.is_op(op):
            raise self.unexpected()
        return self.advance()

    def expect_eof(self) -> None:
        if self.tok.kind != "EOF":
            raise self.unexpected()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise error_at(MALFORMED_QUERY, self.text, self.tok.pos, "Query is nested too deeply")

    # -- grammar
    def query(self, *, nested: bool) -> Query:
        start = self.expect_kw("SELECT").pos
        fields: list[Path] = []
        is_count = False
        if self.is_kw("COUNT") and self.peek().kind == "OP" and self.peek().text == "(":
            self.advance()
            self.advance()
            if not self.is_op(")"):
                # COUNT(field) is an aggregate query: not part of the subset.
                raise error_at(MALFORMED_QUERY, self.text, self.tok.pos,
                               "aggregate functions other than COUNT() are not supported by this emulator")
            self.advance()
            is_count = True
        else:
            fields.append(self.path())
            while self.is_op(","):
                self.advance()
                fields.append(self.path())
        self.expect_kw("FROM")
        obj = self.name()
        where: Condition | None = None
        if self.is_kw("WHERE"):
            self.advance()
            where = self.condition()
        order: list[OrderItem] = []
        if self.is_kw("ORDER"):
            self.advance()
            self.expect_kw("BY")
            order.append(self.order_item())
            while self.is_op(","):
                self.advance()
                order.append(self.order_item())
        limit = offset = None
        if self.is_kw("LIMIT"):
            self.advance()
            limit = self.integer()
        if self.is_kw("OFFSET"):
            offset_tok = self.advance()
            offset = self.integer()
            if offset > MAX_OFFSET:
                raise error_at(MALFORMED_QUERY, self.text, offset_tok.pos,
                               f"Maximum SOQL offset allowed is {MAX_OFFSET}")
        if nested and not self.is_op(")"):
            raise self.unexpected()
        return Query(tuple(fields), is_count, obj.text, obj.pos, where, tuple(order), limit,
                     offset, start)

    def name(self) -> Token:
        tok = self.tok
        if tok.kind != "IDENT" or tok.text.upper() in _RESERVED:
            raise self.unexpected()
        return self.advance()

    def path(self) -> Path:
        first = self.name()
        parts = [first.text]
        while self.is_op("."):
            self.advance()
            parts.append(self.name().text)
        return Path(tuple(parts), first.pos)

    def integer(self) -> int:
        tok = self.tok
        if tok.kind != "NUMBER" or not isinstance(tok.value, int):
            raise self.unexpected()
        self.advance()
        return tok.value

    def order_item(self) -> OrderItem:
        path = self.path()
        descending = False
        if self.is_kw("ASC"):
            self.advance()
        elif self.is_kw("DESC"):
            self.advance()
            descending = True
        nulls_first = not descending  # default: nulls first ascending, last descending (B1)
        if self.is_kw("NULLS"):
            self.advance()
            if self.is_kw("FIRST"):
                nulls_first = True
            elif self.is_kw("LAST"):
                nulls_first = False
            else:
                raise self.unexpected()
            self.advance()
        return OrderItem(path, descending, nulls_first)

    def condition(self) -> Condition:
        self.enter()
        operands = [self.term()]
        connective: str | None = None
        while self.is_kw("AND") or self.is_kw("OR"):
            word = self.tok.text.upper()
            if connective is None:
                connective = word
            elif word != connective:
                # Mixing AND and OR at one level without parentheses is refused (reference B1).
                raise self.unexpected()
            self.advance()
            operands.append(self.term())
        self.depth -= 1
        if connective is None:
            return operands[0]
        return BoolOp(connective, tuple(operands))

    def term(self) -> Condition:
        self.enter()
        try:
            if self.is_kw("NOT"):
                self.advance()
                return Not(self.term())
            if self.is_op("("):
                self.advance()
                inner = self.condition()
                self.expect_op(")")
                return inner
            return self.predicate()
        finally:
            self.depth -= 1

    def predicate(self) -> Condition:
        path = self.path()
        tok = self.tok
        if self.is_kw("NOT") and self.is_kw("IN", self.peek()):
            self.advance()
            self.advance()
            return self.in_rest(path, negated=True)
        if self.is_kw("IN"):
            self.advance()
            return self.in_rest(path, negated=False)
        if self.is_kw("LIKE"):
            self.advance()
            pattern = self.literal()
            if pattern.kind != "string":
                raise error_at(MALFORMED_QUERY, self.text, pattern.pos,
                               "LIKE needs a quoted string pattern")
            return Like(path, pattern)
        if tok.kind == "OP" and tok.text in ("=", "!=", "<>", "<", ">", "<=", ">="):
            self.advance()
            value = self.literal()
            op = "!=" if tok.text == "<>" else tok.text
            return Comparison(path, op, value)
        raise self.unexpected()

    def in_rest(self, path: Path, *, negated: bool) -> Condition:
        self.expect_op("(")
        if self.is_kw("SELECT"):
            self.enter()
            sub = self.query(nested=True)
            self.depth -= 1
            self.expect_op(")")
            return SemiJoin(path, negated, sub)
        values = [self.literal()]
        while self.is_op(","):
            self.advance()
            values.append(self.literal())
        self.expect_op(")")
        return InList(path, negated, tuple(values))

    def literal(self) -> Literal:
        tok = self.tok
        if tok.kind == "STRING":
            self.advance()
            return Literal("string", tok.text, tok.pos, tok.escaped_wildcards)
        if tok.kind in ("DATE", "DATETIME"):
            self.advance()
            return Literal(tok.kind.lower(), tok.value, tok.pos)
        if tok.kind == "NUMBER":
            self.advance()
            return Literal("number", tok.value, tok.pos)
        if tok.kind == "OP" and tok.text in ("-", "+") and self.peek().kind == "NUMBER" \
                and self.peek().pos == tok.pos + 1:
            self.advance()
            number = self.advance().value
            assert isinstance(number, (int, float))
            return Literal("number", -number if tok.text == "-" else number, tok.pos)
        if tok.kind == "IDENT":
            word = tok.text.upper()
            if word in ("TRUE", "FALSE"):
                self.advance()
                return Literal("boolean", word == "TRUE", tok.pos)
            if word == "NULL":
                self.advance()
                return Literal("null", None, tok.pos)
            if word in _DATE_LITERALS:
                self.advance()
                return Literal("date_range", _DATE_LITERALS[word], tok.pos)
            if word in _DATE_N_LITERALS:
                self.advance()
                self.expect_op(":")
                n = self.integer()
                span = (-n, 1) if word == "LAST_N_DAYS" else (1, n + 1)
                return Literal("date_range", span, tok.pos)
        raise self.unexpected()
