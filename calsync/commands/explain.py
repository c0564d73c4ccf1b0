"""`calsync explain`: why a meeting was, or was not, logged in Salesforce (logic in calsync/explain.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from calsync.cli import Context, _fail, echo, main
from calsync.errors import EXIT_FAILURE, EXIT_OK, CalsyncError


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
    from calsync import explain as explaining
    from calsync.resync import parse_moment
    from calsync.state import StateStore

    if (event_id is None) == (subject is None):
        raise click.UsageError("give --event-id ID or --subject TEXT (one of them)")
    if since is not None and subject is None:
        raise click.UsageError("--since goes with --subject")
    try:
        start = parse_moment(since) if since else None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        cfg = obj.config(secrets=live)
        user = user.strip().lower()
        if user not in cfg.sync.users:
            raise click.UsageError(f"not a configured user: {user}")
        if live:
            results = explaining.live(cfg, user, event_id=event_id, subject=subject, since=start)
        else:
            path = Path(cfg.state.path)
            if not path.exists():
                echo(f"{path} does not exist yet: nothing was synced. Try --live.")
                sys.exit(EXIT_FAILURE)
            store = StateStore.reader(path)
            try:
                results = [(found, None) for found in explaining.stored(
                    store, user, event_id=event_id, subject=subject, since=start)]
            finally:
                store.close()
    except CalsyncError as exc:
        _fail(exc)
        return
    if not results:
        what = f"Google event {event_id}" if event_id else f"a meeting whose subject contains {subject!r}"
        where = "on Google" if live else "in the decisions calsync kept (from its first cycle on this version)"
        echo(f"no decision about {what} on {user}'s calendar {where}"
             + ("" if live else "; try --live, or check the id with the meeting's owner"))
        sys.exit(EXIT_FAILURE)
    for index, (found, changed) in enumerate(results):
        if index:
            echo()
        for line in explaining.render(found):
            echo(line)
        if changed is not None:
            echo("  compared with the stored decision: " + ("; ".join(changed) if changed else "the same"))
    sys.exit(EXIT_OK)
