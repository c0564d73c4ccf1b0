"""The single-writer lock (calsync/lock.py): one process writes a state database at a time."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

from calsync.core.errors import EXIT_TEMPFAIL
from calsync.state.lock import LockBusy, WriterLock


def test_a_second_writer_is_refused_with_the_holder_named(tmp_path):
    state = tmp_path / "state.db"
    with WriterLock(state, "run"):
        with pytest.raises(LockBusy) as refused:
            WriterLock(state, "sync").acquire()
    message = str(refused.value)
    assert refused.value.exit_code == EXIT_TEMPFAIL
    assert f"{state}: `calsync run` (pid {os.getpid()}, since 20" in message
    assert "stop it first" in message and "--wait SECONDS" in message
    WriterLock(state, "sync").acquire()  # released on leaving the block


def test_the_lock_file_is_owner_only_next_to_the_database(tmp_path):
    state = tmp_path / "new" / "state.db"
    with WriterLock(state, "sync") as lock:
        assert lock.path == tmp_path / "new" / "state.db.lock"
        assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600
        assert stat.S_IMODE(lock.path.parent.stat().st_mode) == 0o700


def test_waiting_takes_the_lock_once_the_holder_is_done(tmp_path):
    state = tmp_path / "state.db"
    holder = WriterLock(state, "sync")
    holder.acquire()
    threading.Timer(0.3, holder.release).start()
    began = time.monotonic()
    WriterLock(state, "sync").acquire(wait=5)
    assert 0.25 < time.monotonic() - began < 2


def test_waiting_is_bounded(tmp_path):
    state = tmp_path / "state.db"
    with WriterLock(state, "sync"):
        began = time.monotonic()
        with pytest.raises(LockBusy, match="after waiting 0.3 s"):
            WriterLock(state, "sync").acquire(wait=0.3)
        assert 0.25 < time.monotonic() - began < 1.5


def test_a_killed_holder_never_leaves_the_lock_stuck(tmp_path):
    state = tmp_path / "state.db"
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from calsync.state.lock import WriterLock; "
         f"WriterLock({str(state)!r}, 'sync').acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy):
            WriterLock(state, "sync").acquire()
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        WriterLock(state, "sync").acquire()  # the kernel released it with the process
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
