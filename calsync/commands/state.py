"""`calsync state copy`: a whole state moved between SQLite and PostgreSQL, either way.

A team moving its state to PostgreSQL (or back) keeps everything calsync knows: the Events it
wrote and the hashes that tell its own writes from people's edits, the mirror of every calendar
and its sync token, the retry queue, the record history, the caches. Nothing is synced again.

It runs while nothing else writes either state: it takes the writer lock of both (a running
daemon, a `sync`: refused, exit 75), and refuses a destination that holds rows unless told
`--force` (which replaces them). The source is read as it is (a SQLite file missing migrations
of this version is read through a migrated copy, and left as it was); the destination gets this
version's schema, then every table, in one transaction, with each table's rows counted as it
goes (calsync/state/copy.py does the copying).
"""

from __future__ import annotations

from pathlib import Path

import click

from calsync.commands.group import Context, echo, main
from calsync.commands.group import fail as _fail
from calsync.core.config_model import StateConfig
from calsync.core.errors import CalsyncError, ConfigError
from calsync.state import copy as state_copy
from calsync.state.lock import WriterLock
from calsync.state.postgres import is_url, where
from calsync.state.store import StateStore
from calsync.state.upgrade import VERSION_META

LOCK_NAME = "state-copy"


@main.group("state")
def state() -> None:
    """The state database as a whole."""


def _location(text: str, configured: StateConfig | None) -> StateConfig:
    """A SQLite path or a postgresql:// URL (its password as the configuration's [state] url
    has it when it is that database, else from libpq: PGPASSFILE, peer authentication)."""
    if not is_url(text):
        return StateConfig(path=Path(text).absolute())
    if where(text) != text:
        raise click.UsageError(
            f"{where(text)}: a password never goes in a URL (it would show in the process list):"
            " use PGPASSFILE, a ~/.pgpass file, or the CALSYNC_STATE_PASSWORD variable")
    password = configured.password if configured is not None and configured.url == text else None
    return StateConfig(url=text, password=password)


def _rows_besides_version(store: StateStore) -> int:
    """Rows the store holds, beyond the version row its migration wrote."""
    counts = state_copy.counts(store.engine)
    return sum(counts.values()) - len(store.rows("SELECT 1 FROM meta WHERE name = ?", [VERSION_META]))


@state.command("copy")
@click.option("--from", "source", required=True, metavar="SRC",
              help="The state to copy: a SQLite file, or a postgresql:// URL.")
@click.option("--to", "target", required=True, metavar="DST",
              help="Where to: a SQLite file (created), or a postgresql:// URL (an existing database).")
@click.option("--force", is_flag=True, help="Replace what the destination holds.")
@click.pass_obj
def copy(obj: Context, source: str, target: str, force: bool) -> None:
    """Copy a whole state from SRC to DST (SQLite or PostgreSQL, either way), while nothing runs.

    Every table, the Events calsync wrote and their ownership records included; the destination
    gets this calsync's schema. Refused while a daemon or a sync writes either (exit 75), and
    when DST holds rows, unless --force. Point [state] at DST afterwards.
    """
    try:
        try:
            configured: StateConfig | None = obj.config(secrets=False).state
        except ConfigError:
            configured = None  # a copy needs no configuration
        src, dst = _location(source, configured), _location(target, configured)
        if src.shown == dst.shown:
            raise click.UsageError("SRC and DST are the same state")
        if not StateStore.exists(src):
            raise CalsyncError(f"{src.shown}: no calsync state there")
        with WriterLock(src, LOCK_NAME), WriterLock(dst, LOCK_NAME):
            reader = StateStore.reader(src)
            try:
                writer = StateStore(dst)
                try:
                    held = _rows_besides_version(writer)
                    if held and not force:
                        raise CalsyncError(
                            f"{dst.shown}: already holds {held} rows of a calsync state; pass"
                            " --force to replace them")
                    echo(f"copying {src.shown} -> {dst.shown}")
                    copied = state_copy.copy_state(
                        reader.engine, writer.engine,
                        lambda table, n: echo(f"  {table}: {n} rows"))
                    landed = state_copy.counts(writer.engine)
                finally:
                    writer.close()
            finally:
                reader.close()
        if landed != copied:
            raise CalsyncError(f"{dst.shown}: the copy does not hold what was read ({landed})")
        echo(f"copied {sum(copied.values())} rows in {len(copied)} tables; point [state] at"
             f" {dst.shown} before calsync runs again")
    except CalsyncError as exc:
        _fail(exc)
