"""Field values as Salesforce takes them from JSON and stores them: the wire forms of datetimes
and dates, text trimmed the way Java trims it ("" is null), lengths in UTF-16 code units, and the
coercion of each JSON value to its field's type.

Salesforce deserialises a whole request body before any DML, so the errors raised here
(`parse_fields`) fail the whole request (400), not one record.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from calsync.sandbox.salesforce.errors import ApiError, json_parser_error
from calsync.sandbox.salesforce.schema import TEXT_TYPES, FieldDef, ObjectDef

# Java's String.trim() characters: every code point up to U+0020 (reference B10).
_JAVA_TRIM = "".join(chr(code) for code in range(0x21))

_DT_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?\s*(Z|[+-]\d{2}:?\d{2})?\Z"
)
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def wire_datetime(value: dt.datetime) -> str:
    """Salesforce's datetime wire form: 2026-01-05T15:00:00.000+0000 (reference B3)."""
    value = value.astimezone(dt.timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> dt.datetime | None:
    """An ISO-8601 datetime as Salesforce accepts it (Z, +0000, +00:00, no zone = UTC)."""
    m = _DT_RE.match(text.strip())
    if not m:
        return None
    year, month, day, hour, minute, second, frac, zone = m.groups()
    try:
        micro = int((frac or "0")[:6].ljust(6, "0"))
        tz = dt.timezone.utc
        if zone and zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            digits = zone[1:].replace(":", "")
            tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
        return dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro,
                           tzinfo=tz).astimezone(dt.timezone.utc)
    except ValueError:
        return None


def parse_date(text: str) -> dt.date | None:
    if not _DATE_RE.match(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def as_datetime(value: Any) -> dt.datetime | None:
    """A stored or sent wire datetime as a datetime; None for anything else."""
    return parse_datetime(value) if isinstance(value, str) else None


def midnight(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc)


def utf16_units(text: str) -> int:
    """Salesforce counts text lengths in UTF-16 code units: an astral character counts 2 (B10)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def parse_fields(obj: ObjectDef, sent: Any) -> dict[str, Any]:
    """Canonical field names -> coerced values; unknown field or bad JSON type is ApiError.

    Salesforce deserialises the whole body before any DML, so these fail the request (400)."""
    if not isinstance(sent, dict):
        raise json_parser_error("Cannot deserialize instance of sobject from non-object value")
    out: dict[str, Any] = {}
    for key, value in sent.items():
        if key == "attributes":
            continue
        f = obj.field(key)
        if f is None:
            raise ApiError(400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}")
        if f.name == "Id":
            out["Id"] = value  # checked by the operation (insert refuses it, update needs it)
            continue
        out[f.name] = coerce(f, value)
    return out


def coerce(f: FieldDef, value: Any) -> Any:
    """One JSON value as field `f` stores it; a JSON type the field cannot take is ApiError."""
    if value is None:
        return None

    def bad(kind: str) -> ApiError:
        return json_parser_error(
            f"Cannot deserialize instance of {kind} from {_json_kind(value)} value {value} or request may "
            f"be missing a required field at [line:1, column:1]"
        )

    t = f.type
    if t in TEXT_TYPES or t in ("id", "reference"):
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise bad("string")
        text = value if isinstance(value, str) else str(value)
        if t in TEXT_TYPES:
            # Stored trimmed as Java's String.trim() does, and never empty: "" is null
            # (reference B10, Apex "Primitive Data Types").
            return text.strip(_JAVA_TRIM) or None
        return text
    if t == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad("boolean")
    if t == "int":
        if isinstance(value, bool):
            raise bad("int")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value)
        raise bad("int")
    if t in ("double", "currency"):
        if isinstance(value, bool):
            raise bad("double")
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad("double") from None
    if t == "date":
        if isinstance(value, str):
            text = value.strip()
            moment = parse_datetime(text)
            day = parse_date(text) or (moment.date() if moment else None)
            if day is not None:
                return day.isoformat()
        raise bad("date")
    if t == "datetime":
        if isinstance(value, str):
            parsed = parse_datetime(value)
            if parsed is not None:
                return wire_datetime(parsed)
        raise bad("datetime")
    if t == "junctionidlist":
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
        raise bad("JunctionIdList")
    return value


def _json_kind(value: Any) -> str:
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int):
        return "VALUE_NUMBER_INT"
    if isinstance(value, float):
        return "VALUE_NUMBER_FLOAT"
    if isinstance(value, list):
        return "START_ARRAY"
    return "START_OBJECT"
