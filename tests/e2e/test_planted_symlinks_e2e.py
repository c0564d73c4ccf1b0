"""Files calsync creates or writes never follow a symbolic link planted in their place.

Someone who can write the state directory (or the node_exporter textfile directory, often
shared) plants `state.db.lock -> /some/file` or `calsync.prom -> /some/file`: calsync must
neither truncate nor overwrite the target. The lock file is opened with O_NOFOLLOW, the state
database and its -wal/-shm are refused when they are links, and whole-file writes (the
metrics textfile, Google tokens) replace the link itself by rename(2). Each file is created
with its documented mode: lock and state 0600, tokens 0600, textfile 0644.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from calsync.calendar.google.auth import save_user_token

SECRET = b"the victim's own content\n"


def _victim(tmp_path: Path) -> Path:
    victim = tmp_path / "victim.txt"
    victim.write_bytes(SECRET)
    return victim


def _untouched(victim: Path) -> None:
    assert victim.read_bytes() == SECRET
    assert not victim.is_symlink()


@pytest.mark.sqlite_only("the lock file beside a SQLite state (PostgreSQL's lock is an advisory lock)")
def test_a_lock_file_planted_as_a_link_is_refused_and_its_target_kept(cli, make_config, tmp_path):
    victim = _victim(tmp_path)
    path = make_config()
    (tmp_path / "state.db.lock").symlink_to(victim)
    done = cli("--config", str(path), "sync")
    assert done.returncode == 74, done.stderr
    assert "symbolic link" in done.stderr and "Traceback" not in done.stderr
    _untouched(victim)


@pytest.mark.sqlite_only("the state file and its -wal")
@pytest.mark.parametrize("suffix", ["", "-wal"])
def test_a_state_database_planted_as_a_link_is_refused(cli, make_config, sync, tmp_path, suffix):
    path = make_config()
    assert sync(path).ok  # a real state first: the link replaces one of its files
    state = tmp_path / f"state.db{suffix}"
    victim = _victim(tmp_path)
    state.unlink(missing_ok=True)
    state.symlink_to(victim)
    done = cli("--config", str(path), "sync")
    assert done.returncode == 74, done.stderr
    assert "is a symbolic link" in done.stderr
    _untouched(victim)


def test_the_textfile_replaces_a_planted_link_instead_of_writing_through_it(cli, make_config, tmp_path):
    victim = _victim(tmp_path)
    textfile = tmp_path / "prom" / "calsync.prom"
    textfile.parent.mkdir()
    textfile.symlink_to(victim)
    path = make_config(metrics={"textfile": str(textfile)})
    done = cli("--config", str(path), "sync")
    assert done.returncode == 0, done.stderr
    _untouched(victim)
    assert not textfile.is_symlink() and b"calsync_events_written_total" in textfile.read_bytes()
    assert stat.S_IMODE(textfile.stat().st_mode) == 0o644


def test_a_token_file_replaces_a_planted_link(tmp_path):
    victim = _victim(tmp_path)
    token = tmp_path / "tokens" / "alice@acme.test.json"
    token.parent.mkdir(mode=0o700)
    token.symlink_to(victim)
    save_user_token(token, '{"refresh_token": "r"}')
    _untouched(victim)
    assert not token.is_symlink()
    assert stat.S_IMODE(token.stat().st_mode) == 0o600


@pytest.mark.sqlite_only("the modes of the SQLite state file and its lock file")
def test_files_calsync_creates_have_their_documented_modes(cli, make_config, tmp_path):
    old = os.umask(0o022)  # an admin's shell, not the unit's UMask=0077
    try:
        path = make_config()
        done = cli("--config", str(path), "sync")
    finally:
        os.umask(old)
    assert done.returncode == 0, done.stderr
    for name in ("state.db", "state.db.lock"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
