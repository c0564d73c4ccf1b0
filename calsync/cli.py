"""The `calsync` command line (placeholder until the commands land)."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """calsync: log Google Calendar meetings as Salesforce Events."""
