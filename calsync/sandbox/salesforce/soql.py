"""The SOQL subset of the Salesforce emulator: resolve a query against a schema, run it on rows.

`execute(text, schema, data)` parses (`soql_parser.py`), resolves object, field and relationship
names case-insensitively to their canonical spelling, compiles the WHERE clause into Python
predicates and returns the matching rows in REST record shape (reference B1): `attributes`
first, then the SELECT list in order, parent fields nested under the relationship name
(`"Account": {"attributes": ..., "Name": "Acme"}` or `"Account": None`).

The emulator's backend supplies the schema and rows through the `SoqlSchema` / `SoqlData`
protocols (`queries.py`); paging the returned list is its job too (query locators). `SELECT COUNT() ...` returns no records
and sets `QueryResult.count` (`queries.py` answers `totalSize: count`).

Errors are `SoqlError` with `error_code` MALFORMED_QUERY, INVALID_FIELD or INVALID_TYPE and
Salesforce's message layout (reference B5). Where Salesforce would answer with another code
(an OFFSET above 2,000 is NUMBER_OUTSIDE_VALID_RANGE there), this subset says MALFORMED_QUERY.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from calsync.sandbox.salesforce.soql_parser import (
    INVALID_FIELD,
    INVALID_TYPE,
    MALFORMED_QUERY,
    BoolOp,
    Comparison,
    Condition,
    InList,
    Like,
    Literal,
    Not,
    Path,
    Query,
    SemiJoin,
    SoqlError,
    error_at,
    parse,
)

__all__ = [
    "FieldInfo",
    "QueryResult",
    "RelationshipInfo",
    "SoqlData",
    "SoqlError",
    "SoqlSchema",
    "execute",
]

log = logging.getLogger(__name__)

Row = dict[str, Any]
Predicate = Callable[[Row], bool]
Getter = Callable[[Row], Any]


@dataclass(frozen=True)
class FieldInfo:
    """One field: canonical API name and type.

    type: 'id', 'string', 'email', 'textarea', 'picklist', 'boolean', 'int', 'double',
    'currency', 'date', 'datetime', 'reference' (any other name is compared like a string).
    """

    name: str
    type: str


@dataclass(frozen=True)
class RelationshipInfo:
    """A parent relationship: Contact."Account" -> field "AccountId", targets ("Account",).

    More than one target makes it polymorphic (Event.What, Event.Who): only Id, Name and Type
    can be read through it, as through Salesforce's Name object.
    """

    field: str
    targets: tuple[str, ...]


class SoqlSchema(Protocol):
    def object_name(self, name: str) -> str | None:
        """Canonical sObject name (case-insensitive lookup); None if unknown."""

    def field(self, obj: str, name: str) -> FieldInfo | None:
        """Field of canonical object `obj` (case-insensitive lookup); None if unknown."""

    def relationship(self, obj: str, name: str) -> RelationshipInfo | None:
        """Parent relationship of `obj` by relationship name (case-insensitive); None if unknown."""


class SoqlData(Protocol):
    def rows(self, obj: str, include_deleted: bool) -> Iterable[dict[str, Any]]:
        """Rows of canonical object `obj`: canonical field names -> wire values. With
        `include_deleted` (queryAll) also deleted rows and archived activities (reference B10)."""

    def get(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        """(object name, row) of any record by 15- or 18-char id; None if unknown."""


@dataclass(frozen=True)
class QueryResult:
    """Matching records in REST shape; `count` is set (and `records` empty) for SELECT COUNT()."""

    object_name: str
    records: list[dict[str, Any]]
    count: int | None = None


def execute(
    text: str,
    schema: SoqlSchema,
    data: SoqlData,
    *,
    include_deleted: bool = False,
    api_path: str = "/services/data/v59.0",
    now: dt.datetime | None = None,
) -> QueryResult:
    """Run one SOQL statement. `include_deleted` is queryAll; `now` anchors TODAY & co (UTC)."""
    query = parse(text)
    today = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc).date()
    run = _Run(text, schema, data, include_deleted, api_path, today)
    return run.top_level(query)


# ---------------------------------------------------------------------------------------------
# Name resolution

_CUSTOM_HINT = ("If you are attempting to use a custom field, be sure to append the '__c' after "
                "the custom field name. Please reference your WSDL or the describe call for the "
                "appropriate names.")
_POLYMORPHIC_FIELDS = {"id": FieldInfo("Id", "id"), "name": FieldInfo("Name", "string"),
                       "type": FieldInfo("Type", "string")}


@dataclass(frozen=True)
class _Hop:
    """One step up a parent relationship."""

    fk: str  # canonical lookup field on the child, e.g. AccountId
    name: str  # canonical relationship name (the key in the record), e.g. Account
    targets: tuple[str, ...]


@dataclass(frozen=True)
class _Resolved:
    hops: tuple[_Hop, ...]
    field: FieldInfo
    object_type: bool  # What.Type / Who.Type: the related record's object name


def _relationship_name(fk: str, written: str) -> str:
    # Standard lookups drop "Id" (AccountId -> Account); custom ones end __c -> __r.
    if len(fk) > 2 and fk.endswith("Id"):
        return fk[:-2]
    if fk.endswith("__c"):
        return fk[:-3] + "__r"
    return written


# ---------------------------------------------------------------------------------------------
# Value normalisation: every comparison and sort works on these forms.

_ID_TYPES = {"id", "reference"}
_NUMBER_TYPES = {"int", "double", "currency", "percent"}
_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})?$",
    re.ASCII,
)


def _norm_id(value: Any) -> Any:
    # 18-char ids = 15-char case-sensitive id + case-insensitive checksum (reference B2).
    if isinstance(value, str) and len(value) == 18:
        return value[:15]
    return value


def _norm_string(value: Any) -> Any:
    # String comparisons and sorting are case-insensitive (reference B1).
    return value.lower() if isinstance(value, str) else value


@functools.lru_cache(maxsize=65536)
def _parse_datetime(value: str) -> dt.datetime | None:
    m = _DATETIME_RE.match(value)
    if not m:
        return None
    try:
        tz = dt.timezone.utc
        if m[8] and m[8] != "Z":
            digits = m[8][1:].replace(":", "")
            delta = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            tz = dt.timezone(-delta if m[8][0] == "-" else delta)
        micros = int((m[7] or "0").ljust(6, "0"))
        return dt.datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]),
                           micros, tzinfo=tz)
    except ValueError:
        return None


def _norm_datetime(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    if isinstance(value, str):
        return _parse_datetime(value)
    return None


def _norm_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _normaliser(ftype: str) -> Callable[[Any], Any]:
    if ftype in _ID_TYPES:
        return _norm_id
    if ftype == "datetime":
        return _norm_datetime
    if ftype == "date":
        return _norm_date
    if ftype == "boolean" or ftype in _NUMBER_TYPES:
        return lambda v: v
    return _norm_string


@dataclass(frozen=True)
class _Range:
    """A relative date literal resolved to [lo, hi) in the field's own form (date or datetime)."""

    lo: Any
    hi: Any


# ---------------------------------------------------------------------------------------------
# Execution

@dataclass
class _Run:
    text: str
    schema: SoqlSchema
    data: SoqlData
    include_deleted: bool
    api_path: str
    today: dt.date
    _lookups: dict[str, tuple[str, Row] | None] = field(default_factory=dict)

    # -- entry points
    def top_level(self, query: Query) -> QueryResult:
        obj = self.object_name(query)
        # Resolve the SELECT list before touching data so bad fields fail even on empty tables.
        selected = [] if query.is_count else self.selected(obj, query)
        rows = self.select_rows(obj, query)
        if query.is_count:
            return QueryResult(obj, [], len(rows))
        return QueryResult(obj, [self.render(obj, row, selected) for row in rows])

    def object_name(self, query: Query) -> str:
        obj = self.schema.object_name(query.object_name)
        if obj is None:
            raise error_at(
                INVALID_TYPE, self.text, query.object_pos,
                f"sObject type '{query.object_name}' is not supported. If you are attempting to "
                "use a custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.")
        return obj

    def select_rows(self, obj: str, query: Query) -> list[Row]:
        """Rows of `obj` passing WHERE, ordered, with OFFSET and LIMIT applied."""
        predicate = self.compile(obj, query.where, in_or=False) if query.where else None
        orders = [(self.getter(r), _normaliser(r.field.type), item.descending, item.nulls_first)
                  for item in query.order_by
                  for r in [self.resolve(obj, item.path)]]
        rows = list(self.data.rows(obj, self.include_deleted))
        if predicate is not None:
            rows = [row for row in rows if predicate(row)]
        # Stable multi-pass sort, last key first; nulls are placed apart from the values so
        # NULLS FIRST/LAST works in both directions (reference B1).
        for get, norm, descending, nulls_first in reversed(orders):
            keyed = [(norm(get(row)), row) for row in rows]
            nulls = [row for value, row in keyed if value is None]
            values = [(value, row) for value, row in keyed if value is not None]
            try:
                values.sort(key=lambda pair: pair[0], reverse=descending)
            except TypeError:  # mixed types in the store: keep input order rather than crash
                log.warning("soql order_by=%s mixed value types", obj)
            ordered = [row for _, row in values]
            rows = nulls + ordered if nulls_first else ordered + nulls
        if query.offset:
            rows = rows[query.offset:]
        if query.limit is not None:
            rows = rows[: query.limit]
        return rows

    def selected(self, obj: str, query: Query) -> list[_Resolved]:
        out: list[_Resolved] = []
        seen: set[str] = set()
        for path in query.fields:
            resolved = self.resolve(obj, path)
            key = ".".join([h.name for h in resolved.hops] + [resolved.field.name]).lower()
            if key in seen:
                raise error_at(MALFORMED_QUERY, self.text, path.pos,
                               f"duplicate field selected: {path.text}")
            seen.add(key)
            out.append(resolved)
        return out

    # -- names
    def resolve(self, obj: str, path: Path) -> _Resolved:
        hops: list[_Hop] = []
        current: str = obj
        for part in path.parts[:-1]:
            if hops and len(hops[-1].targets) > 1:
                # Through a polymorphic relationship only Name-object fields are readable.
                raise self.no_such_column(path, part, "Name")
            rel = self.schema.relationship(current, part)
            if rel is None:
                raise error_at(
                    INVALID_FIELD, self.text, path.pos,
                    f"Didn't understand relationship '{part}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' after "
                    "the custom relationship name. Please reference your WSDL or the describe "
                    "call for the appropriate names.")
            hops.append(_Hop(rel.field, _relationship_name(rel.field, part), tuple(rel.targets)))
            current = rel.targets[0] if rel.targets else current
        last = path.parts[-1]
        if hops and len(hops[-1].targets) > 1:
            info = _POLYMORPHIC_FIELDS.get(last.lower())
            if info is None:
                raise self.no_such_column(path, last, "Name")
            return _Resolved(tuple(hops), info, object_type=info.name == "Type")
        info = self.schema.field(current, last)
        if info is None:
            raise self.no_such_column(path, last, current)
        return _Resolved(tuple(hops), info, object_type=False)

    def no_such_column(self, path: Path, name: str, entity: str) -> SoqlError:
        return error_at(INVALID_FIELD, self.text, path.pos,
                        f"No such column '{name}' on entity '{entity}'. {_CUSTOM_HINT}")

    # -- row access
    def lookup(self, record_id: Any) -> tuple[str, Row] | None:
        if not isinstance(record_id, str) or not record_id:
            return None
        if record_id not in self._lookups:
            self._lookups[record_id] = self.data.get(record_id)
        return self._lookups[record_id]

    def follow(self, row: Row, hops: tuple[_Hop, ...]) -> tuple[str, Row] | None:
        found: tuple[str, Row] | None = None
        current = row
        for hop in hops:
            found = self.lookup(current.get(hop.fk))
            if found is None:
                return None
            current = found[1]
        return found

    def getter(self, resolved: _Resolved) -> Getter:
        name = resolved.field.name
        hops = resolved.hops
        if not hops:
            return lambda row: row.get(name)
        if resolved.object_type:
            def get_type(row: Row) -> Any:
                found = self.follow(row, hops)
                return None if found is None else found[0]
            return get_type

        def get_parent(row: Row) -> Any:
            found = self.follow(row, hops)
            return None if found is None else found[1].get(name)
        return get_parent

    # -- WHERE
    def compile(self, obj: str, cond: Condition, *, in_or: bool) -> Predicate:
        if isinstance(cond, BoolOp):
            parts = [self.compile(obj, c, in_or=in_or or cond.op == "OR") for c in cond.operands]
            if cond.op == "AND":
                return lambda row: all(p(row) for p in parts)
            return lambda row: any(p(row) for p in parts)
        if isinstance(cond, Not):
            inner = self.compile(obj, cond.operand, in_or=in_or)
            return lambda row: not inner(row)
        if isinstance(cond, Comparison):
            return self.comparison(obj, cond)
        if isinstance(cond, InList):
            return self.in_list(obj, cond)
        if isinstance(cond, Like):
            return self.like(obj, cond)
        if isinstance(cond, SemiJoin):
            if in_or:
                raise error_at(MALFORMED_QUERY, self.text, cond.path.pos,
                               "Semi join sub-selects are not allowed with the 'OR' operator")
            return self.semi_join(obj, cond)
        raise AssertionError(f"unknown condition {cond!r}")

    def coerce(self, path: Path, ftype: str, literal: Literal) -> Any:
        """The literal in the field's normalised form; wrong literal type is INVALID_FIELD."""
        if literal.kind == "null":
            return None
        kind = literal.kind
        if ftype == "boolean":
            ok, expected, quoted = kind == "boolean", "boolean", False
        elif ftype in _NUMBER_TYPES:
            ok, expected, quoted = kind == "number", ("integer" if ftype == "int" else "double"), False
        elif ftype == "date":
            ok, expected, quoted = kind in ("date", "date_range"), "date", False
        elif ftype == "datetime":
            ok, expected, quoted = kind in ("datetime", "date_range"), "dateTime", False
        else:
            ok, expected, quoted = kind == "string", ("id" if ftype in _ID_TYPES else "string"), True
        if not ok:
            should = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
            raise error_at(INVALID_FIELD, self.text, literal.pos,
                           f"value of filter criterion for field '{path.text}' must be of type "
                           f"{expected} and {should}")
        if kind == "string" and literal.escaped_wildcards:
            # \_ and \% only mean something inside LIKE (reference B1).
            raise error_at(MALFORMED_QUERY, self.text, literal.pos,
                           "Invalid string literal: \\_ and \\% are only allowed in LIKE")
        if kind == "date_range":
            start, end = literal.value  # type: ignore[misc]
            lo, hi = self.today + dt.timedelta(days=start), self.today + dt.timedelta(days=end)
            if ftype == "datetime":
                return _Range(_midnight(lo), _midnight(hi))
            return _Range(lo, hi)
        if kind == "datetime":
            return literal.value
        if kind == "date":
            return literal.value
        return _normaliser(ftype)(literal.value)

    def comparison(self, obj: str, cond: Comparison) -> Predicate:
        resolved = self.resolve(obj, cond.path)
        ftype = resolved.field.type
        get, norm = self.getter(resolved), _normaliser(ftype)
        value = self.coerce(cond.path, ftype, cond.value)
        op = cond.op
        if ftype == "boolean" and op not in ("=", "!="):
            raise error_at(MALFORMED_QUERY, self.text, cond.value.pos,
                           f"invalid operator on boolean field '{cond.path.text}'")
        if isinstance(value, _Range):
            return _range_predicate(get, norm, op, value)
        if value is None:
            if op == "=":
                return lambda row: get(row) is None
            if op == "!=":
                return lambda row: get(row) is not None
            return lambda row: False
        if op == "=":
            return lambda row: norm(get(row)) == value
        if op == "!=":
            # SOQL's != keeps rows whose field is null (unlike SQL).
            return lambda row: norm(get(row)) != value
        compare = _ORDERED_OPS[op]

        def ordered(row: Row) -> bool:
            current = norm(get(row))
            if current is None:
                return False
            try:
                return compare(current, value)
            except TypeError:
                return False
        return ordered

    def in_list(self, obj: str, cond: InList) -> Predicate:
        resolved = self.resolve(obj, cond.path)
        ftype = resolved.field.type
        get, norm = self.getter(resolved), _normaliser(ftype)
        wanted: set[Any] = set()
        has_null = False
        for literal in cond.values:
            value = self.coerce(cond.path, ftype, literal)
            if isinstance(value, _Range):
                raise error_at(MALFORMED_QUERY, self.text, literal.pos,
                               "date literals like TODAY are not supported inside IN (...)")
            if value is None:
                has_null = True
            else:
                wanted.add(value)  # a set: 500-value batches stay O(1) per row
        negated = cond.negated

        def member(row: Row) -> bool:
            current = norm(get(row))
            try:
                hit = has_null if current is None else current in wanted
            except TypeError:  # unhashable value in the store
                hit = False
            return hit != negated
        return member

    def like(self, obj: str, cond: Like) -> Predicate:
        resolved = self.resolve(obj, cond.path)
        ftype = resolved.field.type
        if ftype in ("boolean", "date", "datetime") or ftype in _NUMBER_TYPES:
            raise error_at(MALFORMED_QUERY, self.text, cond.path.pos,
                           f"invalid operator on field '{cond.path.text}': LIKE needs a text field")
        pattern = _like_regex(str(cond.pattern.value), cond.pattern.escaped_wildcards)
        get = self.getter(resolved)

        def matches(row: Row) -> bool:
            current = get(row)
            return isinstance(current, str) and pattern.fullmatch(current) is not None
        return matches

    def semi_join(self, obj: str, cond: SemiJoin) -> Predicate:
        outer = self.resolve(obj, cond.path)
        sub = cond.query
        if outer.field.type not in _ID_TYPES:
            raise error_at(MALFORMED_QUERY, self.text, cond.path.pos,
                           f"semi join sub-selects need an Id or reference field on the left, "
                           f"not '{cond.path.text}'")
        if sub.is_count or len(sub.fields) != 1:
            raise error_at(MALFORMED_QUERY, self.text, sub.pos,
                           "semi join sub-selects must select exactly one Id or reference field")
        if _has_semi_join(sub.where):
            raise error_at(MALFORMED_QUERY, self.text, sub.pos,
                           "Nesting of semi join sub-selects is not supported")
        inner_obj = self.object_name(sub)
        inner = self.resolve(inner_obj, sub.fields[0])
        if inner.field.type not in _ID_TYPES:
            raise error_at(MALFORMED_QUERY, self.text, sub.fields[0].pos,
                           "semi join sub-selects must select an Id or reference field")
        # Uncorrelated: evaluate once. The sub-select sees deleted rows only under queryAll too.
        inner_get = self.getter(inner)
        ids = {_norm_id(inner_get(row)) for row in self.select_rows(inner_obj, sub)}
        ids.discard(None)
        get = self.getter(outer)
        negated = cond.negated
        return lambda row: (_norm_id(get(row)) in ids) != negated

    # -- output
    def attributes(self, obj: str, row: Row) -> dict[str, str]:
        return {"type": obj, "url": f"{self.api_path}/sobjects/{obj}/{row.get('Id')}"}

    def render(self, obj: str, row: Row, selected: list[_Resolved]) -> dict[str, Any]:
        out: dict[str, Any] = {"attributes": self.attributes(obj, row)}
        related: dict[tuple[_Hop, ...], tuple[str, Row] | None] = {}
        for resolved in selected:
            target, current, current_obj = out, row, obj
            for depth, hop in enumerate(resolved.hops):
                key = resolved.hops[: depth + 1]
                if key not in related:
                    found = self.lookup(current.get(hop.fk))
                    related[key] = found
                    # A null lookup renders as "Account": null (reference B1).
                    target[hop.name] = (None if found is None
                                        else {"attributes": self.attributes(*found)})
                found = related[key]
                if found is None:
                    break
                target = target[hop.name]
                current_obj, current = found
            else:
                name = resolved.field.name
                target[name] = current_obj if resolved.object_type else current.get(name)
        return out


_ORDERED_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _midnight(day: dt.date) -> dt.datetime:
    # Relative date literals use the user's time zone in Salesforce; the emulator's user is UTC.
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def _range_predicate(get: Getter, norm: Callable[[Any], Any], op: str, span: _Range) -> Predicate:
    lo, hi = span.lo, span.hi
    tests: dict[str, Callable[[Any], bool]] = {
        "=": lambda v: lo <= v < hi,
        "!=": lambda v: not lo <= v < hi,
        "<": lambda v: v < lo,
        "<=": lambda v: v < hi,
        ">": lambda v: v >= hi,
        ">=": lambda v: v >= lo,
    }
    test = tests[op]
    null_result = op == "!="

    def predicate(row: Row) -> bool:
        current = norm(get(row))
        return null_result if current is None else test(current)
    return predicate


def _like_regex(pattern: str, escaped: frozenset[int]) -> re.Pattern[str]:
    """LIKE: % any run, _ one character, \\% and \\_ themselves; case-insensitive (reference B1)."""
    parts: list[str] = []
    for index, char in enumerate(pattern):
        if char == "%" and index not in escaped:
            parts.append(".*")
        elif char == "_" and index not in escaped:
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _has_semi_join(cond: Condition | None) -> bool:
    if cond is None:
        return False
    if isinstance(cond, SemiJoin):
        return True
    if isinstance(cond, Not):
        return _has_semi_join(cond.operand)
    if isinstance(cond, BoolOp):
        return any(_has_semi_join(c) for c in cond.operands)
    return False
