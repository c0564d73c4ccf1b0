"""Upgrades of the state database (upgrade.py): the version table, the copy kept before migrating,
and state databases written by the code of every earlier schema version.

The fixtures (tests/state/fixtures/<migration>.db + .json) were made by that version's own code
against its own emulators (scripts/make-upgrade-fixtures); tests/e2e/test_upgrade_e2e.py syncs
them with today's code.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import calsync
from calsync.state import upgrade
from calsync.core.errors import StateError
from calsync.state.store import StateStore, migrations

FIXTURES = Path(__file__).parent / "fixtures"
FIXTURE_NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
KNOWN = [m.name for m in migrations._migrations]

# Released versions and the migrations each introduced. A released line never changes: a new
# migration goes under calsync.__version__, and releasing that version adds its line here.
RELEASED = {
    "0.1.0": ("m001_initial", "m002_history", "m003_directory", "m004_ownership", "m005_decisions",
              "m006_push"),
}


# -- one source for the version; a version per schema change ------------------------------------


def test_every_migration_belongs_to_one_version_in_order():
    table = upgrade.MIGRATIONS_BY_VERSION
    assert [name for names in table.values() for name in names] == KNOWN
    versions = list(table)
    assert versions == sorted(versions, key=upgrade.version_key) and len(set(versions)) == len(versions)
    assert all(table[v] for v in versions), "a version without a migration has no line"


def test_a_migration_comes_with_a_version_bump():
    current = upgrade.version_key(calsync.__version__)
    table = upgrade.MIGRATIONS_BY_VERSION
    # No migration under a version later than the code's: the version was not bumped.
    assert all(upgrade.version_key(v) <= current for v in table), (calsync.__version__, list(table))
    # Versions before the code's are released: their lines are the ones they shipped with, so a
    # new migration cannot hide under one of them; it belongs to the current version.
    for version, names in table.items():
        if upgrade.version_key(version) < current:
            assert RELEASED.get(version) == names, f"released {version} changed (or not in RELEASED)"
    newest = upgrade.introduced_in(KNOWN[-1])
    assert newest == calsync.__version__ or newest in RELEASED, KNOWN[-1]


def test_calsync_version_prints_the_one_version():
    done = subprocess.run([sys.executable, "-m", "calsync", "--version"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"calsync, version {calsync.__version__}"


def test_the_package_metadata_reads_the_same_version():
    from importlib.metadata import version

    assert version("calsync") == calsync.__version__


def test_the_fixtures_cover_every_released_schema():
    # One fixture per schema version main has had; regenerate with scripts/make-upgrade-fixtures.
    assert FIXTURE_NAMES == KNOWN[: len(FIXTURE_NAMES)] and len(FIXTURE_NAMES) >= 6


# -- the fixtures: opened by today's code ----------------------------------------------------------


def dump(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def table_rows(path: Path) -> dict[str, list[dict]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: [dict(r) for r in conn.execute(f'SELECT * FROM "{n}"')] for n in names}
    finally:
        conn.close()


def copy_fixture(name: str, where: Path) -> tuple[Path, dict]:
    state = where / "state.db"
    shutil.copyfile(FIXTURES / f"{name}.db", state)
    os.chmod(state, 0o600)
    return state, json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_a_state_from_an_earlier_version_is_copied_then_migrated_and_keeps_its_rows(
    name, tmp_path, caplog
):
    state, fixture = copy_fixture(name, tmp_path)
    before, rows_before = dump(state), table_rows(state)
    assert [r["name"] for r in rows_before["_sqlite_migrations"]] == fixture["migrations"]
    pending = [m for m in KNOWN if m not in fixture["migrations"]]

    caplog.set_level(logging.INFO, logger="calsync.upgrade")
    store = StateStore(state)
    try:
        written = store.written_for_owner("alice@acme.test") | store.written_for_owner("bob@acme.test")
        retries = store.retries()
        mirror = store.mirror_rows("alice@acme.test") + store.mirror_rows("bob@acme.test")
        calendars = {c.user: c for c in store.calendars()}
    finally:
        store.close()

    copy = tmp_path / f"state.db.before-{calsync.__version__}"
    if pending:
        # The copy: beside it, owner-only, exactly the database as the old version left it.
        assert copy.is_file() and stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert dump(copy) == before
        lines = [r for r in caplog.records if r.getMessage() == "state database copied before migrating"]
        assert len(lines) == 1
        fields = lines[0].fields  # type: ignore[attr-defined]
        assert fields["copy"] == str(copy) and fields["migrations"] == ",".join(pending)
    else:
        assert not copy.exists()  # nothing to migrate, nothing copied
    applied = [r["name"] for r in table_rows(state)["_sqlite_migrations"]]
    assert applied == fixture["migrations"] + pending

    # Every row of every table survives with the values it had (new columns aside).
    after = table_rows(state)
    for table, rows in rows_before.items():
        if table == "_sqlite_migrations":
            continue
        kept = [{k: r[k] for k in rows[0]} for r in after[table]] if rows else []
        if table == "meta":
            kept = [r for r in kept if r["name"] != upgrade.VERSION_META]
        assert sorted(map(repr, kept)) == sorted(map(repr, rows)), table

    # And read through the store: the Events written, the parked retry, the mirror, the tokens.
    events = {e["Id"] for e in fixture["salesforce"]["records"]["Event"] if not e["IsDeleted"]}
    assert len(written) == 4 and {w.sf_id for w in written.values()} <= events
    assert [(r.ical_uid, r.status_code) for r in retries] == [
        ("upgrade0004@google.com", fixture["refusal"]["status_code"])]
    assert {m.event_id for m in mirror} == {"upgrade0001", "upgrade0002", "upgrade0003", "upgrade0004"}
    assert all(calendars[u].sync_token for u in fixture["sync"]["users"])
    if "m004_ownership" in fixture["migrations"]:
        a = next(w for w in written.values() if w.ical_uid == "upgrade0001@google.com")
        assert a.kept == {"Description"} and a.hashes

    # Opened again: nothing pending, no second copy.
    StateStore(state).close()
    assert sorted(p.name for p in tmp_path.glob("state.db.before-*")) == ([copy.name] if pending else [])


# -- the copy: never overwritten, never through a symlink, or no migration --------------------


OLDEST = FIXTURE_NAMES[0]


def test_an_earlier_copy_is_never_overwritten(tmp_path):
    state, _ = copy_fixture(OLDEST, tmp_path)
    earlier = tmp_path / f"state.db.before-{calsync.__version__}"
    earlier.write_bytes(b"the operator's own copy")
    StateStore(state).close()
    assert earlier.read_bytes() == b"the operator's own copy"
    second = tmp_path / f"state.db.before-{calsync.__version__}.2"
    assert dump(second) == dump(FIXTURES / f"{OLDEST}.db")


def test_a_symlink_planted_at_the_copy_is_not_followed(tmp_path):
    state, _ = copy_fixture(OLDEST, tmp_path)
    target = tmp_path / "elsewhere" / "victim"
    target.parent.mkdir()
    target.write_text("not to be written")
    link = tmp_path / f"state.db.before-{calsync.__version__}"
    link.symlink_to(target)
    StateStore(state).close()
    assert target.read_text() == "not to be written" and link.is_symlink()
    second = tmp_path / f"state.db.before-{calsync.__version__}.2"
    assert not second.is_symlink() and dump(second) == dump(FIXTURES / f"{OLDEST}.db")


def test_a_new_database_and_a_snapshot_make_no_copy(tmp_path):
    StateStore(tmp_path / "new.db").close()
    state, _ = copy_fixture(OLDEST, tmp_path)
    StateStore.snapshot(state).close()  # status, explain, resync --dry-run: a private copy
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.db", "state.db"]
    assert [r["name"] for r in table_rows(state)["_sqlite_migrations"]] == [OLDEST]


FULL_COPY = """
import resource, signal, sys
from calsync.core.errors import StateError
from calsync.state.store import StateStore
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[2]), int(sys.argv[2])))
try:
    StateStore(sys.argv[1]).close()
except StateError as exc:
    print(exc)
    sys.exit(exc.exit_code)
"""


def test_a_copy_that_cannot_be_written_stops_before_migrating(tmp_path):
    # Files may not grow past 64 KB in the child: the state (larger) is read, the copy fails.
    state, fixture = copy_fixture(FIXTURE_NAMES[-2], tmp_path)
    before = dump(state)
    assert state.stat().st_size > 65536
    done = subprocess.run([sys.executable, "-c", FULL_COPY, str(state), "65536"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 74, (done.stdout, done.stderr)
    assert f"{state}: cannot keep a copy of the state database" in done.stdout
    assert "nothing was migrated" in done.stdout
    assert dump(state) == before
    assert sorted(p.name for p in tmp_path.iterdir() if "before" in p.name) == []
    # With room again, the next start copies and migrates.
    StateStore(state).close()
    assert dump(tmp_path / f"state.db.before-{calsync.__version__}") == before


def test_a_full_disk_stops_before_migrating(tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(small)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the file-size limit "
                    "test covers a copy that cannot be written")
    try:
        state, _ = copy_fixture(OLDEST, small)
        before = dump(state)
        with (small / "filler").open("wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError:
                pass
            # Room to open it (the WAL's files), not for a copy of it.
            handle.truncate(max(0, handle.tell() - 65536))
        with pytest.raises(StateError, match=f"{state}: cannot keep a copy of the state database: "
                                             "the disk is full .*; nothing was migrated"):
            StateStore(state)
        assert dump(state) == before and not list(small.glob("state.db.before-*"))
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True)


# -- a database from a newer calsync ------------------------------------------------------------


def test_a_newer_database_is_refused_naming_the_versions_and_the_copy(tmp_path, monkeypatch):
    state, _ = copy_fixture(OLDEST, tmp_path)
    StateStore(state).close()  # copied (before-<this version>) and migrated by this version
    # What a later calsync would leave: its migration, its version, its copy of the state.
    conn = sqlite3.connect(state)
    conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at)"
                 " VALUES ('calsync', 'm999_future', 'x')")
    conn.execute("UPDATE meta SET value = ? WHERE name = ?", [json.dumps("9.0.0"), upgrade.VERSION_META])
    conn.commit()
    conn.close()
    later_copy = tmp_path / "state.db.before-9.0.0"
    shutil.copyfile(tmp_path / f"state.db.before-{calsync.__version__}", later_copy)
    for opener in (StateStore, StateStore.snapshot):
        with pytest.raises(StateError) as refused:
            opener(state)
        text = str(refused.value)
        assert text.startswith(f"{state}: written by a newer calsync (calsync 9.0.0; migrations m999_future)")
        assert f"than this one ({calsync.__version__})" in text
        assert "run calsync 9.0.0 or later" in text and str(later_copy) in text
    assert refused.value.exit_code == 74
