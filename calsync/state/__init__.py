"""calsync's state: what it remembers between cycles, in one database (SQLite, or PostgreSQL).

An adapter layer (below the engine, above the rules): the engine keeps what it learnt from
Google and Salesforce here so that a cycle lists only what changed, writes every Event once,
survives a crash at any instant, and spends no Salesforce call when nothing changed.

What it holds (tables, created by the named migrations of migrations.py, recorded in
`_sqlite_migrations` on SQLite, `_calsync_migrations` on PostgreSQL; tables.py lists them), and
the module whose queries own each:

- `calendars` (calendars.py): per configured user, the Google sync token, the calendar's time
  zone (m002), when the sweep last settled it (`swept_at`, m011, sweep.py) and the last
  cycle's outcome.
- `google_items` (google_items.py): the mirror: every item calsync knows of each calendar (raw
  JSON), its whole history; `suspect_since` (m002) marks items a full listing left out.
- `written` (written.py): per Event key (the owner's key address + iCalUID,
  `model.event_key`), the Salesforce Event id and the fingerprint of the fields last written;
  the `creating`/`deleting` intents around each call (`intent_sf_at`, m009: Salesforce's clock
  at a create intent); per-field hashes, kept fields, removed/canceled marks (m004, m007,
  ownership.py).
- `retries` (retries.py): records Salesforce refused, with its statusCode, re-planned later.
- `record_history` (record_history.py, m010): each refusal and each `retry --drop` of a
  record, kept 30 days (`status`, `explain`; history.py puts each record's story together).
- `sf_users`, `meta` (salesforce_cache.py): configured user → Salesforce User Id, and small
  cached facts (Event describe, the directory refresh watermark), so an idle cycle costs no call.
- `meeting_index` + `meeting_links`, `replans`, `directory_seen` (meeting_index.py, m003): what
  ties each meeting to Salesforce, the meetings queued for (re-)planning, the Salesforce
  changes already acted on (directory.py).
- `decisions` (decisions.py, m005): the planner's last decision per meeting and why, so
  `calsync explain` answers offline.
- `push_channels` (push_channels.py, m006): the push notification channels (push.py).
- `owner_keys` (owner_keys.py, m008): the address each Salesforce User's Event keys are hashed
  from, kept across renames (identity.py).
- `requests` (m010, requests.py): admin commands handed to the running daemon (service/handoff.py
  says the protocol).

Error texts (`last_error`, a retry's message) are stored redacted (`logs.redact`), like every
log line: a token endpoint that echoes the request must not leave a secret in the file.

How it is built (a newcomer reads in this order):

- store.py: `StateStore`, the one object the engine and the service use; one method per
  question or change, each forwarded to its concern's object above.
- records.py: the frozen records those methods take and return.
- connection.py: the seam. `Connection` (rows, exec, transaction) is all a concern's queries
  need; `Engine` is a connection over one database that can also check and close itself.
- sqlite.py: `SQLiteEngine`, everything SQLite's own: the private file, WAL, the read-only
  reader and the snapshot, quick_check, `state_fault` (every SQLite failure becomes one
  `StateError` naming the file, exit 74), transactions, running the migrations.
- migrations.py, upgrade.py: the schema's named steps; which version brought which, and the
  copy kept before an upgrade. lock.py: the one writer. history.py: refused records' fates.

- postgres.py: `PostgresEngine`, the same for PostgreSQL (psycopg 3, a pool per database,
  advisory-locked write transactions, the same migrations); postgres_lock.py its writer lock.
- copy.py, tables.py: a whole state copied between engines (`calsync state copy`, and the
  private snapshot of a PostgreSQL state).

Import from the modules (`from calsync.state.store import StateStore`); this package exports
nothing itself, so importing `calsync.state.lock` does not load the store.
"""
