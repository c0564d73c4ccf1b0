"""`calsync explain`: why a meeting was, or was not, logged in Salesforce (logic in calsync/explain.py)."""

from __future__ import annotations

import sys

import click

from calsync.commands.group import Context, echo, main
from calsync.commands.group import fail as _fail
from calsync.core.errors import EXIT_FAILURE, EXIT_OK, CalsyncError


@main.command()
@click.option("--user", required=True, help="The configured user whose calendar holds the meeting.")
@click.option("--event-id", help="The meeting's Google event id (an occurrence's id finds its series).")
@click.option("--subject", metavar="TEXT",
              help="Every meeting whose subject contains TEXT (case-insensitive).")
@click.option("--since", metavar="DATE",
              help="With --subject: only meetings starting at or after DATE (2026-01-05).")
@click.option("--live", is_flag=True,
              help="Ask Google and Salesforce again and decide now; writes nothing.")
@click.pass_obj
def explain(obj: Context, user: str, event_id: str | None, subject: str | None,
            since: str | None, live: bool) -> None:
    """Say why a meeting was or was not logged in Salesforce, in plain words.

    For each matching meeting: the decision (the Event written, or the rule that skipped it),
    who could be its Name and why others could not (internal, excluded, a room, declined, no
    Contact or Lead), the Name and Related To chosen and why, and a refusal by Salesforce still
    waiting for a retry. Reads the decision kept in the state database (no network, no lock);
    --live decides again on fresh data. Exit status 0 when a meeting was explained, 1 when none
    matched.
    """
    from calsync.engine import explain as explaining
    from calsync.engine.resync import parse_moment
    from calsync.service import runtime
    from calsync.state.store import StateStore

    if (event_id is None) == (subject is None):
        raise click.UsageError("give --event-id ID or --subject TEXT (one of them)")
    if since is not None and subject is None:
        raise click.UsageError("--since goes with --subject")
    try:
        start = parse_moment(since) if since else None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    calendar = None
    try:
        cfg = obj.config(secrets=live)
        user = user.strip().lower()
        if user not in cfg.sync.users:
            raise click.UsageError(f"not a configured user: {user}")
        if live:
            results = runtime.explain_live(cfg, user, event_id=event_id, subject=subject, since=start)
        else:
            if not StateStore.exists(cfg.state):
                echo(f"{cfg.state.shown} does not exist yet: nothing was synced. Try --live.")
                sys.exit(EXIT_FAILURE)
            store = StateStore.reader(cfg.state)
            try:
                results = [(found, None) for found in explaining.stored(
                    store, user, event_id=event_id, subject=subject, since=start)]
                results = [(_with_fate(store, found), changed) for found, changed in results]
                calendar = store.calendar(user)
            finally:
                store.close()
    except CalsyncError as exc:
        _fail(exc)
        return
    failing = _failing(user, calendar)
    if not results:
        what = f"Google event {event_id}" if event_id else f"a meeting whose subject contains {subject!r}"
        where = "on Google" if live else "in the decisions calsync kept (from its first cycle on this version)"
        if failing and not live:
            echo(f"no decision about {what} on {user}'s calendar: {failing}; meetings made or"
                 " changed since its last successful sync are not planned until it syncs again")
            sys.exit(EXIT_FAILURE)
        echo(f"no decision about {what} on {user}'s calendar {where}"
             + ("" if live else "; try --live, or check the id with the meeting's owner"))
        sys.exit(EXIT_FAILURE)
    if failing:
        echo(f"note: {failing}; what follows is the decision of the last run that got this far")
        echo()
    for index, (found, changed) in enumerate(results):
        if index:
            echo()
        for line in explaining.render(found):
            echo(line)
        if changed is not None:
            echo("  compared with the stored decision: " + ("; ".join(changed) if changed else "the same"))
    sys.exit(EXIT_OK)


def _with_fate(store: object, found: object) -> object:
    """The record's refusals of the last 30 days and what became of them (history.py)."""
    import dataclasses
    import datetime as dt

    from calsync.engine.history import fates
    from calsync.core.model import event_key

    decision = found.decision  # type: ignore[attr-defined]
    key = event_key(decision.user, decision.ical_uid)
    fate = next(iter(fates(store, dt.datetime.now(dt.timezone.utc), keys=[key])), None)  # type: ignore[arg-type]
    if fate is None or fate.outcome == "waiting":
        return found
    return dataclasses.replace(found, fate=fate)  # type: ignore[type-var]


def _failing(user: str, calendar: object) -> str | None:
    """`alice@acme.test's calendar is FAILING (3 runs in a row, last 2026-12-01 10:00 UTC: why)`."""
    from calsync.core import display

    failures = getattr(calendar, "consecutive_failures", 0)
    if not failures:
        return None
    since = getattr(calendar, "last_success_at", None)
    last = getattr(calendar, "last_attempt_at", None)
    error = getattr(calendar, "last_error", None) or "?"
    return (f"{user}'s calendar is FAILING ({failures} run{'s' if failures != 1 else ''} in a row,"
            f" last {display.moment(last) if last else '?'}: {error}; last successful sync"
            f" {display.moment(since) if since else 'never'}; `calsync status --user {user}`)")
