"""The `calsync` command group: its options, the context its subcommands share, and how they print.

Every subcommand (cli.py and the modules beside this one) adds itself to `main`; `echo` is how
all of them print (redacted, control characters escaped) and `fail` how they exit on an error.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from calsync import __version__
from calsync.core import logs
from calsync.core.errors import CalsyncError

DEFAULT_CONFIG = "/etc/calsync/calsync.toml"


class Context:
    """What the group options set up for the subcommands."""

    def __init__(self, config_path: str, log_format: str | None, log_level: str | None) -> None:
        self.config_path = config_path
        self.log_format = log_format
        self.log_level = log_level

    def config(self, *, secrets: bool = True) -> Any:
        """The configuration, logging set up from it. `secrets=False` for commands that contact
        neither Google nor Salesforce: a secret only the service can read is then no error."""
        from calsync.core import config

        cfg = config.load(self.config_path, secrets=secrets)
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
@click.version_option(version=__version__, prog_name="calsync")
@click.pass_context
def main(ctx: click.Context, config_path: str, log_format: str | None, log_level: str | None) -> None:
    """calsync: log Google Calendar meetings with Salesforce Contacts and Leads as Salesforce Events."""
    logs.setup(log_format or "text", log_level or "info")
    ctx.obj = Context(config_path, log_format, log_level)


def echo(text: str = "", *, err: bool = False) -> None:
    """Print one line, redacted like every log line, its control characters escaped
    (`logs.printable`: a subject, a display name or an error body never reaches the terminal
    raw): whatever calsync prints passes here, one line at a time."""
    click.echo(logs.printable(logs.redact(text)), err=err)


WAIT = click.option(
    "--wait",
    type=click.FloatRange(min=0, max=86400),
    default=0,
    show_default=True,
    help="Seconds to wait while another calsync process (the daemon, another sync) writes the "
    "state database; then, or at once by default, exit 75.",
)


def fail(exc: CalsyncError) -> None:
    echo(f"calsync: {exc}", err=True)
    sys.exit(exc.exit_code)
