"""`calsync retry`: records Salesforce refused, tried again now or dropped (logic in calsync/admin.py
and calsync/parked.py; handed to the running daemon by calsync/handoff.py)."""

from __future__ import annotations

import sys

import click

from calsync.commands.group import WAIT, Context, echo, main
from calsync.commands.group import fail as _fail
from calsync.core.errors import CalsyncError


@main.command()
@click.option("--user", "users", multiple=True, help="Only this configured user's records (repeatable).")
@click.option("--event-id", help="Only the record of this Google event's meeting.")
@click.option("--drop", is_flag=True,
              help="Stop retrying the chosen records (logged, kept 30 days in `status`); needs "
              "--user or --event-id.")
@WAIT
@click.pass_obj
def retry(obj: Context, users: tuple[str, ...], event_id: str | None, drop: bool, wait: float) -> None:
    """Retry records Salesforce refused now, or stop retrying them (--drop).

    Without --drop: the chosen parked records are due at once and one cycle runs for their
    calendars. Exit status as `sync` (0, 1 a calendar failed, 65 still refused). With --drop:
    they leave the retry queue (nothing is written to Salesforce; the meeting is planned again
    only when it changes in Google). While the daemon runs, the command is handed to it and
    waits for its answer (the same output and exit status); 75 when the daemon does not take
    it up within 30 s. Exit 1 when no parked record matches.
    """
    from calsync.service import admin, handoff, metrics
    from calsync.engine.history import who

    if drop and not users and event_id is None:
        raise click.UsageError("--drop needs --user or --event-id (which records to stop retrying)")
    try:
        cfg = obj.config(secrets=False)  # the daemon has its own; read below when run here
        chosen_users = [u.strip().lower() for u in users]
        unknown = [u for u in chosen_users if u not in cfg.sync.users]
        if unknown:
            raise click.UsageError(f"not a configured user: {', '.join(unknown)}")
        command = admin.DROP if drop else admin.RETRY
        arguments = {"users": chosen_users, "event_id": event_id}
        by = who()

        def here() -> admin.Answer:
            full = cfg if drop else obj.config()
            answer = admin.run(full, command, arguments, by=by)
            if not drop:
                metrics.publish(full)
            return answer

        answer = handoff.run_writer(cfg, command, arguments, here, lock_name="retry", wait=wait,
                                    by=by, say=lambda line: echo(line, err=True))
    except CalsyncError as exc:
        _fail(exc)
        return
    for line in answer.lines:
        echo(line)
    sys.exit(answer.exit_code)
