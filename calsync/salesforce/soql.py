"""SOQL text: string and dateTime literals, and `IN (...)` lists cut to Salesforce's URI budget.

Lookups put many addresses in one `Email IN (...)` query, split so that each URL stays under
Salesforce's URI budget (reference B1, C8). Every value is quoted here, so no address, however
odd, changes the statement it is part of. Pure text: no call is made here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from urllib.parse import quote

# Salesforce's URI limit is 16,384 bytes with headers (reference B1); keep the encoded query well
# below it so the path, version and headers always fit.
MAX_ENCODED_QUERY = 15_000


def soql_quote(value: str) -> str:
    """A SOQL string literal: backslash and quote escaped, controls as their escapes (B1)."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("\b", "\\b")
        .replace("\f", "\\f")
        .replace('"', '\\"')
    )
    return f"'{escaped}'"


def soql_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def in_batches(head: str, values: Iterable[str], tail: str = "") -> Iterator[list[str]]:
    """Split `values` so that each `head IN (...) tail` statement stays within the URL budget."""
    base = len(quote(head + " IN () " + tail))
    batch: list[str] = []
    size = base
    for value in sorted(set(values)):
        cost = len(quote(soql_quote(value))) + 3
        if batch and size + cost > MAX_ENCODED_QUERY:
            yield batch
            batch, size = [], base
        batch.append(value)
        size += cost
    if batch:
        yield batch


def in_statement(head: str, values: Sequence[str], tail: str = "") -> str:
    return f"{head} IN ({','.join(soql_quote(v) for v in values)}){tail}"
