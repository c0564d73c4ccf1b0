"""An unusable state database: one line naming the file and the cause, exit 74, no traceback,
and no Salesforce call spent before calsync knows it can record what it does."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from calsync.core.errors import StateError
from calsync.state.store import StateStore

# Every fault here is a SQLite file's (damaged pages, a full disk, a read-only directory, a
# SQLite busy timeout, SQLITE_FULL): a PostgreSQL state has none of them.
pytestmark = pytest.mark.sqlite_only("the faults of a SQLite file (damaged pages, full disk, read-only directory)")


def state_of(config_path: Path) -> Path:
    import tomllib

    return Path(tomllib.loads(config_path.read_text())["state"]["path"])


def assert_state_failure(done, state: Path, cause: str, code: int = 74):
    assert done.returncode == code, (done.returncode, done.stdout, done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("calsync:")]
    assert len(lines) == 1, done.stderr
    assert str(state) in lines[0] and cause in lines[0], lines[0]


def damage(path: Path, at: int, size: int) -> None:
    """Overwrite `size` bytes at `at` (negative: from the end of the file)."""
    with path.open("r+b") as handle:
        handle.seek(at, os.SEEK_SET if at >= 0 else os.SEEK_END)
        handle.write(b"\xa5" * size)


# The header (found on opening), and the last page (a table read only in the middle of a cycle).
@pytest.mark.parametrize(("where", "size"), [(0, 100), (-4096, 4096)], ids=["header", "last-page"])
def test_a_damaged_state_file_fails_every_command_with_one_line(cli, make_config, sync, sf_emu, where, size):
    path = make_config()
    assert sync(path).ok
    state = state_of(path)
    damage(state, where, size)
    calls = sf_emu.backend.api_calls
    for command in ("sync", "run"):
        done = cli("--config", str(path), command, timeout=30)
        assert_state_failure(done, state, "damaged")
    assert sf_emu.backend.api_calls == calls  # sync and run stopped before spending any call
    # `status` reads only what it shows (issue 17: no copy and no full read of the file): a
    # damaged header stops it; a damaged page stops it only if that page holds what it shows
    # (which table ends the file depends on the order of writes), else it is for doctor, sync
    # and run. Either way: one line or a normal answer, never a traceback.
    done = cli("--config", str(path), "status", timeout=30)
    if where == 0 or done.returncode != 0:
        assert_state_failure(done, state, "damaged")
    else:
        assert "Traceback" not in done.stdout + done.stderr
    doctor = cli("--config", str(path), "doctor", timeout=30)
    assert doctor.returncode == 1 and "Traceback" not in doctor.stdout + doctor.stderr
    assert any(line.startswith("FAIL state database") and "damaged" in line for line in doctor.stdout.splitlines())


def test_calsync_creates_the_state_database_owner_only(make_config, sync, tmp_path):
    path = make_config(state={"path": str(tmp_path / "new" / "dir" / "state.db")})
    assert sync(path).ok
    state = tmp_path / "new" / "dir" / "state.db"
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    for made in state.parent.iterdir():
        assert stat.S_IMODE(made.stat().st_mode) == 0o600, made


def test_a_lock_held_too_long_is_a_state_error_naming_the_file(tmp_path):
    path = tmp_path / "state.db"
    StateStore(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        store = StateStore(path, timeout=0.2)
        with pytest.raises(StateError, match=f"{path}: .*another program holds a lock on it"):
            store.check_usable()
        store.close()
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_sqlite_full_is_a_state_error_before_anything_is_written(tmp_path):
    # The injected form of a full disk: SQLite itself refuses to grow the file past a page count.
    path = tmp_path / "state.db"
    StateStore(path).close()
    store = StateStore(path)
    try:
        store.db.conn.execute("VACUUM")
        pages = store.db.conn.execute("PRAGMA page_count").fetchone()[0]
        store.db.conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StateError, match=f"{path}: cannot write the state database: the disk is full"):
            store.check_usable()
    finally:
        store.close()


# -- real file systems: a full tmpfs, a read-only directory -----------------------------------------


@contextmanager
def small_tmpfs(where: Path, size: str = "4m"):
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the injected SQLITE_FULL "
                    "test covers the full disk")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(directory: Path) -> None:
    with (directory / "filler").open("wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass


def test_a_full_disk_stops_sync_before_any_salesforce_call(cli, make_config, sync, sf_emu, google_emu, company,
                                                              tmp_path):
    with small_tmpfs(tmp_path / "small") as small:
        path = make_config(state={"path": str(small / "state.db")})
        assert sync(path).ok
        fill(small)
        google_emu.backend.update_event(company.meetings["external"], {"summary": "Moved while full"})
        calls = sf_emu.backend.api_calls
        done = cli("--config", str(path), "sync", timeout=60)
        assert done.returncode == 74, done.stderr
        assert_state_failure(done, small / "state.db", "the disk is")
        assert sf_emu.backend.api_calls == calls
        (small / "filler").unlink()
        again = cli("--config", str(path), "sync", timeout=60)
        assert again.returncode == 0, again.stderr
    assert sum(r["Subject"] == "Moved while full" for r in sf_emu.backend.list_records("Event")) == 2


def reader_without_root_override() -> list[str]:
    """A command prefix under which the CLI cannot write where the mode bits forbid it."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a directory read-only for calsync")
    return [setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--inh-caps=-all", "--"]


def test_a_read_only_state_directory_is_read_by_status_and_refused_by_sync(cli, make_config, sf_emu, tmp_path):
    import subprocess as sp
    import sys

    path = make_config(state={"path": str(tmp_path / "ro" / "state.db")})
    first = cli("--config", str(path), "sync")  # leaves the database and its lock file there
    assert first.returncode == 0, first.stderr
    directory = tmp_path / "ro"
    prefix = reader_without_root_override()
    directory.chmod(0o555)
    try:
        def run(*args):
            return sp.run([*prefix, sys.executable, "-m", "calsync", "--config", str(path), *args],
                          capture_output=True, text=True, timeout=60)

        shown = run("status")
        assert shown.returncode == 0, shown.stderr
        assert "alice@acme.test" in shown.stdout and "last successful sync: 20" in shown.stdout
        calls = sf_emu.backend.api_calls
        refused = run("sync")
        assert_state_failure(refused, directory / "state.db", "cannot open the state database: it is read-only")
        assert sf_emu.backend.api_calls == calls
    finally:
        directory.chmod(0o700)
