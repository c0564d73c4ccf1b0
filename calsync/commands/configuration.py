"""`calsync check-config`: the configuration and the files it names, checked without any network."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from calsync.commands.group import Context, echo, main
from calsync.commands.group import fail as _fail
from calsync.core.errors import CalsyncError, ConfigError


@main.command("check-config")
@click.pass_obj
def check_config(obj: Context) -> None:
    """Load the configuration and its credentials and read every file it names; no network.

    What `systemctl reload calsync` runs before it signals the daemon (ExecReload=): a broken
    configuration makes the reload fail, visibly, and the daemon keeps the one it runs. Exit
    status 0, or 78 naming the key. Warns (exit 0) about a secret in a configuration file
    others can read and a listener bound to all addresses.
    """
    from calsync.commands.doctor import config_warnings

    try:
        cfg = obj.config()
        files = {
            "google.service_account_file": cfg.google.service_account_file,
            "google.oauth_client_file": cfg.google.oauth_client_file,
            "salesforce.private_key_file": cfg.salesforce.private_key_file,
            "salesforce.ca_bundle": cfg.salesforce.ca_bundle,
        }
        for key, path in files.items():
            if path is None:
                continue
            try:
                Path(path).read_bytes()
            except OSError as exc:
                raise ConfigError(f"{key}: cannot read {path}: {exc.strerror}") from exc
    except CalsyncError as exc:
        _fail(exc)
        return
    for warning in config_warnings(cfg, obj.config_path):
        for line in warning.lines():
            echo(line, err=True)
    named = sum(1 for p in files.values() if p is not None)
    echo(f"ok: {obj.config_path}: {len(cfg.sync.users)} users, salesforce auth = {cfg.salesforce.auth}, "
         f"{named} file{'s' if named != 1 else ''} readable")
    sys.exit(0)
