"""`StateStore`: the one object the engine uses for the state, made of one object per concern.

The engine (cycle, changes, directory, sweep, parked, explain, ...) and the service hold a
`StateStore` and call its methods; they never see SQL nor the database engine. Each method is
one concern's, and says so by where it forwards:

    calendars        Calendars        calendars.py        sync tokens, the last outcome
    the mirror       GoogleItems      google_items.py     Google items; a listing's apply/commit
    Events written   WrittenEvents    written.py          ids, fingerprints, ownership, intents
    retries          Retries          retries.py          records Salesforce refused, parked
    decisions        Decisions        decisions.py        the planner's last word, for explain
    Salesforce cache SalesforceCache  salesforce_cache.py user ids, small facts (meta)
    meeting index    MeetingIndex     meeting_index.py    what ties meetings to Salesforce
    re-plans         Replans          meeting_index.py    meetings queued for planning

Some concerns are functions of a store instead, as their callers have always used them:
push_channels.py (push.py), owner_keys.py (identity.py), record_history.py (history.py).
The records all of them hand out are in records.py, the schema in migrations.py.

Composition, not mixins: each concern object holds only the connection (and GoogleItems the two
concerns a listing also writes), so each module can be read, and its SQL checked, on its own.
The connection each concern is given is this store itself (the `Connection` of connection.py):
every transaction of every concern is opened by `StateStore.transaction`, so whatever wraps it
(the fault-injection tests, which count and break a cycle's transactions) sees them all, and
nested calls join the outer transaction as before.

Behind the store is one `Engine` (connection.py), today `SQLiteEngine` (sqlite.py): the file,
the read-only `reader`, the private `snapshot`, the checks, the migrations, and the translation
of every SQLite failure into one `StateError` naming the file (exit 74). A second engine
(issue 20) is one module beside it, chosen where the store is opened; no caller changes.

`check_usable()`, called before a cycle spends any API call, reads the whole file once
(PRAGMA quick_check) and writes and takes back 16 KB, so a damaged file, a full disk or a
read-only file shows there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calsync.core.config_model import StateConfig
from calsync.core.model import Written
from calsync.state.calendars import Calendars
from calsync.state.connection import Engine, iso
from calsync.state.copy import copy_state
from calsync.state.decisions import Decisions
from calsync.state.google_items import GoogleItems
from calsync.state.meeting_index import MeetingIndex, Replans, index_address, index_id
from calsync.state.migrations import migrations
from calsync.state.postgres import PostgresEngine, is_url
from calsync.state.owner_keys import (
    cached_addresses, claim_owner_key, holds_state, move_user, owner_keys,
)
from calsync.state.push_channels import forget_push_channel, push_channels, save_push_channel
from calsync.state.record_history import HISTORY_DAYS, history, record_history
from calsync.state.records import (
    CalendarState, HistoryEntry, IndexEntry, MirrorRow, Orphan, PendingCreate, PushChannel, Record,
    Retry, StoredDecision,
)
from calsync.state.retries import Retries
from calsync.state.salesforce_cache import SAVE_META, SalesforceCache
from calsync.state.sqlite import SQLiteEngine, private_directory, state_fault
from calsync.state.written import WrittenEvents

if TYPE_CHECKING:
    import sqlite_utils

# Bytes `check_usable` writes and deletes: room for them proves the disk is not full.
WRITE_CHECK_BYTES = 16_384

# Where a state is: a SQLite file's path (":memory:" for none), a `postgresql://` URL, or the
# configuration's [state] (either, with the PostgreSQL password kept apart from the URL).
Location = str | Path | StateConfig


def _located(where: Location, password: str | None = None) -> tuple[str | Path, str | None]:
    if isinstance(where, StateConfig):
        secret = where.password
        return where.location, (secret.reveal() if secret is not None else password)
    if where is None:
        # `config.state.path` of a PostgreSQL configuration: never a SQLite file named "None".
        raise ValueError("no state location: give the [state] configuration, a path or a URL")
    return where, password


class StateStore:
    """One connection to the state database. Not shared between threads: open one per worker."""

    def __init__(
        self, path: Location, *, timeout: float = 30.0, check_same_thread: bool = True,
        password: str | None = None,
    ) -> None:
        """The database at `path`, created and migrated as needed (":memory:": a throwaway one;
        a `postgresql://` URL: PostgreSQL, `password` given apart from it).
        `check_same_thread=False`: the daemon keeps one store per worker thread and closes
        them all from the main thread at stop (never two threads using one at once)."""
        location, secret = _located(path, password)
        if is_url(location):
            self._attach(PostgresEngine.open(str(location), password=secret, timeout=timeout))
        else:
            self._attach(
                SQLiteEngine.open(location, timeout=timeout, check_same_thread=check_same_thread)
            )

    @staticmethod
    def exists(path: Location, password: str | None = None) -> bool:
        """Whether a calsync state is there yet (a file; a migrated PostgreSQL database)."""
        location, secret = _located(path, password)
        if not is_url(location):
            return Path(location).exists()
        engine = PostgresEngine(str(location), password=secret, read_only=True)
        try:
            return engine.created()
        finally:
            engine.close()

    def _attach(self, engine: Engine) -> None:
        self.engine = engine
        self.path = engine.path
        self._calendars = Calendars(self)
        self._replans = Replans(self)
        self._items = GoogleItems(self, self._calendars, self._replans)
        self._written = WrittenEvents(self)
        self._retries = Retries(self)
        self._decisions = Decisions(self)
        self._salesforce = SalesforceCache(self)
        self._index = MeetingIndex(self)

    @classmethod
    def _over(cls, engine: Engine) -> "StateStore":
        store = cls.__new__(cls)
        store._attach(engine)
        return store

    @classmethod
    def reader(cls, path: Location, password: str | None = None) -> "StateStore":
        """The state database at `path` (which must exist), opened read-only, for the commands
        that only look (status, status --check, explain, doctor) and the daemon's metrics.

        What it costs does not depend on the size of the file: no copy and no full read, only
        the queries the caller makes; every query sees the same moment even while the daemon
        writes. A database written by a newer calsync is refused (StateError); one that misses
        migrations of this version is read through a migrated private copy, once. A damaged page
        is a StateError from the query that meets it. (`SQLiteEngine.reader` says how;
        `PostgresEngine.reader` for PostgreSQL, one read-only transaction.)
        """
        location, secret = _located(path, password)
        if is_url(location):
            return cls._over(PostgresEngine.reader(str(location), password=secret))
        return cls._over(SQLiteEngine.reader(location))

    @classmethod
    def snapshot(cls, path: Location, password: str | None = None) -> "StateStore":
        """A private in-memory copy of the state database at `path` (which must exist).

        For the commands that plan on a throwaway copy (`resync --dry-run`, `explain --live`,
        whose cycle machinery writes its mirror and caches) and for `reader()` on a database
        that misses migrations. It reads the whole file: the commands that only look use
        `reader()`. A database written by a newer calsync, or a damaged one, is refused
        (StateError). Whatever is written to the copy is lost when it is closed. A PostgreSQL
        state is copied into a private SQLite database in memory (copy.py), as it is now.
        """
        location, secret = _located(path, password)
        if not is_url(location):
            return cls._over(SQLiteEngine.snapshot(location))
        source = PostgresEngine.reader(str(location), password=secret)
        copy = SQLiteEngine.open(":memory:")
        try:
            copy_state(source, copy)
        except BaseException:
            copy.close()
            raise
        finally:
            source.close()
        return cls._over(copy)

    @property
    def db(self) -> sqlite_utils.Database:
        """The sqlite-utils Database under a SQLite store (benchmarks and tests reach SQLite
        through it; the engine never does)."""
        return self.engine.db  # type: ignore[attr-defined, no-any-return]

    def check_usable(self) -> None:
        """Read the whole file once, then write (and take back) WRITE_CHECK_BYTES, so that a
        damaged file, a full disk or a read-only file raises StateError here, before a cycle
        spends any API call. A cycle's own writes are mostly smaller than this."""
        self.engine.check_intact()
        with self.transaction():
            self.exec(
                SAVE_META,
                ["write check", "x" * WRITE_CHECK_BYTES, iso(dt.datetime.now(dt.timezone.utc))],
            )
        with self.transaction():
            self.exec("DELETE FROM meta WHERE name = 'write check'")

    def check_intact(self) -> None:
        """PRAGMA quick_check over the whole file (doctor): StateError when it is damaged."""
        self.engine.check_intact()

    def close(self) -> None:
        self.engine.close()

    # -- the Connection every concern uses ----------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One exclusive write transaction; everything inside commits together or not at all.

        Inside another `transaction()` it joins the outer one, so writes that each commit on
        their own can also be grouped into one.
        """
        with self.engine.transaction():
            yield

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        return self.engine.rows(sql, params)

    def exec(self, sql: str, params: Iterable[Any] = ()) -> None:
        self.engine.exec(sql, params)

    # The names these had before the concerns had modules (handoff.py and tests use them).
    _rows = rows
    _exec = exec

    # -- calendars (calendars.py) -------------------------------------------------------------

    def calendar(self, user: str) -> CalendarState | None:
        return self._calendars.calendar(user)

    def calendars(self) -> list[CalendarState]:
        return self._calendars.calendars()

    def record_failure_of_calendar(self, user: str, error: str, at: dt.datetime) -> None:
        self._calendars.record_failure_of_calendar(user, error, at)

    def drop_sync_token(self, user: str) -> None:
        self._calendars.drop_sync_token(user)

    # -- the mirror of Google items (google_items.py) -----------------------------------------

    def mirror_by_ids(self, user: str, event_ids: Iterable[str]) -> dict[str, MirrorRow]:
        return self._items.mirror_by_ids(user, event_ids)

    def mirror_by_uids(self, user: str, ical_uids: Iterable[str]) -> dict[str, list[MirrorRow]]:
        return self._items.mirror_by_uids(user, ical_uids)

    def mirror_uids(self, user: str) -> set[str]:
        return self._items.mirror_uids(user)

    def mirror_rows(self, user: str) -> list[MirrorRow]:
        return self._items.mirror_rows(user)

    def suspects(self, user: str) -> list[MirrorRow]:
        return self._items.suspects(user)

    def apply_listing(
        self, user: str, *, upserts: Iterable[MirrorRow], deletes: Iterable[str],
        suspects: Iterable[str] = (), queued: Iterable[str] = (), at: dt.datetime,
    ) -> None:
        self._items.apply_listing(user, upserts=upserts, deletes=deletes, suspects=suspects,
                                  queued=queued, at=at)

    def commit_listing(
        self, user: str, *, upserts: Iterable[MirrorRow] = (), deletes: Iterable[str] = (),
        suspects: Iterable[str] = (), sync_token: str | None, time_zone: str | None = None,
        result: Mapping[str, Any], at: dt.datetime, done: Iterable[str] = (),
        swept: bool | None = None,
    ) -> None:
        self._items.commit_listing(
            user, upserts=upserts, deletes=deletes, suspects=suspects, sync_token=sync_token,
            time_zone=time_zone, result=result, at=at, done=done, swept=swept,
        )

    def keep_listed(self, user: str, rows: Iterable[MirrorRow]) -> None:
        self._items.keep_listed(user, rows)

    # -- Events written (written.py) ----------------------------------------------------------

    def written(self, keys: Iterable[str]) -> dict[str, Written]:
        return self._written.written(keys)

    def written_for_owner(self, owner: str) -> dict[str, Written]:
        return self._written.written_for_owner(owner)

    def count_written(self, owner: str | None = None) -> int:
        return self._written.count_written(owner)

    def orphans(self, owner: str, limit: int) -> list[Orphan]:
        return self._written.orphans(owner, limit)

    def record_create_intents(
        self, intents: Iterable[tuple[str, str, str, dict[str, Any]]], at: dt.datetime,
        sf_at: dt.datetime | None = None,
    ) -> None:
        self._written.record_create_intents(intents, at, sf_at)

    def pending_creates(self, owners: Iterable[str] | None = None) -> list[PendingCreate]:
        return self._written.pending_creates(owners)

    def claims(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        return self._written.claims(ids)

    def record_written(
        self, key: str, owner: str, ical_uid: str, sf_id: str, fingerprint: str,
        at: dt.datetime, hashes: Mapping[str, str] | None = None,
    ) -> None:
        """An Event now holds these fields: store its id and fingerprint, clear any retry."""
        # Through this store's record_written_many, as before: a test that breaks it there
        # (a process killed before the answer is recorded) breaks this one too.
        self.record_written_many([Record(key, owner, ical_uid, sf_id, fingerprint, hashes)], at)

    def record_written_many(
        self, rows: Iterable[Record | tuple[Any, ...]], at: dt.datetime
    ) -> None:
        self._written.record_written_many(rows, at)

    def record_update_intents(self, pending: Mapping[str, Mapping[str, str]]) -> None:
        self._written.record_update_intents(pending)

    def record_delete_intents(self, keys: Iterable[str]) -> None:
        self._written.record_delete_intents(keys)

    def abandon_deletes(self, keys: Iterable[str]) -> None:
        self._written.abandon_deletes(keys)

    def keep_fields(self, kept: Mapping[str, Iterable[str]]) -> None:
        self._written.keep_fields(kept)

    def mark_removed(self, keys: Iterable[str], at: dt.datetime) -> None:
        self._written.mark_removed(keys, at)

    def mark_canceled(
        self, key: str, hashes: Mapping[str, str], at: dt.datetime, *, prefixed: bool = True
    ) -> None:
        self._written.mark_canceled(key, hashes, at, prefixed=prefixed)

    def removed_in_salesforce(self, owner: str | None = None) -> list[Written]:
        return self._written.removed_in_salesforce(owner)

    def forget_written(self, key: str) -> None:
        """The Event is gone (deleted, or a create intent found nothing): drop the row."""
        self.forget_written_many([key])

    def forget_written_many(self, keys: Iterable[str]) -> None:
        self._written.forget_written_many(keys)

    def abandon_create(self, key: str) -> None:
        self._written.abandon_create(key)

    # -- retries (retries.py) -----------------------------------------------------------------

    def record_retry(
        self, key: str, owner: str, ical_uid: str, operation: str, status_code: str | None,
        message: str | None, at: dt.datetime, base_delay: dt.timedelta,
    ) -> Retry:
        return self._retries.record_retry(key, owner, ical_uid, operation, status_code, message,
                                          at, base_delay)

    def clear_retries(self, keys: Iterable[str]) -> None:
        self._retries.clear_retries(keys)

    def retries(self, owner: str | None = None) -> list[Retry]:
        return self._retries.retries(owner)

    def parked_counts(self) -> dict[tuple[str, str], int]:
        return self._retries.parked_counts()

    def due_retries(self, owner: str, now: dt.datetime) -> list[Retry]:
        return self._retries.due_retries(owner, now)

    def make_retries_due(self, keys: Iterable[str], at: dt.datetime) -> None:
        self._retries.make_retries_due(keys, at)

    # -- decisions (decisions.py) -------------------------------------------------------------

    def record_decisions(self, decisions: Iterable[StoredDecision]) -> None:
        self._decisions.record_decisions(decisions)

    def decisions(
        self, user: str, *, ical_uids: Iterable[str] | None = None, event_id: str | None = None,
        subject: str | None = None, since: dt.datetime | None = None,
    ) -> list[StoredDecision]:
        return self._decisions.decisions(user, ical_uids=ical_uids, event_id=event_id,
                                         subject=subject, since=since)

    # -- Salesforce users and cached facts (salesforce_cache.py) ------------------------------

    def sf_users(
        self, addresses: Iterable[str] | None = None
    ) -> dict[str, tuple[str | None, dt.datetime]]:
        return self._salesforce.sf_users(addresses)

    def save_sf_users(self, found: Mapping[str, str | None], at: dt.datetime) -> None:
        self._salesforce.save_sf_users(found, at)

    def meta(self, name: str) -> tuple[Any, dt.datetime] | None:
        return self._salesforce.meta(name)

    def save_meta(self, name: str, value: Any, at: dt.datetime) -> None:
        self._salesforce.save_meta(name, value, at)

    # -- the meeting index, re-plans, changes acted on (meeting_index.py) ---------------------

    def index_meetings(self, entries: Iterable[IndexEntry]) -> None:
        self._index.index_meetings(entries)

    def index_entry(self, user: str, ical_uid: str) -> IndexEntry | None:
        return self._index.index_entry(user, ical_uid)

    def meetings_touching(
        self, addresses: Iterable[str], record_ids: Iterable[str], starting_after: dt.datetime
    ) -> set[tuple[str, str]]:
        return self._index.meetings_touching(addresses, record_ids, starting_after)

    def queue_replans(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._replans.queue_replans(pairs)

    def replans(self, user: str) -> set[str]:
        return self._replans.replans(user)

    def clear_replans(self, user: str, ical_uids: Iterable[str]) -> None:
        self._replans.clear_replans(user, ical_uids)

    def directory_seen(self) -> set[str]:
        return self._index.directory_seen()

    def remember_directory_seen(
        self, seen: Mapping[str, dt.datetime], forget_up_to: dt.datetime
    ) -> None:
        self._index.remember_directory_seen(seen, forget_up_to)


# The names callers import from here: the store, the records its methods take and return, and
# the functions of a store that live with their concern.
__all__ = [
    "HISTORY_DAYS", "CalendarState", "HistoryEntry", "IndexEntry", "MirrorRow", "Orphan",
    "PendingCreate", "PushChannel", "Record", "Retry", "StateStore", "StoredDecision",
    "cached_addresses", "claim_owner_key", "forget_push_channel", "history", "holds_state",
    "index_address", "index_id", "migrations", "move_user", "owner_keys", "private_directory",
    "push_channels", "record_history", "save_push_channel", "state_fault",
]
