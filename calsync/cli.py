"""The `calsync` command line: each subcommand parses, calls its owner, maps errors to exit codes.

Exit codes (sysexits.h, see errors.py): 0 everything synced; 1 a calendar failed; 65 every
calendar synced but Salesforce refused a record (parked for retry); 64 usage; 74 state database
unusable; 75 temporary failure (retry later); 77 credentials refused, or run as root on the
calsync user's files; 78 configuration wrong. `status --check` speaks the monitoring-plugin
codes instead (0-3, monitoring.py). Only this module and its command modules (calsync/commands/)
print; everything else logs to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from calsync import __version__

from calsync.commands.group import DEFAULT_CONFIG, WAIT, Context, echo, main  # noqa: F401
from calsync.commands.group import fail as _fail
from calsync.core import logs
from calsync.core.errors import EXIT_FAILURE, EXIT_OK, EXIT_REFUSED, CalsyncError

@main.command()
@click.option("--user", "users", multiple=True, help="Only this configured user (repeatable).")
@WAIT
@click.pass_obj
def sync(obj: Context, users: tuple[str, ...], wait: float) -> None:
    """Run one sync cycle over every configured calendar, then exit.

    Exit status 0 when every calendar synced, 1 when any failed, 65 when every calendar synced
    but Salesforce refused a record (parked for a retry: `calsync status`), 75 when another
    calsync process (the daemon, another sync) is writing the state database.
    """
    import time

    from calsync.service import metrics
    from calsync.state.lock import WriterLock
    from calsync.service.runtime import open_cycle

    try:
        cfg = obj.config()
        unknown = [u for u in users if u.lower() not in cfg.sync.users]
        if unknown:
            raise click.UsageError(f"not a configured user: {', '.join(unknown)}")
        lock = WriterLock(cfg.state, "sync")
        lock.acquire(wait)
        with lock, open_cycle(cfg) as cycle:
            started = time.monotonic()
            result = cycle.run([u.lower() for u in users] or None)
            metrics.observe_cycle(result, time.monotonic() - started)
        metrics.publish(cfg)
    except CalsyncError as exc:
        _fail(exc)
        return
    print_cycle(result)
    sys.exit(cycle_exit(result))


def print_cycle(result: Any) -> None:
    """One line per calendar of a cycle, the refused records, the Salesforce calls."""
    from calsync.service.admin import cycle_lines

    for line in cycle_lines(result):
        echo(line)


def cycle_exit(result: Any) -> int:
    """1 when a calendar failed; else 65 when Salesforce refused a record; else 0."""
    from calsync.service.admin import cycle_exit as exit_of

    return exit_of(result)


@main.command()
@click.option(
    "--dir",
    "directory",
    default="calsync-sandbox",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the sandbox writes its configuration, keys, CA and state.",
)
@click.option("--google-port", default=8701, show_default=True, help="0 picks a free port.")
@click.option("--salesforce-port", default=8702, show_default=True, help="0 picks a free port.")
@click.option("--serve/--no-serve", default=False, help="Keep the emulators running after the sync.")
def sandbox(directory: str, google_port: int, salesforce_port: int, serve: bool) -> None:
    """Start both emulators with a demo company, write a config for them and sync once."""
    from calsync.sandbox.demo import run_sandbox

    try:
        code = run_sandbox(Path(directory), google_port, salesforce_port, serve=serve, echo=echo)
    except CalsyncError as exc:
        _fail(exc)
        return
    sys.exit(code)


@main.command()
@click.option(
    "--interval-seconds",
    type=click.FloatRange(min=0.1),
    envvar="CALSYNC_INTERVAL_SECONDS",
    hidden=True,
    help="Testing aid: poll every N seconds instead of [sync] interval_minutes.",
)
@WAIT
@click.pass_obj
def run(obj: Context, interval_seconds: float | None, wait: float) -> None:
    """Run the daemon: sync every calendar about every [sync] interval_minutes until stopped.

    SIGTERM or SIGINT stops it (exit status 0), SIGHUP reloads the configuration. Under systemd
    (Type=notify) it reports readiness, status and watchdog pings. It holds the state database
    for its whole life (exit 75 at start when another calsync process writes it).
    """
    import datetime as dt
    import os

    from calsync.service.daemon import Daemon

    override = dt.timedelta(seconds=interval_seconds) if interval_seconds else None
    daemon = Daemon(obj.config, interval_override=override, lock_wait=wait)
    try:
        code = daemon.run()
    except CalsyncError as exc:
        _fail(exc)
        return
    if daemon.abandoned:
        # Calendars still syncing after the grace period: their pool threads would hold the
        # interpreter's exit until done. Their work is transactional, so leave without them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


# -- operator commands: status, doctor, resync, auth (logic in commands/status.py, commands/doctor.py, engine/resync.py, calendar/google/auth.py) -------


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.option("--user", "users", multiple=True, help="Only this configured user's calendar (repeatable).")
@click.option("--failing", is_flag=True,
              help="Only the calendars that need attention: last attempt failed, records waiting "
              "for a retry, or no Salesforce User.")
@click.option("--check", is_flag=True,
              help="One line and a monitoring-plugin exit status: 0 OK, 1 WARNING (a calendar failed "
              "--max-failures times in a row, records waiting for a retry), 2 CRITICAL (a calendar "
              "not synced within --max-age, a user without a Salesforce User), 3 UNKNOWN.")
@click.option("--max-age", metavar="DURATION",
              help="With --check: how old a calendar's last successful sync may be (90m, 2h, 1d; "
              "default three [sync] interval_minutes).")
@click.option("--max-failures", type=click.IntRange(min=1), metavar="N",
              help="With --check: WARNING when a calendar failed N or more times in a row "
              "(default 3).")
@click.pass_obj
def status(obj: Context, as_json: bool, users: tuple[str, ...], failing: bool, check: bool,
           max_age: str | None, max_failures: int | None) -> None:
    """Show each calendar's last sync, token age, counts, retries waiting and next run.

    Reads only the state database: no network, nothing written, no secret needed. The next run
    is an estimate (last attempt + interval, with the daemon's backoff after failures). Records
    refused in the last 30 days that no longer wait (dropped, written since) are listed too.
    Exit status 0, also when a calendar's last attempt failed (the output says so); 74 when the
    state database cannot be read, 78 when the configuration is wrong. With --check: 0-3 as a
    monitoring plugin (Nagios, Icinga, ...), one line.
    """
    import json

    from calsync.commands import monitoring, status as reporting

    if (max_age is not None or max_failures is not None) and not check:
        raise click.UsageError("--max-age and --max-failures go with --check")
    if check and (users or failing or as_json):
        raise click.UsageError("--check reports every calendar: not with --user, --failing or --json")
    if check:
        try:
            limit = monitoring.parse_duration(max_age) if max_age else None
        except ValueError as exc:
            echo(monitoring.unknown(f"--max-age: {exc}")[1])
            sys.exit(monitoring.UNKNOWN)
        try:
            code, line = monitoring.check(reporting.status(obj.config(secrets=False), details=False), limit,
                                          max_failures=max_failures or monitoring.MAX_FAILURES)
        except CalsyncError as exc:
            code, line = monitoring.unknown(str(exc))
        echo(line)
        sys.exit(code)
    try:
        cfg = obj.config(secrets=False)
        chosen = [u.strip().lower() for u in users]
        unknown = [u for u in chosen if u not in cfg.sync.users]
        if unknown:
            raise click.UsageError(f"not a configured user: {', '.join(unknown)}")
        whole = reporting.status(cfg)
    except CalsyncError as exc:
        _fail(exc)
        return
    report = whole.only(chosen, failing) if chosen or failing else whole
    if as_json:
        for line in json.dumps(report.to_json(), indent=2).splitlines():
            echo(line)
    else:
        for line in reporting.render_status(report, whole):
            echo(line)
    sys.exit(EXIT_OK)


@main.command()
@click.pass_obj
def doctor(obj: Context) -> None:
    """Check the configuration, state database, Google and Salesforce access, Event fields, users.

    Prints each check as `ok` or `FAIL` with what to do. Writes nothing. Exit status 0 when
    every check passes, 1 when any fails, 78 when the configuration does not load.
    """
    from calsync.commands import doctor as checking

    try:
        cfg = obj.config()
    except CalsyncError as exc:
        echo(f"FAIL configuration: {exc}")
        echo("     → fix the key named above, then run `calsync doctor` again")
        sys.exit(exc.exit_code)
    echo(f"ok   configuration: {obj.config_path} ({len(cfg.sync.users)} users)")
    checks = []
    for check in checking.doctor(cfg, config_path=obj.config_path):
        checks.append(check)
        for line in check.lines():
            echo(line)
    sys.exit(checking.exit_code(checks))


@main.command()
@click.option("--user", "users", multiple=True, help="This configured user (repeatable).")
@click.option("--all", "all_users", is_flag=True, help="Every configured user (the default).")
@click.option("--since", help="Window start: 2026-01-05 or 2026-01-05T09:00 (UTC unless an offset "
              "is given). Default: now minus [sync] lookback_days.")
@click.option("--until", help="Window end: only meetings starting before it. Default: no end.")
@click.option("--event-id", help="Only the meeting of this Google event id (exactly one --user).")
@click.option("--dry-run", is_flag=True,
              help="Print the plan; write nothing to Salesforce or the state database.")
@click.option("--overwrite-edits", is_flag=True,
              help="Put Google's values back over fields people changed in Salesforce.")
@click.option("--restore-deleted", is_flag=True,
              help="Re-create Events people deleted in Salesforce.")
@WAIT
@click.pass_obj
def resync(
    obj: Context,
    users: tuple[str, ...],
    all_users: bool,
    since: str | None,
    until: str | None,
    event_id: str | None,
    dry_run: bool,
    overwrite_edits: bool,
    restore_deleted: bool,
    wait: float,
) -> None:
    """Re-list a window from Google and make Salesforce match it again.

    Restores what calsync owns (fields nobody changed, Events missing because a write never
    landed) and deletes duplicate Events of one meeting, without touching the sync tokens; it
    reports, and leaves alone, fields people changed and Events people deleted in Salesforce
    unless --overwrite-edits / --restore-deleted say otherwise. Running it twice changes nothing
    the second time. Exit status 0 when every calendar resynced, 1 when any failed, 65 when
    Salesforce refused a record (parked for a retry). While the daemon runs, the resync is
    handed to it and waits for its answer (same output and exit status); 75 when the daemon
    does not take it up within 30 s, or another calsync process (a hand-run sync) writes the
    state database (a dry run does not need it).
    """
    from calsync.engine import resync as resync_module

    if all_users and users:
        raise click.UsageError("--all and --user exclude each other")
    if event_id is not None and len(users) != 1:
        raise click.UsageError("--event-id needs exactly one --user")
    try:
        start = resync_module.parse_moment(since) if since else None
        end = resync_module.parse_moment(until) if until else None
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if start and end and end <= start:
        raise click.UsageError("--until must be after --since")
    try:
        cfg = obj.config(secrets=False)  # the daemon has its own; read below when run here
        unknown = [u for u in users if u.lower() not in cfg.sync.users]
        if unknown:
            raise click.UsageError(f"not a configured user: {', '.join(unknown)}")
        chosen = [u.lower() for u in users] or list(cfg.sync.users)
        import datetime as dt

        from calsync.service import admin, handoff

        now = dt.datetime.now(dt.timezone.utc)
        arguments = admin.resync_arguments(
            [u.lower() for u in users], start or now - dt.timedelta(days=cfg.sync.lookback_days),
            end, event_id, overwrite_edits, restore_deleted)

        def here() -> Any:
            return _resync(admin, obj.config(), chosen, arguments, dry_run)

        if dry_run:  # writes nothing: no lock, beside the daemon too
            answer = here()
        else:
            answer = handoff.run_writer(cfg, admin.RESYNC, arguments, here, lock_name="resync",
                                        wait=wait, say=lambda line: echo(line, err=True),
                                        progress=echo)
    except CalsyncError as exc:
        _fail(exc)
        return
    for line in answer.lines:
        echo(line)
    sys.exit(answer.exit_code)


def _resync(admin: Any, cfg: Any, chosen: list[str], arguments: Any, dry_run: bool) -> Any:
    """Run the resync here with a progress bar on a terminal, one line per calendar otherwise."""
    if sys.stdout.isatty():
        with click.progressbar(length=len(chosen), label="Listing calendars",
                               item_show_func=lambda user: user) as bar:
            return admin.resync(cfg, arguments, dry_run=dry_run,
                                progress=lambda line: bar.update(1, line.split(":")[0].removeprefix("listed ")))
    return admin.resync(cfg, arguments, dry_run=dry_run, progress=echo)


@main.group()
def auth() -> None:
    """Authorise calsync to read calendars (installed-app OAuth, no domain-wide delegation)."""


@auth.command("google")
@click.argument("user")
@click.option("--no-browser", is_flag=True, help="Only print the URL; do not open a browser.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port of the one-shot server the browser returns to (0: any free port); fix it "
              "to forward it over `ssh -L PORT:localhost:PORT` from a headless host.")
@click.option("--timeout", type=click.FloatRange(min=1), default=600, show_default=True,
              help="Seconds to wait for the browser to come back (then exit 75).")
@click.pass_obj
def auth_google(obj: Context, user: str, no_browser: bool, port: int, timeout: float) -> None:
    """Run Google's consent for USER and store the refresh token for the daemon.

    Needs [google] oauth_client_file and token_dir. Prints the URL to open; the browser then
    returns to a one-shot server on this machine (localhost:PORT). The token is written with
    mode 0600 at TOKEN_DIR/USER.json: on the systemd install run it as the calsync user
    (sudo -u calsync calsync auth google USER). Exit 75 when the browser did not come back in
    time.
    """
    from calsync.calendar.google.auth import authorize_google
    from calsync.state.lock import refuse_foreign_owner

    # The flow prints the URL and then blocks waiting: it must not sit in a pipe's buffer.
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(line_buffering=True)
    try:
        cfg = obj.config(secrets=False)  # no Salesforce secret needed here
        if user.strip().lower() not in cfg.sync.users:
            echo(f"note: {user} is not in [sync] users; add it there for the daemon to sync "
                       "this calendar", err=True)
        if cfg.google.token_dir is not None:
            refuse_foreign_owner(cfg.google.token_dir / "x", "the token directory")
        path = authorize_google(cfg, user, open_browser=not no_browser, timeout=timeout, port=port)
    except CalsyncError as exc:
        _fail(exc)
        return
    echo(f"Stored the Google authorisation for {user.strip().lower()} in {path} (mode 0600).")


# The operator commands kept in their own modules (calsync/commands/); importing them adds them
# to `main`.
from calsync.commands import configuration, explain, retry, state  # noqa: E402,F401
