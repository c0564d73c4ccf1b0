"""`calsync retry`: records Salesforce refused, tried again now or dropped (logic in calsync/parked.py)."""

from __future__ import annotations

import datetime as dt
import sys

import click

from calsync.cli import WAIT, Context, _fail, cycle_exit, echo, main, print_cycle
from calsync.errors import EXIT_FAILURE, EXIT_OK, CalsyncError


@main.command()
@click.option("--user", "users", multiple=True, help="Only this configured user's records (repeatable).")
@click.option("--event-id", help="Only the record of this Google event's meeting.")
@click.option("--drop", is_flag=True,
              help="Stop retrying the chosen records (logged); needs --user or --event-id.")
@WAIT
@click.pass_obj
def retry(obj: Context, users: tuple[str, ...], event_id: str | None, drop: bool, wait: float) -> None:
    """Retry records Salesforce refused now, or stop retrying them (--drop).

    Without --drop: the chosen parked records are due at once and one cycle runs for their
    calendars. Exit status as `sync` (0, 1 a calendar failed, 65 still refused). With --drop:
    they leave the retry queue (nothing is written to Salesforce; the meeting is planned again
    only when it changes in Google). Both write the state database: refused (75) while the
    daemon runs. Exit 1 when no parked record matches.
    """
    from calsync import metrics, parked
    from calsync.lock import WriterLock
    from calsync.runtime import open_cycle
    from calsync.state import StateStore

    if drop and not users and event_id is None:
        raise click.UsageError("--drop needs --user or --event-id (which records to stop retrying)")
    try:
        cfg = obj.config(secrets=not drop)
        chosen_users = [u.strip().lower() for u in users]
        unknown = [u for u in chosen_users if u not in cfg.sync.users]
        if unknown:
            raise click.UsageError(f"not a configured user: {', '.join(unknown)}")
        lock = WriterLock(cfg.state.path, "retry")
        lock.acquire(wait)
        with lock:
            if drop:
                store = StateStore(cfg.state.path)
                try:
                    records = parked.select(store, chosen_users, event_id)
                    parked.drop(store, records)
                finally:
                    store.close()
                result = None
            else:
                with open_cycle(cfg) as cycle:
                    records = parked.select(cycle.store, chosen_users, event_id)
                    result = None
                    if records:
                        parked.make_due(cycle.store, records, dt.datetime.now(dt.timezone.utc))
                        result = cycle.run(sorted({p.owner for p in records}))
                        left = {r.key for r in cycle.store.retries()}
                if result is not None:
                    metrics.publish(cfg)
    except CalsyncError as exc:
        _fail(exc)
        return
    if not records:
        echo("no record is waiting for a retry" + (" for that choice" if users or event_id else ""))
        sys.exit(EXIT_FAILURE if users or event_id else EXIT_OK)
    for p in records:
        if drop:
            echo(f"stopped retrying {p.describe()}: {p.retry.operation} refused, {p.retry.status_code or '?'}")
        else:
            outcome = result.calendars.get(p.owner) if result is not None else None
            if outcome is None or not outcome.ok:
                state = "not tried (its calendar failed, see below)"
            else:
                state = "still refused" if p.retry.key in left else "written"
            echo(f"{state}: {p.describe()}")
    if result is not None:
        print_cycle(result)
        sys.exit(cycle_exit(result))
    sys.exit(EXIT_OK)
