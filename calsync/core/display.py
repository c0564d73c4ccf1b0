"""How calsync shows a meeting to a person: its start, its title, an owner, a moment.

One place for the forms every command prints (`status`, `retry`, `resync`, `explain`,
`status --check`), so the same meeting reads the same everywhere: a start is
`2026-12-17 09:00 UTC` (an all-day meeting `2026-12-17 (all day)`), a title is the subject in
quotes or `(no title)`, and an owner is the calendar's address rather than a Salesforce User Id.
The values come from stored data (ISO strings, datetimes, dates) and from Salesforce records
(`StartDateTime` as `2026-12-17T09:00:00.000+0000`, `ActivityDate` as `2026-12-17`), so each
helper takes any of them and never raises: a line that names a meeting must not fail the
command that prints it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

UTC = dt.timezone.utc
# Salesforce writes offsets without a colon (`+0000`), which fromisoformat before 3.11 refused
# and which some stores keep as is.
_OFFSET = re.compile(r"([+-]\d\d)(\d\d)$")


def moment(value: dt.datetime | None) -> str:
    """A UTC instant to the minute: `2026-12-17 09:00 UTC`."""
    if value is None:
        return "no time"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def start(value: Any) -> str:
    """A meeting's start, whatever form it was kept in: a datetime or an ISO date-time (UTC
    instant), a date or an ISO date (all day). `no start` when there is none."""
    if value is None or value == "":
        return "no start"
    if isinstance(value, dt.datetime):
        return moment(value)
    if isinstance(value, dt.date):
        return f"{value.isoformat()} (all day)"
    text = str(value).strip()
    if len(text) == 10:
        try:
            return f"{dt.date.fromisoformat(text).isoformat()} (all day)"
        except ValueError:
            return text
    try:
        parsed = dt.datetime.fromisoformat(_OFFSET.sub(r"\1:\2", text.replace("Z", "+00:00")))
    except ValueError:
        return text
    return moment(parsed)


def title(subject: str | None) -> str:
    """The subject quoted (`'Intro call'`), or `(no title)` (Google's own word for it)."""
    return repr(subject) if subject else "(no title)"


def meeting(subject: str | None, when: Any) -> str:
    """`'Intro call' 2026-12-17 09:00 UTC`."""
    return f"{title(subject)} {start(when)}"


def owner(owner_id: str | None, users: Mapping[str, str | None]) -> str:
    """A Salesforce OwnerId as the configured user it belongs to (`bob@acme.test`).

    `users` is the cached user mapping (address → User Id, `StateStore.sf_users`); Ids compare
    by their first 15 characters (reference B2). An Id no configured user has is shown as it is,
    marked so: a person reassigned the Event in Salesforce.
    """
    if not owner_id:
        return "-"
    short = owner_id[:15]
    for address, user_id in sorted(users.items()):
        if user_id and user_id[:15] == short:
            return address
    return f"{owner_id} (not a calsync user)"


__all__ = ["meeting", "moment", "owner", "start", "title"]
