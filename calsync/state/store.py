"""calsync's SQLite state: sync tokens, the mirror of Google items, the Events written, retries.

Tables (created by the named migrations below, recorded by sqlite-utils in `_sqlite_migrations`):

- `calendars`: per configured user, the Google sync token and the last cycle's outcome.
- `google_items`: every item calsync knows of each calendar (raw JSON), the calendar's whole
  history, not only the last window. Incremental answers carry only what changed (a cancelled
  occurrence may hold nothing but ids, reference A3), so working out a series' first occurrence
  needs the rest of the series from here; and a windowed listing says nothing of what lies before
  its window, so nothing is dropped from here but on evidence (`changes.py`). `suspect_since`
  marks items a full listing should have shown but did not, until events.get settles them.
- `written`: per Event key (the owner's key address + iCalUID, `model.event_key`), the
  Salesforce Event id and the fingerprint of the fields last written. `state` is `creating`
  between the intent and the answer of a create, so a crash in between is reconciled on the
  next run instead of duplicated, and `deleting` between a delete's call and its answer (an
  Event then found gone was calsync's own delete, not a person's). Per-field hashes, kept fields
  and removed/canceled marks: ownership.py.
- `retries`: records Salesforce refused, with its statusCode, re-planned on a later cycle.
- `sf_users`: configured user → Salesforce User Id (cached so an idle cycle costs no call).
- `meta`: small cached facts (Event describe, the directory refresh watermark) with the time
  they were saved.
- `meeting_index` + `meeting_links` (m003): per (user, iCalUID) the synced occurrence's start and
  what ties the meeting to Salesforce: its candidate addresses (lowercased) and the records it
  names or relates to (15-character ids, reference B2), so a change in Salesforce finds the
  meetings it affects (`directory.py`).
- `replans` (m003): meetings queued for re-planning: because Salesforce changed under them, and
  every meeting a listing touched, from the moment the listing reaches the mirror until its
  writes are done (`apply_listing`, `commit_listing`), so no crash or fault between loses one.
- `directory_seen` (m003): changes already acted on inside the refresh overlap (`directory.py`).
- `decisions` (m005): per (user, iCalUID) the last decision the planner made for the meeting and
  why, in the plain data `explain.py` builds (people, Name, Related To, the rule that skipped
  it), so `calsync explain` answers offline; replaced at each planning of the meeting.
- `push_channels` (m006): the push notification channels (push.py).
- `owner_keys` (m008): per Salesforce User (15-character Id) the address its Event keys are
  hashed from, the first one seen, kept across renames (identity.py). `move_user` moves a
  renamed user's rows to the new address.
- `written.intent_sf_at` (m009): Salesforce's clock at a create intent, where the search for
  the Event that landed starts (`cycle.reconcile_creates`, `landed.py`).
- `record_history` (m010): each refusal and each `retry --drop` of a record, kept 30 days, so a
  record that left the retry queue stays visible (`status`, `explain`; history.py).
- `requests` (m010): admin commands (`retry`, `resync`) handed to the running daemon
  (handoff.py).
- `calendars.swept_at` (m011): when the sweep (`sweep.py`) last settled every Event calsync
  wrote whose meeting the mirror does not know.

Error texts (`last_error`, a retry's message) are stored redacted (`logs.redact`), like every
log line: a token endpoint that echoes the request must not leave a secret in the file.

Writes go through `transaction()` with plain SQL (BEGIN IMMEDIATE), never sqlite-utils' own
insert helpers, which commit on their own and would split a transaction. A database written by a
newer calsync (a migration this code does not know) is refused rather than guessed at. Before
migrating an existing database file, a copy of it as it was is kept beside it (`upgrade.py`, which
also says which calsync version introduced which migration).

Every SQLite failure (a damaged file, a full disk, a read-only file or directory, a lock held too
long by another program) becomes one `StateError` naming the file and the cause (exit 74), from
whichever statement meets it. `check_usable()`, called before a cycle spends any API call,
reads the whole file once (PRAGMA quick_check) and writes and takes back 16 KB, so such faults
show there.
When calsync creates the database and its directory, they are owner-only (0600, 0700).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import sqlite_utils
from sqlite_utils.migrations import Migrations

from calsync import __version__

from calsync.core import logs

from calsync.state import upgrade
from calsync.core.errors import StateError
from calsync.core.model import Written, event_key

migrations = Migrations("calsync")

# Hashes of unanswered updates kept per field (record_update_intents): bounded, should a
# calendar crash on the same Event again and again.
PENDING_KEPT = 16
# Bytes `check_usable` writes and deletes: room for them proves the disk is not full.
WRITE_CHECK_BYTES = 16_384


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE calendars (
            user TEXT PRIMARY KEY,
            sync_token TEXT,
            token_saved_at TEXT,
            last_attempt_at TEXT,
            last_success_at TEXT,
            last_result TEXT,
            last_error TEXT,
            consecutive_failures INTEGER NOT NULL DEFAULT 0
        );
        CREATE TABLE google_items (
            user TEXT NOT NULL,
            event_id TEXT NOT NULL,
            ical_uid TEXT NOT NULL,
            recurring_event_id TEXT,
            payload TEXT NOT NULL,
            PRIMARY KEY (user, event_id)
        );
        CREATE INDEX google_items_uid ON google_items (user, ical_uid);
        CREATE INDEX google_items_master ON google_items (user, recurring_event_id);
        CREATE TABLE written (
            key TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            ical_uid TEXT NOT NULL,
            sf_id TEXT,
            fingerprint TEXT,
            state TEXT NOT NULL DEFAULT 'synced',
            intent TEXT,
            intent_at TEXT,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX written_owner ON written (owner);
        CREATE TABLE retries (
            key TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            ical_uid TEXT NOT NULL,
            operation TEXT NOT NULL,
            status_code TEXT,
            message TEXT,
            attempts INTEGER NOT NULL DEFAULT 1,
            first_failed_at TEXT NOT NULL,
            next_attempt_at TEXT NOT NULL
        );
        CREATE INDEX retries_owner ON retries (owner);
        CREATE TABLE sf_users (
            address TEXT PRIMARY KEY,
            user_id TEXT,
            checked_at TEXT NOT NULL
        );
        CREATE TABLE meta (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            saved_at TEXT NOT NULL
        );
        """
    )


@migrations()
def m002_history(db: sqlite_utils.Database) -> None:
    # suspect_since: a full listing covered the item's time but did not list it. The item is
    # kept (a listing's silence is no evidence) until events.get says what became of it.
    # time_zone: the calendar's zone from its listing, for all-day activity dates.
    db.executescript(
        """
        ALTER TABLE google_items ADD COLUMN suspect_since TEXT;
        CREATE INDEX google_items_suspect ON google_items (user, suspect_since);
        ALTER TABLE calendars ADD COLUMN time_zone TEXT;
        """
    )


@migrations()
def m003_directory(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE meeting_index (
            user TEXT NOT NULL,
            ical_uid TEXT NOT NULL,
            start TEXT,
            PRIMARY KEY (user, ical_uid)
        );
        CREATE TABLE meeting_links (
            user TEXT NOT NULL,
            ical_uid TEXT NOT NULL,
            kind TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (user, ical_uid, kind, value)
        );
        CREATE INDEX meeting_links_value ON meeting_links (kind, value);
        CREATE TABLE replans (
            user TEXT NOT NULL,
            ical_uid TEXT NOT NULL,
            PRIMARY KEY (user, ical_uid)
        );
        CREATE TABLE directory_seen (
            key TEXT PRIMARY KEY,
            stamp TEXT NOT NULL
        );
        CREATE INDEX directory_seen_stamp ON directory_seen (stamp);
        """
    )


@migrations()
def m004_ownership(db: sqlite_utils.Database) -> None:
    # Who owns which field of an Event (ownership.py): per-field hashes of what calsync last
    # wrote, the fields a person changed since (kept), an Event a person deleted (removed_at), one
    # kept with "Canceled: " because its meeting went after a person had changed it, and the
    # hashes of an update sent but not yet answered (pending_hashes: a crash in between must not
    # make calsync's own write look like a person's).
    db.executescript(
        """
        ALTER TABLE written ADD COLUMN hashes TEXT;
        ALTER TABLE written ADD COLUMN kept TEXT;
        ALTER TABLE written ADD COLUMN removed_at TEXT;
        ALTER TABLE written ADD COLUMN canceled_at TEXT;
        ALTER TABLE written ADD COLUMN pending_hashes TEXT;
        """
    )


@migrations()
def m005_decisions(db: sqlite_utils.Database) -> None:
    # subject_folded: the subject casefolded, for `explain --subject` (SQLite's LIKE folds ASCII
    # only); event_id: the Google id of the single event or series master.
    db.executescript(
        """
        CREATE TABLE decisions (
            user TEXT NOT NULL,
            ical_uid TEXT NOT NULL,
            event_id TEXT,
            subject TEXT,
            subject_folded TEXT,
            start TEXT,
            action TEXT NOT NULL,
            reason TEXT,
            decided_at TEXT NOT NULL,
            detail TEXT NOT NULL,
            PRIMARY KEY (user, ical_uid)
        );
        CREATE INDEX decisions_event ON decisions (user, event_id);
        """
    )


@migrations()
def m006_push(db: sqlite_utils.Database) -> None:
    # Push notification channels (push.py): the channel id and its secret token (the listener
    # refuses a notification whose token differs), the URL Google posts to, the watched
    # resource (channels.stop needs it) and the expiration Google granted. Several rows per
    # user while a renewal overlaps the old channel. Kept across restarts so that channels a
    # crashed daemon left open are known (and stopped or adopted) at the next start.
    db.executescript(
        """
        CREATE TABLE push_channels (
            channel_id TEXT PRIMARY KEY,
            user TEXT NOT NULL,
            token TEXT NOT NULL,
            address TEXT NOT NULL,
            resource_id TEXT,
            expires_at TEXT,
            opened_at TEXT NOT NULL
        );
        CREATE INDEX push_channels_user ON push_channels (user);
        """
    )


@migrations()
def m007_canceled_prefix(db: sqlite_utils.Database) -> None:
    # Whether calsync itself put `Canceled: ` on the Subject of an Event it kept for a person's
    # changes (1), or found it there already (0): only its own prefix goes when the meeting comes
    # back (ownership.settle). NULL: kept before this was recorded.
    db.executescript("ALTER TABLE written ADD COLUMN canceled_prefix INTEGER;")


@migrations()
def m008_owner_keys(db: sqlite_utils.Database) -> None:
    # The address each Salesforce User's Event keys are hashed from (identity.py): the first one
    # calsync saw for them, kept when their address changes (a Workspace rename), because with an
    # External ID field the key is stored on every Event too. `user_id`: the 15-character Id
    # (reference B2). An address is the key of one User only; when a second User arrives with
    # it, their keys are hashed from their Id instead. Statements one by one (not executescript,
    # which commits on its own): the seeding below belongs to the same transaction.
    db.execute(
        "CREATE TABLE owner_keys (user_id TEXT PRIMARY KEY, address TEXT NOT NULL UNIQUE,"
        " since TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX sf_users_user_id ON sf_users (user_id)")
    _seed_owner_keys(db.conn, dt.datetime.now(dt.timezone.utc))


def _seed_owner_keys(conn: sqlite3.Connection, at: dt.datetime) -> None:
    """Seed `owner_keys` from the user cache and the Events written, and re-key what an older
    calsync keyed from a later address.

    A User's key address is the cached address whose Events were written first (lowest rowid of
    `written`), else the first in order. Rows an older calsync wrote under another address of the
    same User (after a rename, or with two addresses mapped to one User) were keyed from that
    address: each takes the key of the key address when no row holds it yet, so the meeting
    keeps its Event instead of getting a second one; where both exist, the later one is a
    duplicate that the next full listing or `resync` removes (duplicates.py). Rows of a create
    still in flight keep their key: it is what the next run reconciles by.
    """
    first = {owner: rowid for owner, rowid in conn.execute(
        "SELECT owner, MIN(rowid) FROM written GROUP BY owner")}
    never = float("inf")
    addresses: dict[str, list[str]] = {}
    full: dict[str, str] = {}  # 15 -> 18-character Id (case-safe, the basis of an Id key)
    for address, user_id in conn.execute(
        "SELECT address, user_id FROM sf_users WHERE user_id IS NOT NULL ORDER BY address"
    ):
        addresses.setdefault(str(user_id)[:15], []).append(address)
        full[str(user_id)[:15]] = str(user_id)
    for found in addresses.values():
        found.sort(key=lambda a: (first.get(a, never), a))
    key_of: dict[str, str] = {}  # address -> its User's key address
    taken: set[str] = set()
    for user_id, found in sorted(addresses.items(), key=lambda kv: (first.get(kv[1][0], never), kv[0])):
        key = found[0] if found[0] not in taken else full[user_id]
        taken.add(key)
        conn.execute("INSERT INTO owner_keys (user_id, address, since) VALUES (?, ?, ?)",
                     [user_id, key, _iso(at)])
        for address in found:
            key_of.setdefault(address, key)
    rows = conn.execute("SELECT key, owner, ical_uid, sf_id FROM written ORDER BY rowid").fetchall()
    existing = {key for key, _, _, _ in rows}
    for key, owner, ical_uid, sf_id in rows:
        key_address = key_of.get(owner)
        if sf_id is None or key_address is None or key_address == owner:
            continue
        if key != event_key(owner, ical_uid):
            continue
        canonical = event_key(key_address, ical_uid)
        if canonical in existing:
            continue  # both Events exist: the later one is a duplicate (duplicates.py)
        conn.execute("UPDATE written SET key = ? WHERE key = ?", [canonical, key])
        conn.execute("UPDATE retries SET key = ? WHERE key = ?", [canonical, key])
        existing.add(canonical)


@migrations()
def m009_intent_clock(db: sqlite_utils.Database) -> None:
    # intent_sf_at: Salesforce's clock when a create intent was recorded (its last Date header
    # plus the time elapsed since, `SalesforceOrg.server_now`). The Event that landed is looked
    # for from there, in Salesforce's own time (CreatedDate), so no skew between the two clocks
    # can hide it (cycle.reconcile_creates). NULL: an intent recorded before this migration, or
    # before Salesforce had answered anything; those are looked for in a window wide enough for
    # 15 minutes of skew either way.
    db.executescript(
        """
        ALTER TABLE written ADD COLUMN intent_sf_at TEXT;
        """
    )


@migrations()
def m010_record_history(db: sqlite_utils.Database) -> None:
    # record_history: what became of records Salesforce refused, kept 30 days (HISTORY_DAYS)
    # after the retry queue forgot them: each refusal (kind 'refused', with its statusCode,
    # message and attempt) and each `calsync retry --drop` (kind 'dropped', with who asked), so
    # `status` and `explain` can still say what happened (history.py).
    # requests: an admin command handed to the running daemon (handoff.py): the CLI inserts a
    # row, the daemon takes it up, runs it and writes the exit status and the lines to print.
    db.executescript(
        """
        CREATE TABLE record_history (
            id INTEGER PRIMARY KEY,
            key TEXT NOT NULL,
            owner TEXT NOT NULL,
            ical_uid TEXT NOT NULL,
            kind TEXT NOT NULL,
            operation TEXT,
            status_code TEXT,
            message TEXT,
            attempts INTEGER,
            at TEXT NOT NULL,
            by TEXT
        );
        CREATE INDEX record_history_owner ON record_history (owner, at);
        CREATE INDEX record_history_key ON record_history (key, at);
        CREATE INDEX record_history_at ON record_history (at);
        CREATE TABLE requests (
            id INTEGER PRIMARY KEY,
            command TEXT NOT NULL,
            arguments TEXT NOT NULL,
            requested_by TEXT,
            requested_at TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            daemon_pid INTEGER,
            taken_at TEXT,
            finished_at TEXT,
            progress TEXT,
            exit_code INTEGER,
            output TEXT
        );
        CREATE INDEX requests_state ON requests (state);
        """
    )


@migrations()
def m011_sweep(db: sqlite_utils.Database) -> None:
    # swept_at: the last time every Event calsync wrote on this calendar whose meeting the
    # mirror does not know was settled on evidence from Google (sweep.py); NULL: due.
    db.executescript("ALTER TABLE calendars ADD COLUMN swept_at TEXT;")


@migrations()
def m012_written_state(db: sqlite_utils.Database) -> None:
    # Every cycle asks for the creates a crash left unanswered (`pending_creates`: state =
    # 'creating'); without an index that read the whole `written` table on every poll, which
    # made an idle poll cost grow with the state (5 ms at 60 MB, 24 ms at 300 MB, issue 17).
    db.executescript("CREATE INDEX written_state ON written (state);")


ADDRESS, RECORD = "address", "record"  # the kinds of meeting_links


def _iso(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat(timespec="seconds")


def _parse(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class CalendarState:
    user: str
    sync_token: str | None
    token_saved_at: dt.datetime | None
    last_attempt_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_result: dict[str, Any]
    last_error: str | None
    consecutive_failures: int
    time_zone: str | None = None
    swept_at: dt.datetime | None = None


@dataclass(frozen=True)
class MirrorRow:
    event_id: str
    ical_uid: str
    recurring_event_id: str | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class Retry:
    key: str
    owner: str
    ical_uid: str
    operation: str
    status_code: str | None
    message: str | None
    attempts: int
    next_attempt_at: dt.datetime


@dataclass(frozen=True)
class IndexEntry:
    """What ties one meeting of one user's calendar to Salesforce (the meeting index).

    `addresses`: the candidate addresses (external people who could be its Name), kept even when
    none is a Contact or Lead yet. `record_ids`: the Contacts, Leads, Opportunities and Accounts
    its Event names or relates to. `start`: the synced occurrence's start (UTC). No addresses
    and no ids: the meeting is not indexed (`index_meetings` removes it).
    """

    user: str
    ical_uid: str
    addresses: frozenset[str] = frozenset()
    record_ids: frozenset[str] = frozenset()
    start: dt.datetime | None = None

    @property
    def empty(self) -> bool:
        return not self.addresses and not self.record_ids


def index_address(address: str) -> str:
    """Addresses compare case-insensitively (Salesforce Email, reference B1)."""
    return address.strip().lower()


def index_id(record_id: str) -> str:
    """Ids compare by their case-sensitive 15-character form (reference B2)."""
    return record_id.strip()[:15]


class Record(NamedTuple):
    """One Event as calsync just wrote it (`record_written_many`)."""

    key: str
    owner: str
    ical_uid: str
    sf_id: str
    fingerprint: str
    hashes: Mapping[str, str] | None = None  # ownership.hashes of the body sent
    kept: frozenset[str] | None = None  # the person's fields; None: as before


@dataclass(frozen=True)
class StoredDecision:
    """The last decision for one meeting of one calendar (`explain.py` fills `detail`)."""

    user: str
    ical_uid: str
    event_id: str | None
    subject: str | None
    start: dt.datetime | None
    action: str  # create, update, delete, unchanged, skip
    reason: str | None  # the rule, for delete and skip
    decided_at: dt.datetime
    detail: dict[str, Any]


@dataclass(frozen=True)
class PushChannel:
    """A notification channel calsync opened on one user's calendar (m006_push, push.py).

    `resource_id` and `expires_at` are None between the watch request and its answer (a
    channel is recorded before the request: Google's `sync` message may come first)."""

    channel_id: str
    user: str
    token: str
    address: str
    resource_id: str | None
    expires_at: dt.datetime | None
    opened_at: dt.datetime


@dataclass(frozen=True)
class Orphan:
    """An Event calsync wrote whose meeting the mirror does not know (`sweep.py`)."""

    key: str
    ical_uid: str
    sf_id: str
    event_id: str | None  # the Google id its meeting had when last planned (decisions), if known


@dataclass(frozen=True)
class PendingCreate:
    """A create whose intent was recorded but whose answer never was (crash or lost reply)."""

    key: str
    owner: str
    ical_uid: str
    intent: dict[str, Any]
    intent_at: dt.datetime  # calsync's clock
    intent_sf_at: dt.datetime | None = None  # Salesforce's clock (m009), when it was known


def state_fault(path: str | Path, exc: sqlite3.Error | OSError, doing: str = "use") -> StateError:
    """One line naming the state database and what is wrong with it (exit 74)."""
    if isinstance(exc, OSError):
        return StateError(f"{path}: cannot {doing} the state database: {exc.strerror or exc}")
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        cause = "the file is damaged"
    elif name.startswith("SQLITE_FULL"):
        cause = "the disk is full"
    elif name in ("SQLITE_IOERR_SHMSIZE", "SQLITE_IOERR_WRITE", "SQLITE_IOERR_FSYNC"):
        # No room for the WAL's shared-memory file, or a write refused: nearly always space.
        cause = "a write failed: the disk is probably full"
    elif name.startswith(("SQLITE_READONLY", "SQLITE_PERM")):
        cause = "it is read-only here"
    elif name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        cause = "another program holds a lock on it"
    elif name.startswith("SQLITE_CANTOPEN"):
        cause = "it cannot be opened (a missing or read-only directory?)"
    else:
        cause = "SQLite failed"
    return StateError(f"{path}: cannot {doing} the state database: {cause} ({exc})")


@contextmanager
def _faults(path: str, doing: str = "use") -> Iterator[None]:
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise state_fault(path, exc, doing) from exc


class StateStore:
    """One connection to the state database. Not shared between threads: open one per worker."""

    def __init__(
        self, path: str | Path, *, timeout: float = 30.0, check_same_thread: bool = True
    ) -> None:
        """`check_same_thread=False`: the daemon keeps one store per worker thread and closes
        them all from the main thread at stop (never two threads using one at once)."""
        self.path = str(path)
        with _faults(self.path, "open"):
            if self.path != ":memory:":
                _create_private(Path(self.path))
            conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None,
                check_same_thread=check_same_thread,
            )
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
                self.db = sqlite_utils.Database(conn)
                self._migrate()
            except BaseException:
                conn.close()
                raise

    def check_usable(self) -> None:
        """Read the whole file once, then write (and take back) WRITE_CHECK_BYTES, so that a
        damaged file, a full disk or a read-only file raises StateError here, before a cycle
        spends any API call. A cycle's own writes are mostly smaller than this."""
        self._check_intact(self.path)
        with self.transaction():
            self._exec(
                "INSERT OR REPLACE INTO meta (name, value, saved_at) VALUES (?, ?, ?)",
                ["write check", "x" * WRITE_CHECK_BYTES, _iso(dt.datetime.now(dt.timezone.utc))],
            )
        with self.transaction():
            self._exec("DELETE FROM meta WHERE name = 'write check'")

    def _migrate(self, source: Path | None = None) -> None:
        """Apply the pending migrations, after keeping a copy of an existing database file as
        it was (upgrade.py); refuse a database a newer calsync migrated. `source`: the file a
        private copy was made of, for the refusal's message."""
        known = [m.name for m in migrations._migrations]
        applied = {m.name for m in migrations.applied(self.db)}
        unknown = applied - set(known)
        if unknown:
            raise StateError(
                upgrade.newer_schema_message(
                    source or Path(self.path), sorted(unknown), self._written_by()
                )
            )
        pending = [name for name in known if name not in applied]
        if not pending:
            return
        if applied and self.path != ":memory:":  # neither a new database nor a private copy
            try:
                upgrade.keep_copy(self.db.conn, Path(self.path), pending)
            except (sqlite3.Error, OSError) as exc:
                fault = state_fault(self.path, exc, "keep a copy of")
                raise StateError(f"{fault}; nothing was migrated") from exc
        migrations.apply(self.db)
        with self.transaction():
            self._exec(
                "INSERT OR REPLACE INTO meta (name, value, saved_at) VALUES (?, ?, ?)",
                [upgrade.VERSION_META, json.dumps(__version__),
                 _iso(dt.datetime.now(dt.timezone.utc))],
            )

    def _written_by(self) -> str | None:
        """The calsync version that last migrated this database (None: before 0.2.0)."""
        try:
            row = self.db.conn.execute(
                "SELECT value FROM meta WHERE name = ?", [upgrade.VERSION_META]
            ).fetchone()
            return str(json.loads(row[0])) if row else None
        except (sqlite3.Error, ValueError):
            return None

    def _check_intact(self, name: str | Path) -> None:
        """PRAGMA quick_check: every page of the file read once; StateError when damaged."""
        rows = self._rows("PRAGMA quick_check(1)")
        verdict = next(iter(rows[0].values())) if rows else "ok"
        if verdict != "ok":
            raise StateError(
                f"{name}: cannot use the state database: the file is damaged ({verdict})"
            )

    @classmethod
    def reader(cls, path: str | Path) -> "StateStore":
        """The state database at `path` (which must exist), opened read-only, for the commands
        that only look (status, status --check, explain, doctor) and the daemon's metrics.

        What it costs does not depend on the size of the file: no copy and no full read, only
        the queries the caller makes (the old in-memory copy, with its quick_check, read all of
        a 300 MB state for every `status` and every metrics publish). SQLite's `mode=ro` with
        `query_only`, inside one read transaction, so every query sees the same moment even
        while the daemon writes (WAL readers never wait for the writer). A read-only
        directory without the WAL's -shm file is read as it lies (`immutable=1`: nobody can be
        writing there). A database written by a newer calsync is refused (StateError); one
        that misses migrations of this version (written by an older calsync and not opened
        since) is read through a migrated private copy, once. A damaged page is a StateError
        from the query that meets it.
        """
        text = str(path)
        known = {m.name for m in migrations._migrations}
        with _faults(text, "read"):
            conn, applied = _open_read_only(text)
        if applied is None:  # not a calsync database yet: read through a migrated copy
            conn.close()
            return cls.snapshot(path)
        store = cls.__new__(cls)
        store.path = text
        store.db = sqlite_utils.Database(conn)
        unknown = applied - known
        if unknown:
            store.close()
            raise StateError(
                f"{text}: written by a newer calsync (migrations {sorted(unknown)}); "
                "upgrade calsync or point [state] path at another file"
            )
        if known - applied:
            store.close()
            return cls.snapshot(path)
        return store

    def check_intact(self) -> None:
        """PRAGMA quick_check over the whole file (doctor): StateError when it is damaged."""
        self._check_intact(self.path)

    @classmethod
    def snapshot(cls, path: str | Path) -> "StateStore":
        """A private in-memory copy of the state database at `path` (which must exist).

        For the commands that plan on a throwaway copy (`resync --dry-run`, `explain --live`,
        whose cycle machinery writes its mirror and caches) and for `reader()` on a database
        that misses migrations. It reads the whole file: the commands that only look use
        `reader()`.

        Opened read-only and copied with SQLite's backup API (a consistent snapshot even while
        the daemon writes), then checked like any store: a database written by a newer calsync,
        or a damaged one, is refused (StateError). Whatever is written to the copy is lost when
        it is closed. A read-only directory without the WAL's -shm file is read as it lies.
        """
        store = cls(":memory:")
        try:
            with _faults(str(path), "read"):
                try:
                    _copy(path, "mode=ro", store)
                except sqlite3.OperationalError:
                    # A read-only directory without the WAL's -shm file: read the file as it
                    # lies (nobody can be writing it there).
                    _copy(path, "immutable=1", store)
                store._migrate(Path(path))  # the copy replaced the fresh schema: check it
            store._check_intact(path)
        except StateError:
            store.close()
            raise
        return store

    def close(self) -> None:
        self.db.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One exclusive write transaction; everything inside commits together or not at all.

        Inside another `transaction()` it joins the outer one (SQLite has no nested BEGIN), so
        writes that each commit on their own can also be grouped into one.
        """
        conn = self.db.conn
        if conn.in_transaction:
            yield
            return
        with _faults(self.path, "write"):
            conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if conn.in_transaction:
                with _faults(self.path, "write"):
                    conn.execute("ROLLBACK")
            raise
        else:
            with _faults(self.path, "write"):
                conn.execute("COMMIT")

    def _rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with _faults(self.path, "read"):
            cursor = self.db.conn.execute(sql, tuple(params))
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row)) for row in cursor.fetchall()]

    def _exec(self, sql: str, params: Iterable[Any] = ()) -> None:
        with _faults(self.path, "write"):
            self.db.conn.execute(sql, tuple(params))

    # -- calendars ----------------------------------------------------------------------------

    def calendar(self, user: str) -> CalendarState | None:
        rows = self._rows("SELECT * FROM calendars WHERE user = ?", [user])
        return self._calendar(rows[0]) if rows else None

    def calendars(self) -> list[CalendarState]:
        return [self._calendar(r) for r in self._rows("SELECT * FROM calendars ORDER BY user")]

    @staticmethod
    def _calendar(row: Mapping[str, Any]) -> CalendarState:
        return CalendarState(
            user=row["user"],
            sync_token=row["sync_token"],
            token_saved_at=_parse(row["token_saved_at"]),
            last_attempt_at=_parse(row["last_attempt_at"]),
            last_success_at=_parse(row["last_success_at"]),
            last_result=json.loads(row["last_result"] or "{}"),
            last_error=row["last_error"],
            consecutive_failures=row["consecutive_failures"],
            time_zone=row.get("time_zone"),
            swept_at=_parse(row.get("swept_at")),
        )

    def _ensure_calendar(self, user: str) -> None:
        self._exec("INSERT OR IGNORE INTO calendars (user) VALUES (?)", [user])

    def record_failure_of_calendar(self, user: str, error: str, at: dt.datetime) -> None:
        with self.transaction():
            self._ensure_calendar(user)
            self._exec(
                "UPDATE calendars SET last_attempt_at = ?, last_error = ?,"
                " consecutive_failures = consecutive_failures + 1 WHERE user = ?",
                [_iso(at), logs.redact(error), user],
            )

    def drop_sync_token(self, user: str) -> None:
        with self.transaction():
            self._ensure_calendar(user)
            self._exec(
                "UPDATE calendars SET sync_token = NULL, token_saved_at = NULL WHERE user = ?",
                [user],
            )

    # -- the mirror of Google items --------------------------------------------------------------

    def mirror_by_ids(self, user: str, event_ids: Iterable[str]) -> dict[str, MirrorRow]:
        ids = sorted(set(event_ids))
        found: dict[str, MirrorRow] = {}
        for chunk in _chunks(ids, 500):
            marks = ",".join("?" * len(chunk))
            for row in self._rows(
                f"SELECT * FROM google_items WHERE user = ? AND event_id IN ({marks})",
                [user, *chunk],
            ):
                found[row["event_id"]] = _mirror_row(row)
        return found

    def mirror_by_uids(self, user: str, ical_uids: Iterable[str]) -> dict[str, list[MirrorRow]]:
        uids = sorted(set(ical_uids))
        found: dict[str, list[MirrorRow]] = {}
        for chunk in _chunks(uids, 500):
            marks = ",".join("?" * len(chunk))
            for row in self._rows(
                f"SELECT * FROM google_items WHERE user = ? AND ical_uid IN ({marks})"
                " ORDER BY event_id",
                [user, *chunk],
            ):
                found.setdefault(row["ical_uid"], []).append(_mirror_row(row))
        return found

    def mirror_uids(self, user: str) -> set[str]:
        rows = self._rows("SELECT DISTINCT ical_uid FROM google_items WHERE user = ?", [user])
        return {r["ical_uid"] for r in rows}

    def mirror_rows(self, user: str) -> list[MirrorRow]:
        """Every item known of `user`'s calendar."""
        rows = self._rows("SELECT * FROM google_items WHERE user = ? ORDER BY event_id", [user])
        return [_mirror_row(r) for r in rows]

    def suspects(self, user: str) -> list[MirrorRow]:
        """Items a full listing left out although its window covered them, oldest first."""
        rows = self._rows(
            "SELECT * FROM google_items WHERE user = ? AND suspect_since IS NOT NULL"
            " ORDER BY suspect_since, event_id",
            [user],
        )
        return [_mirror_row(r) for r in rows]

    def apply_listing(
        self,
        user: str,
        *,
        upserts: Iterable[MirrorRow],
        deletes: Iterable[str],
        suspects: Iterable[str] = (),
        queued: Iterable[str] = (),
        at: dt.datetime,
    ) -> None:
        """Apply a listing to the mirror and queue its meetings (iCalUIDs) for planning, in one
        transaction, before anything of it is written to Salesforce.

        The mirror then knows every item the listing carried (a bare cancelled stub names only
        an id, reference A3: the next listing can tie it to a meeting only through the mirror),
        and the queue (`replans`) keeps each meeting until `commit_listing` says its writes are
        done: a crash or a failed write in between leaves the work queued, never lost, and
        listing the same changes again is idempotent. `deletes` are event ids; deleting a series
        master also drops its exceptions. Nothing else leaves the mirror: a full listing is
        authoritative only for what it covers, and what it should have shown but did not is
        marked `suspects` (kept, checked later).
        """
        upserts, deletes, suspects = list(upserts), list(deletes), list(suspects)
        queued = sorted(set(queued))
        if not (upserts or deletes or suspects or queued):
            return  # an idle poll: no transaction
        with self.transaction():
            self._ensure_calendar(user)
            for event_id in suspects:
                self._exec(
                    "UPDATE google_items SET suspect_since = COALESCE(suspect_since, ?)"
                    " WHERE user = ? AND event_id = ?",
                    [_iso(at), user, event_id],
                )
            for event_id in deletes:
                self._exec(
                    "DELETE FROM google_items WHERE user = ? AND"
                    " (event_id = ? OR recurring_event_id = ?)",
                    [user, event_id, event_id],
                )
            self._upsert_items(user, upserts)
            for ical_uid in queued:
                self._exec(
                    "INSERT OR IGNORE INTO replans (user, ical_uid) VALUES (?, ?)", [user, ical_uid]
                )

    def commit_listing(
        self,
        user: str,
        *,
        upserts: Iterable[MirrorRow] = (),
        deletes: Iterable[str] = (),
        suspects: Iterable[str] = (),
        sync_token: str | None,
        time_zone: str | None = None,
        result: Mapping[str, Any],
        at: dt.datetime,
        done: Iterable[str] = (),
        swept: bool | None = None,
    ) -> None:
        """Store a listing's nextSyncToken once its meetings are planned and written, and take
        those meetings (`done`, iCalUIDs) off the queue, in one transaction (reference C1).

        A cycle applies the listing to the mirror first (`apply_listing`); `upserts`, `deletes`
        and `suspects` given here are applied too, in the same transaction. `swept`: True when
        the sweep settled every orphaned Event (the time is stored), False when it left some
        for later (due again at once), None when it did not run.
        """
        with self.transaction():
            self.apply_listing(user, upserts=upserts, deletes=deletes, suspects=suspects, at=at)
            self._ensure_calendar(user)
            self._exec(
                "UPDATE calendars SET sync_token = ?, token_saved_at = ?, last_attempt_at = ?,"
                " last_success_at = ?, last_result = ?, last_error = NULL,"
                " consecutive_failures = 0, time_zone = COALESCE(?, time_zone),"
                " swept_at = CASE ? WHEN 1 THEN ? WHEN 0 THEN NULL ELSE swept_at END"
                " WHERE user = ?",
                [sync_token, _iso(at), _iso(at), _iso(at), json.dumps(dict(result)), time_zone,
                 None if swept is None else int(swept), _iso(at), user],
            )
            self.clear_replans(user, done)

    def keep_listed(self, user: str, rows: Iterable[MirrorRow]) -> None:
        """Put the listed items of meetings about to get an Event into the mirror now, ahead of
        their listing's commit.

        A create whose answer is lost, or a crash after it, leaves the calendar's listing
        uncommitted while the Event may exist. If the meeting is deleted before the next run,
        Google shows it as a bare id (reference A3), which only the mirror can tie to its
        iCalUID and so to the Event. An item in the mirror early is harmless: the next listing
        shows it again (or its deletion), or a full listing checks it by id."""
        with self.transaction():
            self._ensure_calendar(user)
            self._upsert_items(user, rows)

    def _upsert_items(self, user: str, rows: Iterable[MirrorRow]) -> None:
        for row in rows:
            self._exec(
                "INSERT OR REPLACE INTO google_items"
                " (user, event_id, ical_uid, recurring_event_id, payload)"
                " VALUES (?, ?, ?, ?, ?)",
                [user, row.event_id, row.ical_uid, row.recurring_event_id,
                 json.dumps(row.payload, separators=(",", ":"))],
            )

    # -- Events written ----------------------------------------------------------------------

    def written(self, keys: Iterable[str]) -> dict[str, Written]:
        found: dict[str, Written] = {}
        for chunk in _chunks(sorted(set(keys)), 500):
            marks = ",".join("?" * len(chunk))
            for row in self._rows(f"SELECT * FROM written WHERE key IN ({marks})", chunk):
                found[row["key"]] = _written(row)
        return found

    def written_for_owner(self, owner: str) -> dict[str, Written]:
        rows = self._rows("SELECT * FROM written WHERE owner = ?", [owner])
        return {r["key"]: _written(r) for r in rows}

    def count_written(self, owner: str | None = None) -> int:
        if owner is None:
            rows = self._rows("SELECT COUNT(*) AS n FROM written WHERE sf_id IS NOT NULL AND removed_at IS NULL")
        else:
            rows = self._rows(
                "SELECT COUNT(*) AS n FROM written WHERE owner = ? AND sf_id IS NOT NULL"
                " AND removed_at IS NULL", [owner]
            )
        return int(rows[0]["n"])

    def orphans(self, owner: str, limit: int) -> list[Orphan]:
        """Up to `limit` Events calsync wrote on `owner`'s calendar (not deleted or canceled by
        a person, no create pending) whose iCalUID has no row in the mirror and that nothing
        queues already (a parked retry, a queued re-plan), oldest write first. An Event whose
        meeting calsync last decided to delete is left out: its delete was refused and parked,
        and a parked record an operator dropped (`calsync retry --drop`) stays dropped.

        Two indexed lookups per Event of the owner; run at most daily per calendar and on full
        listings (`sweep.due`), never on an idle poll."""
        rows = self._rows(
            "SELECT w.key, w.ical_uid, w.sf_id, d.event_id FROM written AS w"
            " LEFT JOIN decisions AS d ON d.user = w.owner AND d.ical_uid = w.ical_uid"
            " WHERE w.owner = ? AND w.sf_id IS NOT NULL AND w.state != 'creating'"
            " AND w.removed_at IS NULL AND w.canceled_at IS NULL"
            " AND (d.action IS NULL OR d.action != 'delete')"
            " AND NOT EXISTS (SELECT 1 FROM google_items AS g"
            "                 WHERE g.user = w.owner AND g.ical_uid = w.ical_uid)"
            " AND NOT EXISTS (SELECT 1 FROM retries AS r WHERE r.key = w.key)"
            " AND NOT EXISTS (SELECT 1 FROM replans AS q"
            "                 WHERE q.user = w.owner AND q.ical_uid = w.ical_uid)"
            " ORDER BY w.updated_at, w.key LIMIT ?",
            [owner, limit],
        )
        return [Orphan(r["key"], r["ical_uid"], r["sf_id"], r["event_id"]) for r in rows]

    def record_create_intents(
        self,
        intents: Iterable[tuple[str, str, str, dict[str, Any]]],
        at: dt.datetime,
        sf_at: dt.datetime | None = None,
    ) -> None:
        """Before creating Events: remember (key, owner, ical_uid, record) as `creating`, with
        calsync's time `at` and Salesforce's `sf_at` (None when unknown).

        Committed before the Salesforce call, so a crash after the call leaves a trace that the
        next run reconciles (finds the Event that landed) instead of creating it twice.
        """
        sf_iso = _iso_exact(sf_at) if sf_at is not None else None
        with self.transaction():
            for key, owner, ical_uid, record in intents:
                self._exec(
                    "INSERT INTO written (key, owner, ical_uid, sf_id, fingerprint, state, intent,"
                    " intent_at, updated_at, intent_sf_at) VALUES (?, ?, ?, NULL, NULL, 'creating', ?, ?, ?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET state = 'creating', intent = excluded.intent,"
                    " intent_at = excluded.intent_at, updated_at = excluded.updated_at,"
                    " intent_sf_at = excluded.intent_sf_at",
                    [key, owner, ical_uid, json.dumps(record), _iso(at), _iso(at), sf_iso],
                )

    def pending_creates(self, owners: Iterable[str] | None = None) -> list[PendingCreate]:
        rows = self._rows("SELECT * FROM written WHERE state = 'creating' ORDER BY intent_at, key")
        wanted = set(owners) if owners is not None else None
        return [
            PendingCreate(
                key=r["key"],
                owner=r["owner"],
                ical_uid=r["ical_uid"],
                intent=json.loads(r["intent"] or "{}"),
                intent_at=_parse(r["intent_at"]) or dt.datetime.now(dt.timezone.utc),
                intent_sf_at=_parse(r.get("intent_sf_at")),
            )
            for r in rows
            if wanted is None or r["owner"] in wanted
        ]

    def claims(self, ids: Iterable[str] | None = None) -> dict[str, str]:
        """15-character Event Id → key, for every Event the state records (reference B2), or
        only for these Event ids (15 or 18 characters): a chunk's Events need not load the
        whole table (100,000 rows held ~30 MB at once, issue 12)."""
        if ids is None:
            rows = self._rows("SELECT key, sf_id FROM written WHERE sf_id IS NOT NULL")
            return {str(r["sf_id"])[:15]: r["key"] for r in rows}
        found: dict[str, str] = {}
        for part in _chunks(sorted({str(i)[:15] for i in ids}), 500):
            marks = ",".join("?" * len(part))
            for r in self._rows(
                f"SELECT key, sf_id FROM written WHERE substr(sf_id, 1, 15) IN ({marks})", part
            ):
                found[str(r["sf_id"])[:15]] = r["key"]
        return found

    def record_written(
        self,
        key: str,
        owner: str,
        ical_uid: str,
        sf_id: str,
        fingerprint: str,
        at: dt.datetime,
        hashes: Mapping[str, str] | None = None,
    ) -> None:
        """An Event now holds these fields: store its id and fingerprint, clear any retry."""
        self.record_written_many([Record(key, owner, ical_uid, sf_id, fingerprint, hashes)], at)

    def record_written_many(self, rows: Iterable[Record | tuple[Any, ...]], at: dt.datetime) -> None:
        """`record_written` for a whole Collections answer, in one transaction.

        The Event is calsync's again as written: not removed, not canceled; the fields a person
        owns (`kept`) stay theirs unless the record gives a new set.
        """
        records = [r if isinstance(r, Record) else Record(*r) for r in rows]
        if not records:
            return
        with self.transaction():
            for r in records:
                hashes = json.dumps(dict(r.hashes), sort_keys=True) if r.hashes is not None else None
                kept = json.dumps(sorted(r.kept)) if r.kept is not None else None
                self._exec(
                    "INSERT INTO written (key, owner, ical_uid, sf_id, fingerprint, state, intent,"
                    " intent_at, updated_at, hashes, kept) VALUES (?, ?, ?, ?, ?, 'synced', NULL, NULL, ?, ?, ?)"
                    " ON CONFLICT(key) DO UPDATE SET sf_id = excluded.sf_id,"
                    " fingerprint = excluded.fingerprint, state = 'synced', intent = NULL,"
                    " intent_at = NULL, intent_sf_at = NULL, updated_at = excluded.updated_at, hashes = excluded.hashes,"
                    " kept = COALESCE(excluded.kept, written.kept), removed_at = NULL, canceled_at = NULL,"
                    " canceled_prefix = NULL,"
                    " pending_hashes = NULL",
                    [r.key, r.owner, r.ical_uid, r.sf_id, r.fingerprint, _iso(at), hashes, kept],
                )
                # A parked record written at last: its history says so (m010, history.py).
                self._exec(
                    "INSERT INTO record_history (key, owner, ical_uid, kind, operation, status_code,"
                    " attempts, at) SELECT key, owner, ical_uid, 'written', operation, status_code,"
                    " attempts, ? FROM retries WHERE key = ?", [_iso(at), r.key])
                self._exec("DELETE FROM retries WHERE key = ?", [r.key])

    def record_update_intents(self, pending: Mapping[str, Mapping[str, str]]) -> None:
        """Before updating Events: the hashes of what is being sent, committed before the call.

        If the process dies after Salesforce took the update but before its answer is recorded,
        the next read finds these values and knows them for calsync's own (ownership.edited).
        Each unanswered update adds its hashes to those before it (until a write is recorded):
        after two crashes in a row the Event may hold either update, the one sent first when
        the second process died before its call went out.
        """
        if not pending:
            return
        with self.transaction():
            earlier: dict[str, dict[str, list[str]]] = {}
            for chunk in _chunks(sorted(pending), 500):
                marks = ",".join("?" * len(chunk))
                for row in self._rows(
                    f"SELECT key, pending_hashes FROM written WHERE key IN ({marks})"
                    " AND pending_hashes IS NOT NULL", chunk,
                ):
                    earlier[row["key"]] = _pending(row["pending_hashes"])
            for key, hashes in pending.items():
                merged = earlier.get(key, {})
                for name, value in hashes.items():
                    seen = [v for v in merged.get(name, []) if v != value]
                    merged[name] = [*seen, value][-PENDING_KEPT:]
                self._exec("UPDATE written SET pending_hashes = ? WHERE key = ?",
                           [json.dumps(merged, sort_keys=True), key])

    def record_delete_intents(self, keys: Iterable[str]) -> None:
        """Before deleting Events: mark them `deleting`, committed before the call, so an Event
        found gone afterwards is known for calsync's own delete, not a person's (ownership.py)."""
        keys = sorted(set(keys))
        if not keys:
            return
        with self.transaction():
            for key in keys:
                self._exec("UPDATE written SET state = 'deleting' WHERE key = ? AND sf_id IS NOT NULL", [key])

    def abandon_deletes(self, keys: Iterable[str]) -> None:
        """Deletes Salesforce refused: the Events are still there, and still calsync's."""
        keys = sorted(set(keys))
        if not keys:
            return
        with self.transaction():
            for key in keys:
                self._exec("UPDATE written SET state = 'synced' WHERE key = ? AND state = 'deleting'", [key])

    def keep_fields(self, kept: Mapping[str, Iterable[str]]) -> None:
        """Fields a person changed (ownership.py): calsync leaves them out from now on."""
        if not kept:
            return
        with self.transaction():
            for key, names in kept.items():
                self._exec("UPDATE written SET kept = ? WHERE key = ?", [json.dumps(sorted(names)), key])

    def mark_removed(self, keys: Iterable[str], at: dt.datetime) -> None:
        """These Events were deleted in Salesforce by someone: they stay deleted."""
        keys = sorted(set(keys))
        if not keys:
            return
        with self.transaction():
            for key in keys:
                self._exec(
                    "UPDATE written SET removed_at = COALESCE(removed_at, ?) WHERE key = ?", [_iso(at), key]
                )
                self._exec("DELETE FROM retries WHERE key = ?", [key])

    def mark_canceled(
        self, key: str, hashes: Mapping[str, str], at: dt.datetime, *, prefixed: bool = True
    ) -> None:
        """The meeting went but a person had changed its Event: kept, with `Canceled: `.

        The fingerprint no desired body has, so the Event is written again if the meeting comes
        back; `hashes` now say what calsync last wrote (its Subject with the prefix). `prefixed`:
        calsync added the prefix itself (False: the Subject carried it already)."""
        with self.transaction():
            self._exec(
                "UPDATE written SET canceled_prefix = CASE WHEN canceled_at IS NULL THEN ?"
                " ELSE canceled_prefix END, canceled_at = COALESCE(canceled_at, ?),"
                " fingerprint = 'canceled', hashes = ?, updated_at = ?, pending_hashes = NULL"
                " WHERE key = ?",
                [int(prefixed), _iso(at), json.dumps(dict(hashes), sort_keys=True), _iso(at), key],
            )
            self._exec("DELETE FROM retries WHERE key = ?", [key])

    def removed_in_salesforce(self, owner: str | None = None) -> list[Written]:
        """Events a person deleted in Salesforce, which calsync does not re-create."""
        sql = "SELECT * FROM written WHERE removed_at IS NOT NULL" + (" AND owner = ?" if owner else "")
        return [_written(r) for r in self._rows(sql + " ORDER BY key", [owner] if owner else [])]

    def forget_written(self, key: str) -> None:
        """The Event is gone (deleted, or a create intent found nothing): drop the row."""
        self.forget_written_many([key])

    def forget_written_many(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if not keys:
            return
        with self.transaction():
            for key in keys:
                self._exec("DELETE FROM written WHERE key = ?", [key])
                self._exec("DELETE FROM retries WHERE key = ?", [key])

    def abandon_create(self, key: str) -> None:
        """A create was refused: nothing landed, so the key goes back to having no Event."""
        with self.transaction():
            self._exec("DELETE FROM written WHERE key = ? AND sf_id IS NULL", [key])
            self._exec(
                "UPDATE written SET state = 'synced', intent = NULL, intent_at = NULL, intent_sf_at = NULL"
                " WHERE key = ?",
                [key],
            )

    # -- retries -----------------------------------------------------------------------------

    def record_retry(
        self,
        key: str,
        owner: str,
        ical_uid: str,
        operation: str,
        status_code: str | None,
        message: str | None,
        at: dt.datetime,
        base_delay: dt.timedelta,
    ) -> Retry:
        """Park a refused record; it is re-planned after a delay that doubles per attempt."""
        with self.transaction():
            rows = self._rows("SELECT attempts FROM retries WHERE key = ?", [key])
            attempts = (rows[0]["attempts"] + 1) if rows else 1
            delay = min(base_delay * (2 ** (attempts - 1)), dt.timedelta(hours=24))
            next_at = at + delay
            self._exec(
                "INSERT INTO retries (key, owner, ical_uid, operation, status_code, message,"
                " attempts, first_failed_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET operation = excluded.operation,"
                " status_code = excluded.status_code, message = excluded.message,"
                " attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at",
                [key, owner, ical_uid, operation, status_code, logs.redact(message or "")[:2000],
                 attempts, _iso(at), _iso(next_at)],
            )
            record_history(self, key, owner, ical_uid, "refused", at, operation=operation,
                           status_code=status_code, message=message, attempts=attempts)
        return Retry(key, owner, ical_uid, operation, status_code, message, attempts, next_at)

    def clear_retries(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        if not keys:
            return
        with self.transaction():
            for chunk in _chunks(sorted(set(keys)), 500):
                self._exec(f"DELETE FROM retries WHERE key IN ({','.join('?' * len(chunk))})", chunk)

    def retries(self, owner: str | None = None) -> list[Retry]:
        sql = "SELECT * FROM retries" + (" WHERE owner = ?" if owner else "") + " ORDER BY key"
        return [
            Retry(
                key=r["key"],
                owner=r["owner"],
                ical_uid=r["ical_uid"],
                operation=r["operation"],
                status_code=r["status_code"],
                message=r["message"],
                attempts=r["attempts"],
                next_attempt_at=_parse(r["next_attempt_at"]) or dt.datetime.min,
            )
            for r in self._rows(sql, [owner] if owner else [])
        ]

    def parked_counts(self) -> dict[tuple[str, str], int]:
        """Records waiting for a retry by (owner, statusCode) ("unknown" when none): the
        metrics' gauge, read without the records themselves."""
        rows = self._rows("SELECT owner, COALESCE(status_code, 'unknown') AS code, COUNT(*) AS n"
                          " FROM retries GROUP BY owner, code")
        return {(r["owner"], r["code"]): int(r["n"]) for r in rows}

    def due_retries(self, owner: str, now: dt.datetime) -> list[Retry]:
        return [r for r in self.retries(owner) if r.next_attempt_at <= now]

    def make_retries_due(self, keys: Iterable[str], at: dt.datetime) -> None:
        """`calsync retry`: these parked records are re-planned by the next cycle."""
        keys = sorted(set(keys))
        with self.transaction():
            for chunk in _chunks(keys, 500):
                self._exec(
                    f"UPDATE retries SET next_attempt_at = ? WHERE key IN ({','.join('?' * len(chunk))})",
                    [_iso(at), *chunk],
                )

    # -- decisions (explain.py) ------------------------------------------------------------------

    def record_decisions(self, decisions: Iterable[StoredDecision]) -> None:
        """Replace the stored decision of each meeting, in one transaction."""
        decisions = list(decisions)
        if not decisions:
            return
        with self.transaction():
            for d in decisions:
                self._exec(
                    "INSERT OR REPLACE INTO decisions (user, ical_uid, event_id, subject,"
                    " subject_folded, start, action, reason, decided_at, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [d.user, d.ical_uid, d.event_id, d.subject,
                     d.subject.casefold() if d.subject else None,
                     _iso(d.start) if d.start else None, d.action, d.reason, _iso(d.decided_at),
                     json.dumps(d.detail, separators=(",", ":"))],
                )

    def decisions(
        self,
        user: str,
        *,
        ical_uids: Iterable[str] | None = None,
        event_id: str | None = None,
        subject: str | None = None,
        since: dt.datetime | None = None,
    ) -> list[StoredDecision]:
        """Stored decisions of `user`'s meetings: by iCalUID, by event id, or whose subject
        contains `subject` (case-insensitive) and starts at or after `since`; by start."""
        sql, params = "SELECT * FROM decisions WHERE user = ?", [user]
        if ical_uids is not None:
            uids = sorted(set(ical_uids))
            if not uids:
                return []
            sql += f" AND ical_uid IN ({','.join('?' * len(uids))})"
            params += uids
        if event_id is not None:
            sql += " AND event_id = ?"
            params.append(event_id)
        if since is not None:
            sql += " AND start >= ?"
            params.append(_iso(since))
        if subject is not None:  # in SQL: only the matching rows are read whole and parsed
            sql += " AND instr(COALESCE(subject_folded, ''), ?) > 0"
            params.append(subject.casefold())
        rows = self._rows(sql + " ORDER BY start, ical_uid", params)
        return [
            StoredDecision(
                user=r["user"], ical_uid=r["ical_uid"], event_id=r["event_id"],
                subject=r["subject"], start=_parse(r["start"]), action=r["action"],
                reason=r["reason"], decided_at=_parse(r["decided_at"]) or dt.datetime.min,
                detail=json.loads(r["detail"]),
            )
            for r in rows
        ]

    # -- Salesforce users and cached facts -----------------------------------------------------

    def sf_users(
        self, addresses: Iterable[str] | None = None
    ) -> dict[str, tuple[str | None, dt.datetime]]:
        """Cached user mapping: all of it, or these addresses' (a daemon's one-calendar cycle
        reads one row, not 10,000)."""
        if addresses is None:
            rows = self._rows("SELECT * FROM sf_users")
        else:
            rows = []
            for part in _chunks(sorted(set(addresses)), 500):
                marks = ",".join("?" * len(part))
                rows += self._rows(f"SELECT * FROM sf_users WHERE address IN ({marks})", part)
        return {
            r["address"]: (r["user_id"], _parse(r["checked_at"]) or dt.datetime.min)
            for r in rows
        }

    def save_sf_users(self, found: Mapping[str, str | None], at: dt.datetime) -> None:
        with self.transaction():
            for address, user_id in found.items():
                self._exec(
                    "INSERT OR REPLACE INTO sf_users (address, user_id, checked_at)"
                    " VALUES (?, ?, ?)",
                    [address, user_id, _iso(at)],
                )

    def meta(self, name: str) -> tuple[Any, dt.datetime] | None:
        rows = self._rows("SELECT value, saved_at FROM meta WHERE name = ?", [name])
        if not rows:
            return None
        return json.loads(rows[0]["value"]), _parse(rows[0]["saved_at"]) or dt.datetime.min

    def save_meta(self, name: str, value: Any, at: dt.datetime) -> None:
        with self.transaction():
            self._exec(
                "INSERT OR REPLACE INTO meta (name, value, saved_at) VALUES (?, ?, ?)",
                [name, json.dumps(value), _iso(at)],
            )


    # -- the meeting index and re-plans (directory.py) -------------------------------------------

    def index_meetings(self, entries: Iterable[IndexEntry]) -> None:
        """Replace the index entries of these (user, iCalUID) pairs, in one transaction.

        An empty entry (no addresses, no ids) removes the meeting from the index.
        """
        entries = list(entries)
        if not entries:
            return
        with self.transaction():
            for entry in entries:
                pair = [entry.user, entry.ical_uid]
                self._exec("DELETE FROM meeting_links WHERE user = ? AND ical_uid = ?", pair)
                if entry.empty:
                    self._exec("DELETE FROM meeting_index WHERE user = ? AND ical_uid = ?", pair)
                    continue
                start = _iso(entry.start) if entry.start is not None else None
                self._exec(
                    "INSERT OR REPLACE INTO meeting_index (user, ical_uid, start) VALUES (?, ?, ?)",
                    [*pair, start],
                )
                links = {(ADDRESS, index_address(a)) for a in entry.addresses}
                links |= {(RECORD, index_id(i)) for i in entry.record_ids}
                for kind, value in sorted(links):
                    self._exec(
                        "INSERT OR IGNORE INTO meeting_links (user, ical_uid, kind, value)"
                        " VALUES (?, ?, ?, ?)",
                        [*pair, kind, value],
                    )

    def index_entry(self, user: str, ical_uid: str) -> IndexEntry | None:
        """The stored entry of one meeting (addresses lowercased, ids in 15-character form)."""
        rows = self._rows(
            "SELECT start FROM meeting_index WHERE user = ? AND ical_uid = ?", [user, ical_uid]
        )
        if not rows:
            return None
        links = self._rows(
            "SELECT kind, value FROM meeting_links WHERE user = ? AND ical_uid = ?", [user, ical_uid]
        )
        return IndexEntry(
            user=user,
            ical_uid=ical_uid,
            addresses=frozenset(r["value"] for r in links if r["kind"] == ADDRESS),
            record_ids=frozenset(r["value"] for r in links if r["kind"] == RECORD),
            start=_parse(rows[0]["start"]),
        )

    def meetings_touching(
        self, addresses: Iterable[str], record_ids: Iterable[str], starting_after: dt.datetime
    ) -> set[tuple[str, str]]:
        """(user, iCalUID) of the indexed meetings linked to any of these addresses or ids and
        starting after `starting_after` (a meeting whose start is unknown counts as inside)."""
        found: set[tuple[str, str]] = set()
        after = _iso(starting_after)
        for kind, values in (
            (ADDRESS, {index_address(a) for a in addresses}),
            (RECORD, {index_id(i) for i in record_ids}),
        ):
            for chunk in _chunks(sorted(values), 500):
                marks = ",".join("?" * len(chunk))
                for row in self._rows(
                    "SELECT DISTINCT l.user, l.ical_uid FROM meeting_links AS l"
                    " JOIN meeting_index AS m ON m.user = l.user AND m.ical_uid = l.ical_uid"
                    f" WHERE l.kind = ? AND l.value IN ({marks})"
                    " AND (m.start IS NULL OR m.start > ?)",
                    [kind, *chunk, after],
                ):
                    found.add((row["user"], row["ical_uid"]))
        return found

    def queue_replans(self, pairs: Iterable[tuple[str, str]]) -> None:
        """Queue (user, iCalUID) meetings for re-planning (queuing twice keeps one)."""
        pairs = sorted(set(pairs))
        if not pairs:
            return
        with self.transaction():
            for user, ical_uid in pairs:
                self._exec(
                    "INSERT OR IGNORE INTO replans (user, ical_uid) VALUES (?, ?)", [user, ical_uid]
                )

    def replans(self, user: str) -> set[str]:
        """iCalUIDs of this user's meetings waiting to be re-planned."""
        return {r["ical_uid"] for r in self._rows("SELECT ical_uid FROM replans WHERE user = ?", [user])}

    def clear_replans(self, user: str, ical_uids: Iterable[str]) -> None:
        uids = sorted(set(ical_uids))
        if not uids:
            return
        with self.transaction():
            for chunk in _chunks(uids, 500):
                self._exec(
                    f"DELETE FROM replans WHERE user = ? AND ical_uid IN ({','.join('?' * len(chunk))})",
                    [user, *chunk],
                )

    # -- changes already acted on (directory.py) ------------------------------------------------

    def directory_seen(self) -> set[str]:
        return {r["key"] for r in self._rows("SELECT key FROM directory_seen")}

    def remember_directory_seen(
        self, seen: Mapping[str, dt.datetime], forget_up_to: dt.datetime
    ) -> None:
        """Add `key → stamp` pairs and drop every pair stamped at or before `forget_up_to`."""
        with self.transaction():
            for key, stamp in seen.items():
                self._exec(
                    "INSERT OR REPLACE INTO directory_seen (key, stamp) VALUES (?, ?)",
                    [key, _iso_exact(stamp)],
                )
            self._exec("DELETE FROM directory_seen WHERE stamp <= ?", [_iso_exact(forget_up_to)])


# -- push channels (m006_push) -------------------------------------------------------------------


def _push_channel(row: Mapping[str, Any]) -> PushChannel:
    return PushChannel(
        channel_id=row["channel_id"], user=row["user"], token=row["token"],
        address=row["address"], resource_id=row["resource_id"],
        expires_at=_parse(row["expires_at"]),
        opened_at=_parse(row["opened_at"]) or dt.datetime.now(dt.timezone.utc),
    )


def push_channels(store: "StateStore", user: str | None = None) -> list[PushChannel]:
    """The channels recorded (of one user), oldest first."""
    sql = "SELECT * FROM push_channels"
    params: list[Any] = []
    if user is not None:
        sql += " WHERE user = ?"
        params.append(user)
    return [_push_channel(r) for r in store._rows(sql + " ORDER BY opened_at, channel_id", params)]


def save_push_channel(store: "StateStore", channel: PushChannel) -> None:
    with store.transaction():
        store._exec(
            "INSERT OR REPLACE INTO push_channels (channel_id, user, token, address, resource_id,"
            " expires_at, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [channel.channel_id, channel.user, channel.token, channel.address,
             channel.resource_id, _iso(channel.expires_at) if channel.expires_at else None,
             _iso(channel.opened_at)],
        )


def forget_push_channel(store: "StateStore", channel_id: str) -> None:
    with store.transaction():
        store._exec("DELETE FROM push_channels WHERE channel_id = ?", [channel_id])


# -- owner keys and renames (m008_owner_keys, identity.py) ---------------------------------------


def owner_keys(store: "StateStore", user_ids: Iterable[str]) -> dict[str, str]:
    """15-character Salesforce User Id → the address its Event keys are hashed from."""
    found: dict[str, str] = {}
    for part in _chunks(sorted({str(i)[:15] for i in user_ids}), 500):
        marks = ",".join("?" * len(part))
        for r in store._rows(f"SELECT user_id, address FROM owner_keys WHERE user_id IN ({marks})", part):
            found[r["user_id"]] = r["address"]
    return found


def claim_owner_key(store: "StateStore", user_id: str, address: str, at: dt.datetime) -> str:
    """Give a User first seen now its key address: `address`, or its Id when another User's
    keys are hashed from that address already. Returns the key address it has (a concurrent
    worker may have claimed it first)."""
    with store.transaction():
        user15 = str(user_id)[:15]
        rows = store._rows("SELECT address FROM owner_keys WHERE user_id = ?", [user15])
        if rows:
            return str(rows[0]["address"])
        taken = store._rows("SELECT user_id FROM owner_keys WHERE address = ?", [address])
        key = address if not taken else str(user_id)
        store._exec("INSERT INTO owner_keys (user_id, address, since) VALUES (?, ?, ?)",
                    [user15, key, _iso(at)])
        return key


def cached_addresses(store: "StateStore", user_ids: Iterable[str]) -> dict[str, set[str]]:
    """15-character User Id → every address the user cache maps to it (stale rows included:
    the addresses a User had before a rename)."""
    found: dict[str, set[str]] = {}
    for part in _chunks(sorted(set(user_ids)), 500):
        marks = ",".join("?" * len(part))
        for r in store._rows(f"SELECT address, user_id FROM sf_users WHERE user_id IN ({marks})", part):
            found.setdefault(str(r["user_id"])[:15], set()).add(r["address"])
    return found


# Tables whose rows belong to one calendar, by the column naming its user (a rename moves them).
_USER_TABLES = (("google_items", "user"), ("decisions", "user"), ("meeting_index", "user"),
                ("meeting_links", "user"), ("replans", "user"))


def holds_state(store: "StateStore", address: str) -> bool:
    """Whether anything of calsync's state is kept under this address."""
    for table, column in (("calendars", "user"), ("written", "owner"), ("retries", "owner"),
                          *_USER_TABLES):
        if store._rows(f"SELECT 1 FROM {table} WHERE {column} = ? LIMIT 1", [address]):
            return True
    return False


def move_user(store: "StateStore", old: str, new: str) -> None:
    """Everything kept under `old` now belongs to `new` (a renamed user), in one transaction.

    Events written and records waiting for a retry keep their keys. The mirror of Google items
    and the meeting index and decisions move too; where `new` already holds a row for the same
    item or meeting (an older calsync synced both addresses), the row of `new` stays. The sync
    token is dropped: the next cycle lists the calendar in full and compares it with the whole
    history kept. Push channels stay with `old`: the keeper stops them (push.py).
    """
    with store.transaction():
        store._exec("UPDATE written SET owner = ? WHERE owner = ?", [new, old])
        store._exec("UPDATE retries SET owner = ? WHERE owner = ?", [new, old])
        for table, column in (*_USER_TABLES, ("calendars", "user")):
            store._exec(f"UPDATE OR IGNORE {table} SET {column} = ? WHERE {column} = ?", [new, old])
            store._exec(f"DELETE FROM {table} WHERE {column} = ?", [old])
        store._exec("UPDATE calendars SET sync_token = NULL, token_saved_at = NULL WHERE user = ?", [new])


# -- what became of refused records (m010_record_history, history.py) ----------------------------

HISTORY_DAYS = 30  # refused and dropped records stay visible this long


@dataclass(frozen=True)
class HistoryEntry:
    """One thing that happened to a record Salesforce refused: `refused` (with the attempt
    number), `dropped` (`calsync retry --drop`, with who asked) or `written` (at last)."""

    key: str
    owner: str
    ical_uid: str
    kind: str
    operation: str | None
    status_code: str | None
    message: str | None
    attempts: int | None
    at: dt.datetime
    by: str | None = None


def record_history(
    store: "StateStore", key: str, owner: str, ical_uid: str, kind: str, at: dt.datetime, *,
    operation: str | None = None, status_code: str | None = None, message: str | None = None,
    attempts: int | None = None, by: str | None = None,
) -> None:
    """Add one entry (inside the caller's transaction when there is one); entries older than
    HISTORY_DAYS go at the same time (an indexed delete)."""
    with store.transaction():
        store._exec(
            "INSERT INTO record_history (key, owner, ical_uid, kind, operation, status_code,"
            " message, attempts, at, by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [key, owner, ical_uid, kind, operation, status_code,
             logs.redact(message or "")[:2000] if message else None, attempts, _iso(at), by],
        )
        store._exec("DELETE FROM record_history WHERE at < ?",
                    [_iso(at - dt.timedelta(days=HISTORY_DAYS))])


def history(
    store: "StateStore", since: dt.datetime, *, owner: str | None = None,
    keys: Iterable[str] | None = None,
) -> list[HistoryEntry]:
    """Entries from `since` on (of one owner, or of these keys), oldest first."""
    sql, params = "SELECT * FROM record_history WHERE at >= ?", [_iso(since)]
    if owner is not None:
        sql += " AND owner = ?"
        params.append(owner)
    rows: list[dict[str, Any]] = []
    if keys is not None:
        for part in _chunks(sorted(set(keys)), 500):
            rows += store._rows(sql + f" AND key IN ({','.join('?' * len(part))})", [*params, *part])
    else:
        rows = store._rows(sql, params)
    rows.sort(key=lambda r: r["id"])  # in the order they happened (ids only grow)
    return [
        HistoryEntry(key=r["key"], owner=r["owner"], ical_uid=r["ical_uid"], kind=r["kind"],
                     operation=r["operation"], status_code=r["status_code"], message=r["message"],
                     attempts=r["attempts"], at=_parse(r["at"]) or dt.datetime.min, by=r["by"])
        for r in rows
    ]


def _iso_exact(value: dt.datetime) -> str:
    """UTC ISO with microseconds: Salesforce stamps carry milliseconds, and order as text."""
    return value.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


def private_directory(directory: Path) -> None:
    """`directory` (and missing parents) when it does not exist, the last one owner-only."""
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)


def refuse_symlinks(path: Path) -> None:
    """StateError when the database file or its -wal, -shm or -journal is a symbolic link:
    SQLite would write through it into whatever file it names (one planted there by someone
    who could write the directory). [state] path must name the file itself."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        candidate = Path(f"{path}{suffix}")
        if candidate.is_symlink():
            raise StateError(
                f"{path}: cannot open the state database: {candidate} is a symbolic link, which"
                " calsync does not follow (point [state] path at the file itself)"
            )


def _create_private(path: Path) -> None:
    """The database's directory (0700) and an empty file (0600) when calsync creates them;
    SQLite gives its -wal and -shm files the database file's permissions. None of the files
    may be a symbolic link (`refuse_symlinks`); O_NOFOLLOW closes the race for the file."""
    refuse_symlinks(path)
    if path.exists():
        return
    private_directory(path.parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    except FileExistsError:  # created meanwhile by another process
        pass


def _open_read_only(path: str) -> tuple[sqlite3.Connection, set[str] | None]:
    """A read-only connection inside a read transaction, and the calsync migrations the file
    records (None: no migrations table, not a calsync database yet)."""
    uri = Path(path).absolute().as_uri()
    for mode in ("mode=ro", "immutable=1"):
        conn = sqlite3.connect(f"{uri}?{mode}", uri=True, timeout=5, isolation_level=None)
        try:
            conn.execute("PRAGMA query_only=1")
            conn.execute("BEGIN")
            tables = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'"
                                  " AND name = '_sqlite_migrations'").fetchall()
            if not tables:
                return conn, None
            rows = conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ?",
                                [migrations.name]).fetchall()
            return conn, {name for (name,) in rows}
        except sqlite3.OperationalError:
            conn.close()
            if mode == "immutable=1":
                raise
            # A read-only directory without the WAL's -shm file: read the file as it lies
            # (nobody can be writing it there).
    raise AssertionError("unreachable")


def _copy(path: str | Path, mode: str, store: StateStore) -> None:
    source = sqlite3.connect(f"{Path(path).absolute().as_uri()}?{mode}", uri=True, timeout=30)
    try:
        source.backup(store.db.conn)
    finally:
        source.close()


def _mirror_row(row: Mapping[str, Any]) -> MirrorRow:
    return MirrorRow(
        event_id=row["event_id"],
        ical_uid=row["ical_uid"],
        recurring_event_id=row["recurring_event_id"],
        payload=json.loads(row["payload"]),
    )


def _written(row: Mapping[str, Any]) -> Written:
    return Written(
        key=row["key"],
        owner=row["owner"],
        ical_uid=row["ical_uid"],
        sf_id=row["sf_id"],
        fingerprint=row["fingerprint"],
        hashes=json.loads(row["hashes"]) if row.get("hashes") else None,
        kept=frozenset(json.loads(row["kept"])) if row.get("kept") else frozenset(),
        removed=row.get("removed_at") is not None,
        canceled=row.get("canceled_at") is not None,
        prefixed=None if row.get("canceled_prefix") is None else bool(row["canceled_prefix"]),
        written_at=_parse(row.get("updated_at")),
        pending=_pending(row["pending_hashes"]) if row.get("pending_hashes") else None,
        deleting=row.get("state") == "deleting",
    )


def _pending(text: str) -> dict[str, list[str]]:
    """Stored pending hashes, field → the hashes of every unanswered update (a single hash in
    rows written before they were kept as a list)."""
    found = json.loads(text)
    return {name: [value] if isinstance(value, str) else list(value) for name, value in found.items()}


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
