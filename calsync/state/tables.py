"""The tables of calsync's state and the columns that order each one's rows: one list for the
checks that read them all (`PostgresEngine.check_intact`) and for `state copy` (copy.py).

Every table the migrations create is here, in the order a copy fills them; a test holds the
list to the schema (tests/state/test_state_copy.py), so a new table cannot be left out of a
copy. The migrations' own record (`_sqlite_migrations`, `_calsync_migrations`) is not: each
engine writes its own as it migrates.
"""

from __future__ import annotations

# table -> the columns its rows are read in order of (its key; `id` where rows are numbered).
TABLES: dict[str, tuple[str, ...]] = {
    "calendars": ("user",),
    "google_items": ("user", "event_id"),
    "written": ("key",),
    "retries": ("key",),
    "sf_users": ("address",),
    "meta": ("name",),
    "meeting_index": ("user", "ical_uid"),
    "meeting_links": ("user", "ical_uid", "kind", "value"),
    "replans": ("user", "ical_uid"),
    "directory_seen": ("key",),
    "decisions": ("user", "ical_uid"),
    "push_channels": ("channel_id",),
    "owner_keys": ("user_id",),
    "record_history": ("id",),
    "requests": ("id",),
}

# Tables whose `id` numbers rows as they were added (a copy keeps the numbers; PostgreSQL's
# identity then continues after the highest).
NUMBERED = ("record_history", "requests")
