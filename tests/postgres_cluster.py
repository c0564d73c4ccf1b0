"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl in a temporary directory.

Started once per test session by the `pg_cluster` fixture (tests/conftest.py), only when a test
asks for it; each test gets a fresh database of it (`pg_url`). The server listens on a unix
socket in its own directory only (no TCP), on a free port number (the socket's name), with
fsync off: nothing in it outlives the session. initdb refuses to run as root, so as root the
cluster belongs to the `postgres` system user (Debian's package creates it) and its commands run
as that user (`runuser`). Without PostgreSQL's server binaries the tests that need it skip;
.ci/run installs Debian's `postgresql` package when it may.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def binaries() -> Path | None:
    """The directory of initdb and pg_ctl (Debian's /usr/lib/postgresql/<v>/bin, or PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """One running cluster; `database()` makes a fresh database and gives its URL."""

    def __init__(self) -> None:
        bin_dir = binaries()
        if bin_dir is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb); install Debian's postgresql")
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="calsync-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.user: str | None = None
        self._names = itertools.count(1)
        if os.geteuid() == 0:
            self.user = "postgres"
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync", "--locale=C.UTF-8")
        options = (f"-k {self.root} -p {self.port} -c listen_addresses='' -c fsync=off"
                   " -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "-t", "60", "start")

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.root}&port={self.port}"

    def database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
