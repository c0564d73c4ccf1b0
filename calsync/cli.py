"""The `calsync` command line: each subcommand parses, calls its owner, maps errors to exit codes.

Exit codes (sysexits.h, see errors.py): 0 everything synced; 1 a calendar failed; 64 usage;
74 state database unusable; 75 temporary failure (retry later); 77 credentials refused;
78 configuration wrong. Only this module prints; everything else logs to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from calsync import logs
from calsync.errors import EXIT_FAILURE, EXIT_OK, CalsyncError

DEFAULT_CONFIG = "/etc/calsync/calsync.toml"


class Context:
    """What the group options set up for the subcommands."""

    def __init__(self, config_path: str, log_format: str | None, log_level: str | None) -> None:
        self.config_path = config_path
        self.log_format = log_format
        self.log_level = log_level

    def config(self) -> Any:
        from calsync import config

        cfg = config.load(self.config_path)
        logs.setup(self.log_format or cfg.log.format, self.log_level or cfg.log.level)
        return cfg


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "-c",
    "config_path",
    default=DEFAULT_CONFIG,
    envvar="CALSYNC_CONFIG",
    show_default=True,
    help="TOML configuration file (also $CALSYNC_CONFIG).",
)
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Override [log] format.")
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Override [log] level."
)
@click.version_option(package_name="calsync")
@click.pass_context
def main(ctx: click.Context, config_path: str, log_format: str | None, log_level: str | None) -> None:
    """calsync: log Google Calendar meetings with Salesforce Contacts and Leads as Salesforce Events."""
    logs.setup(log_format or "text", log_level or "info")
    ctx.obj = Context(config_path, log_format, log_level)


def _fail(exc: CalsyncError) -> None:
    click.echo(f"calsync: {logs.redact(str(exc))}", err=True)
    sys.exit(exc.exit_code)


@main.command()
@click.option("--user", "users", multiple=True, help="Only this configured user (repeatable).")
@click.pass_obj
def sync(obj: Context, users: tuple[str, ...]) -> None:
    """Run one sync cycle over every configured calendar, then exit.

    Exit status 0 when every calendar synced, 1 when any failed.
    """
    from calsync.runtime import open_cycle

    try:
        cfg = obj.config()
        unknown = [u for u in users if u.lower() not in cfg.sync.users]
        if unknown:
            raise click.UsageError(f"not a configured user: {', '.join(unknown)}")
        with open_cycle(cfg) as cycle:
            result = cycle.run([u.lower() for u in users] or None)
    except CalsyncError as exc:
        _fail(exc)
        return
    for outcome in result.calendars.values():
        status = "ok" if outcome.ok else f"FAILED: {outcome.error}"
        click.echo(
            f"{outcome.user}: created {outcome.created}, updated {outcome.updated}, "
            f"deleted {outcome.deleted}, failed {outcome.failed} "
            f"({'full' if outcome.full_sync else 'incremental'}, {outcome.google_calls} Google calls)"
            f" {status}"
        )
    click.echo(f"Salesforce API calls: {result.salesforce_calls}")
    sys.exit(EXIT_OK if result.ok else EXIT_FAILURE)


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
        code = run_sandbox(Path(directory), google_port, salesforce_port, serve=serve, echo=click.echo)
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
@click.pass_obj
def run(obj: Context, interval_seconds: float | None) -> None:
    """Run the daemon: sync every calendar about every [sync] interval_minutes until stopped.

    SIGTERM or SIGINT stops it (exit status 0), SIGHUP reloads the configuration. Under systemd
    (Type=notify) it reports readiness, status and watchdog pings.
    """
    import datetime as dt
    import os

    from calsync.daemon import Daemon

    override = dt.timedelta(seconds=interval_seconds) if interval_seconds else None
    daemon = Daemon(obj.config, interval_override=override)
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
