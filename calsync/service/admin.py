"""The admin's writing commands as plain functions: `retry`, `retry --drop`, `resync`.

Each takes its arguments as plain data (what `handoff.py` stores as JSON) and returns an
`Answer`: the lines the command prints and its exit status (0; 1 a calendar failed or nothing
matched; 65 Salesforce still refuses a record). The same function runs in the CLI's own process,
under the single-writer lock, when no daemon runs, and inside the daemon when the CLI hands the
command over (`handoff.py`), so both print the same thing and exit the same way.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from calsync.core.config import Config
from calsync.core.errors import EXIT_FAILURE, EXIT_OK, EXIT_REFUSED

RETRY, DROP, RESYNC = "retry", "retry --drop", "resync"
COMMANDS = (RETRY, DROP, RESYNC)


@dataclass(frozen=True)
class Answer:
    """What a command prints (stdout, in order) and its exit status."""

    exit_code: int
    lines: tuple[str, ...]


Progress = Callable[[str], None]
CycleFactory = Callable[[Config], AbstractContextManager[Any]]


def users_of(arguments: Mapping[str, Any]) -> list[str]:
    """The calendars a command touches (its users; every configured one when empty)."""
    return [str(u) for u in arguments.get("users") or []]


def run(
    config: Config,
    command: str,
    arguments: Mapping[str, Any],
    *,
    by: str | None = None,
    progress: Progress | None = None,
    cycle_factory: CycleFactory | None = None,
) -> Answer:
    """Run one admin command. `cycle_factory(config)` gives a Cycle as a context manager
    (runtime.open_cycle in the CLI; the worker's own connection in the daemon)."""
    if command == RETRY:
        return retry(config, users_of(arguments), arguments.get("event_id"),
                     cycle_factory=cycle_factory)
    if command == DROP:
        return drop(config, users_of(arguments), arguments.get("event_id"), by=by)
    if command == RESYNC:
        return resync(config, arguments, progress=progress)
    raise ValueError(f"unknown admin command {command!r}")


# -- retry -----------------------------------------------------------------------------------------


def retry(
    config: Config, users: Sequence[str], event_id: str | None, *,
    cycle_factory: CycleFactory | None = None,
) -> Answer:
    """The chosen parked records are due now and one cycle runs for their calendars."""
    from calsync.service import metrics
    from calsync.engine import parked
    from calsync.service.runtime import open_cycle

    factory = cycle_factory or open_cycle
    lines: list[str] = []
    with factory(config) as cycle:
        records = parked.select(cycle.store, users, event_id)
        if not records:
            return _nothing(users, event_id)
        parked.make_due(cycle.store, records, dt.datetime.now(dt.timezone.utc))
        started = time.monotonic()
        result = cycle.run(sorted({p.owner for p in records}))
        metrics.observe_cycle(result, time.monotonic() - started)
        left = {r.key: r for r in cycle.store.retries()}
        for p in records:
            outcome = result.calendars.get(p.owner)
            if outcome is None or not outcome.ok:
                lines.append(f"not tried (its calendar failed, see below): {p.describe()}")
            elif p.retry.key in left:
                again = parked.Parked(left[p.retry.key], p.subject, p.start, p.event_id)
                lines.append(f"still refused: {again.describe()}: {again.refusal()}")
            else:
                lines.append(f"written: {p.describe()}")
    lines += cycle_lines(result)
    return Answer(cycle_exit(result), tuple(lines))


def drop(config: Config, users: Sequence[str], event_id: str | None, *, by: str | None) -> Answer:
    """Stop retrying the chosen records (kept in the record history, with `by`)."""
    from calsync.engine import parked
    from calsync.state.store import StateStore

    store = StateStore(config.state)
    try:
        records = parked.select(store, users, event_id)
        if not records:
            return _nothing(users, event_id)
        parked.drop(store, records, by=by)
    finally:
        store.close()
    return Answer(EXIT_OK, tuple(f"stopped retrying {p.describe()}: {p.refusal()}" for p in records))


def _nothing(users: Sequence[str], event_id: str | None) -> Answer:
    chosen = bool(users or event_id)
    return Answer(EXIT_FAILURE if chosen else EXIT_OK,
                  ("no record is waiting for a retry" + (" for that choice" if chosen else ""),))


# -- resync ----------------------------------------------------------------------------------------


def resync_arguments(
    users: Sequence[str], since: dt.datetime, until: dt.datetime | None, event_id: str | None,
    overwrite_edits: bool, restore_deleted: bool,
) -> dict[str, Any]:
    """A resync's arguments as plain data (JSON for a request to the daemon)."""
    return {"users": list(users), "since": since.isoformat(), "until": until.isoformat() if until else None,
            "event_id": event_id, "overwrite_edits": overwrite_edits,
            "restore_deleted": restore_deleted}


def resync(config: Config, arguments: Mapping[str, Any], *, progress: Progress | None = None,
           dry_run: bool = False) -> Answer:
    from calsync.engine import resync as resyncing
    from calsync.service import runtime

    until = arguments.get("until")
    window = resyncing.Window(dt.datetime.fromisoformat(arguments["since"]),
                              dt.datetime.fromisoformat(until) if until else None)
    say = progress or (lambda line: None)
    result = runtime.resync(
        config, users_of(arguments) or list(config.sync.users), window=window,
        event_id=arguments.get("event_id"), dry_run=dry_run,
        overwrite_edits=bool(arguments.get("overwrite_edits")),
        restore_deleted=bool(arguments.get("restore_deleted")),
        progress=lambda user, meetings: say(f"listed {user}: {meetings} meetings"),
    )
    refused = any(u.failed for u in result.users.values())
    code = EXIT_FAILURE if not result.ok else (EXIT_REFUSED if refused else EXIT_OK)
    return Answer(code, tuple(resyncing.render(result)))


# -- a cycle's lines ---------------------------------------------------------------------------------


def cycle_lines(result: Any) -> list[str]:
    """One line per calendar of a cycle, the refused records, the Salesforce calls."""
    lines = []
    for outcome in result.calendars.values():
        status = "ok" if outcome.ok else f"FAILED: {outcome.error}"
        lines.append(
            f"{outcome.user}: created {outcome.created}, updated {outcome.updated}, "
            f"deleted {outcome.deleted}, failed {outcome.failed} "
            f"({'full' if outcome.full_sync else 'incremental'}, {outcome.google_calls} Google calls)"
            f" {status}"
        )
    refused = sum(c.failed for c in result.calendars.values())
    if refused:
        lines.append(f"{refused} record{'s' if refused != 1 else ''} refused by Salesforce, parked for a "
                     "retry: `calsync status` names them, `calsync retry` tries again now")
    lines.append(f"Salesforce API calls: {result.salesforce_calls}")
    return lines


def cycle_exit(result: Any) -> int:
    """1 when a calendar failed; else 65 when Salesforce refused a record; else 0."""
    if not result.ok:
        return EXIT_FAILURE
    if any(c.failed for c in result.calendars.values()):
        return EXIT_REFUSED
    return EXIT_OK


__all__ = ["Answer", "COMMANDS", "DROP", "RESYNC", "RETRY", "cycle_exit", "cycle_lines",
           "resync_arguments", "run", "users_of"]
