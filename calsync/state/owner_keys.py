"""The address each Salesforce User's Event keys are hashed from (`owner_keys`), and renames.

Per Salesforce User (15-character Id, reference B2) the address its Event keys are hashed from:
the first one seen, kept across renames (identity.py), because with an External ID field the
key is stored on every Event too. An address is the key of one User only; a second User
arriving with it is keyed from its Id. `move_user` moves a renamed user's rows to the new
address; `cached_addresses` and `holds_state` tell identity.py which addresses a User had.

Functions of a `Connection` (a `StateStore`), as identity.py calls them. One SQL for both
engines (connection.py): SQLite's `UPDATE OR IGNORE`, which PostgreSQL lacks, is written as an
`UPDATE ... WHERE NOT EXISTS` of the same key; the column `"user"` quoted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from calsync.state.connection import Connection, chunks, iso


def owner_keys(store: Connection, user_ids: Iterable[str]) -> dict[str, str]:
    """15-character Salesforce User Id → the address its Event keys are hashed from."""
    found: dict[str, str] = {}
    for part in chunks(sorted({str(i)[:15] for i in user_ids})):
        marks = ",".join("?" * len(part))
        for r in store.rows(f"SELECT user_id, address FROM owner_keys WHERE user_id IN ({marks})", part):
            found[r["user_id"]] = r["address"]
    return found


def claim_owner_key(store: Connection, user_id: str, address: str, at: dt.datetime) -> str:
    """Give a User first seen now its key address: `address`, or its Id when another User's
    keys are hashed from that address already. Returns the key address it has (a concurrent
    worker may have claimed it first)."""
    with store.transaction():
        user15 = str(user_id)[:15]
        rows = store.rows("SELECT address FROM owner_keys WHERE user_id = ?", [user15])
        if rows:
            return str(rows[0]["address"])
        taken = store.rows("SELECT user_id FROM owner_keys WHERE address = ?", [address])
        key = address if not taken else str(user_id)
        store.exec("INSERT INTO owner_keys (user_id, address, since) VALUES (?, ?, ?)",
                    [user15, key, iso(at)])
        return key


def cached_addresses(store: Connection, user_ids: Iterable[str]) -> dict[str, set[str]]:
    """15-character User Id → every address the user cache maps to it (stale rows included:
    the addresses a User had before a rename)."""
    found: dict[str, set[str]] = {}
    for part in chunks(sorted(set(user_ids))):
        marks = ",".join("?" * len(part))
        for r in store.rows(f"SELECT address, user_id FROM sf_users WHERE user_id IN ({marks})", part):
            found.setdefault(str(r["user_id"])[:15], set()).add(r["address"])
    return found


# Tables whose rows belong to one calendar, by the column naming its user (a rename moves them).
USER = '"user"'  # the column, quoted: PostgreSQL reserves the word
_USER_TABLES = (("google_items", USER), ("decisions", USER), ("meeting_index", USER),
                ("meeting_links", USER), ("replans", USER))

# The rest of each of those tables' key (beside the user): what makes a row `new` holds already.
_KEYS = {"google_items": ("event_id",), "decisions": ("ical_uid",), "meeting_index": ("ical_uid",),
         "meeting_links": ("ical_uid", "kind", "value"), "replans": ("ical_uid",), "calendars": ()}


def holds_state(store: Connection, address: str) -> bool:
    """Whether anything of calsync's state is kept under this address."""
    for table, column in (("calendars", USER), ("written", "owner"), ("retries", "owner"),
                          *_USER_TABLES):
        if store.rows(f"SELECT 1 FROM {table} WHERE {column} = ? LIMIT 1", [address]):
            return True
    return False


def move_user(store: Connection, old: str, new: str) -> None:
    """Everything kept under `old` now belongs to `new` (a renamed user), in one transaction.

    Events written and records waiting for a retry keep their keys. The mirror of Google items
    and the meeting index and decisions move too; where `new` already holds a row for the same
    item or meeting (an older calsync synced both addresses), the row of `new` stays. The sync
    token is dropped: the next cycle lists the calendar in full and compares it with the whole
    history kept. Push channels stay with `old`: the keeper stops them (push.py).
    """
    with store.transaction():
        store.exec("UPDATE written SET owner = ? WHERE owner = ?", [new, old])
        store.exec("UPDATE retries SET owner = ? WHERE owner = ?", [new, old])
        for table, column in (*_USER_TABLES, ("calendars", USER)):
            # UPDATE OR IGNORE, in words both engines share: move the rows whose key `new`
            # does not hold yet; the rest stay under `old` and go.
            keys = _KEYS[table]
            clash = " AND ".join(f"n.{k} = {table}.{k}" for k in keys)
            store.exec(
                f"UPDATE {table} SET {column} = ? WHERE {column} = ? AND NOT EXISTS"
                f" (SELECT 1 FROM {table} AS n WHERE n.{column} = ?{' AND ' + clash if clash else ''})",
                [new, old, new],
            )
            store.exec(f"DELETE FROM {table} WHERE {column} = ?", [old])
        store.exec("UPDATE calendars SET sync_token = NULL, token_saved_at = NULL WHERE \"user\" = ?", [new])
