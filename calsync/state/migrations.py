"""The schema of the SQLite state database: named, ordered migrations m001..m012.

Each migration is a function registered on `migrations` (sqlite-utils' `Migrations`), applied in
this order by `SQLiteEngine.migrate` (sqlite.py), which records each one's name in the
`_sqlite_migrations` table. Those names are the schema's version: upgrade.py says which calsync
version introduced which (`MIGRATIONS_BY_VERSION`), tests/state/fixtures holds a database as
each left it, and a database naming one this code does not know is refused. A migration's name
and effect never change once released; a schema change is a new migration at the end.

What each table holds is described in calsync/state/__init__.py. The DDL is SQLite's
(`INTEGER PRIMARY KEY` row ids, `executescript`, `ALTER TABLE ... ADD COLUMN` one at a time, a
column named `user`); another engine (issue 20) needs its own schema with the same tables and
columns, and the same names for its steps.
"""

from __future__ import annotations

import datetime as dt
import sqlite3

import sqlite_utils
from sqlite_utils.migrations import Migrations

from calsync.core.model import event_key
from calsync.state.connection import iso

migrations = Migrations("calsync")


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
                     [user_id, key, iso(at)])
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
