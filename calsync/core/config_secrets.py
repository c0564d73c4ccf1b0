"""Salesforce secrets: the `Secret` value that never shows, and where each one comes from.

A secret key of [salesforce] (access_token, password, client_secret, security_token) is read
from the environment (CALSYNC_SALESFORCE_*), else from the systemd credential of the same name
(salesforce_* in the credentials directory, `credentials.py`), else from the file: the
environment wins, then the credential, then the file. The value is held in a `Secret`, whose
repr never shows it; `config.parse` registers each with `calsync.core.logs` so no log line
shows it either.

The password of a PostgreSQL state ([state] url) is never read from the file (the URL is shown
and logged): it comes from CALSYNC_STATE_PASSWORD, else the credential `state_password`, else
libpq finds it itself (PGPASSFILE or ~/.pgpass, or none with peer authentication).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from calsync.core import credentials
from calsync.core.config_table import Table


@dataclass(frozen=True, repr=False)
class Secret:
    """A credential value that never shows in repr(), str() or f-strings; `.reveal()` gives it."""

    _value: str

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


# Secret keys: environment variable and systemd credential name (systemd.exec(5),
# LoadCredential=/SetCredential=, read from $CREDENTIALS_DIRECTORY).
SECRET_SOURCES = {
    "access_token": ("CALSYNC_SALESFORCE_ACCESS_TOKEN", "salesforce_access_token"),
    "password": ("CALSYNC_SALESFORCE_PASSWORD", "salesforce_password"),
    "client_secret": ("CALSYNC_SALESFORCE_CLIENT_SECRET", "salesforce_client_secret"),
    "security_token": ("CALSYNC_SALESFORCE_SECURITY_TOKEN", "salesforce_security_token"),
}


def resolve_secret(t: Table, key: str, environ: Mapping[str, str], required: bool) -> Secret | None:
    """The environment variable, else the systemd credential, else the file's value."""
    variable, credential = SECRET_SOURCES[key]
    from_file = t.string(key, None)
    if environ.get(variable):
        return Secret(environ[variable])
    directory = credentials.directory(environ)
    if directory is not None:
        candidate = directory / credential
        if candidate.exists():
            try:
                value = candidate.read_text(encoding="utf-8").rstrip("\r\n")
            except (OSError, UnicodeDecodeError) as exc:
                reason = getattr(exc, "strerror", None) or str(exc)
                message = f"cannot read systemd credential {candidate}: {reason}"
                raise t.error(key, message) from None
            if not value:
                raise t.error(key, f"systemd credential {candidate} is empty")
            return Secret(value)
    if from_file is not None:
        return Secret(from_file)
    if required and t.secrets:
        raise t.error(
            key,
            f"required key missing (or set the environment variable {variable}, or the systemd "
            f"credential {credential})",
        )
    return None


# The PostgreSQL state's password: environment variable and systemd credential name.
STATE_PASSWORD = ("CALSYNC_STATE_PASSWORD", "state_password")


def state_password(t: Table, environ: Mapping[str, str]) -> Secret | None:
    """The environment variable, else the systemd credential, else None (libpq's own means)."""
    variable, credential = STATE_PASSWORD
    if environ.get(variable):
        return Secret(environ[variable])
    directory = credentials.directory(environ)
    if directory is None or not (directory / credential).exists():
        return None
    candidate = directory / credential
    try:
        value = candidate.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise t.error("url", f"cannot read systemd credential {candidate}: {reason}") from None
    if not value:
        raise t.error("url", f"systemd credential {candidate} is empty")
    return Secret(value)
