"""Where calsync finds its credentials: as the systemd service does, also when an admin runs it.

The service gets its secrets from systemd: each `LoadCredential=NAME:PATH` line of the unit is
copied at start into `$CREDENTIALS_DIRECTORY` (/run/credentials/calsync.service), readable by
the service alone (systemd.exec(5), "Credentials"). An admin's shell on the same host has no
such variable, and that directory belongs to the running service. So when
`$CREDENTIALS_DIRECTORY` is unset, calsync reads the credential store the unit loads them from,
`/etc/credstore/calsync` (`$CALSYNC_CREDENTIAL_STORE` names another one): the same file names,
the same contents. The install (systemd/README.md) makes that store readable by the `calsync`
system user, so `sudo -u calsync calsync doctor` finds exactly what the daemon finds.

Settings that name a file may start with `%d/`, systemd's own specifier for the credentials
directory (systemd.unit(5), "Specifiers"): `service_account_file = "%d/google_service_account.json"`
is `$CREDENTIALS_DIRECTORY/google_service_account.json` in the service and
`/etc/credstore/calsync/google_service_account.json` in an admin's shell.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

STORE = "/etc/credstore/calsync"  # where the unit's LoadCredential= lines read from
STORE_ENV = "CALSYNC_CREDENTIAL_STORE"
SPECIFIER = "%d/"


def directory(environ: Mapping[str, str] | None = None) -> Path | None:
    """The credentials directory: `$CREDENTIALS_DIRECTORY`, else the credential store when it
    is a directory this process can read, else None."""
    env = os.environ if environ is None else environ
    given = env.get("CREDENTIALS_DIRECTORY")
    if given:
        return Path(given)
    store = Path(env.get(STORE_ENV) or STORE)
    if store.is_dir() and os.access(store, os.R_OK | os.X_OK):
        return store
    return None


def where(environ: Mapping[str, str] | None = None) -> str:
    """Where calsync looked, for messages: "$CREDENTIALS_DIRECTORY is unset and ... ". """
    env = os.environ if environ is None else environ
    store = env.get(STORE_ENV) or STORE
    if Path(store).is_dir():
        return (f"$CREDENTIALS_DIRECTORY is unset and this user cannot read the credential "
                f"store {store} (run it as the calsync user: sudo -u calsync calsync ...)")
    return f"$CREDENTIALS_DIRECTORY is unset and there is no credential store {store}"


def uses_specifier(value: str) -> bool:
    return value.startswith(SPECIFIER)


def resolve(value: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """`%d/NAME` → the credentials directory / NAME (None when there is no directory)."""
    found = directory(environ)
    return found / value[len(SPECIFIER):] if found is not None else None
