"""Google credentials from their files: the service account's key, or an installed app's token.

`load_service_account` parses the key file once for a process (clients.py keeps the result and
derives each user's delegated credentials with `with_subject`, reference A9);
`installed_app_credentials` reads the token `calsync auth google USER` stored (auth.py) under
`user_token_path`. The secrets they hold (private key, refresh token, client secret) are
registered with the log redaction (logs.py) as soon as they are read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account

from calsync.core import logs
from calsync.core.errors import AuthError, ConfigError


def load_service_account(path: str | Path, scopes: tuple[str, ...]) -> Any:
    """Parse a service-account key file (the costly part: ~50 ms of RSA key loading) into
    credentials without a subject; the key file's own token_uri is honoured (reference A9)."""
    try:
        creds = service_account.Credentials.from_service_account_file(str(path), scopes=scopes)
    except FileNotFoundError as exc:
        raise ConfigError(f"google.service_account_file: {path}: no such file") from exc
    except (ValueError, KeyError) as exc:
        raise ConfigError(
            f"google.service_account_file: {path}: not a service-account key file ({exc})"
        ) from exc
    _register_key(path)
    return creds


def service_account_credentials(path: str | Path, user: str, scopes: tuple[str, ...]) -> Any:
    """Domain-wide delegation for one user (parses the key: prefer `calendar_factory`)."""
    return load_service_account(path, scopes).with_subject(user)


def _register_key(path: str | Path) -> None:
    try:
        info = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return
    for name in ("private_key", "private_key_id"):
        if isinstance(info.get(name), str):
            logs.register_secret(info[name])


def user_token_path(token_dir: str | Path, user: str) -> Path:
    return Path(token_dir) / f"{user}.json"


def installed_app_credentials(token_dir: str | Path, user: str, scopes: tuple[str, ...]) -> Any:
    """Credentials stored by `calsync auth google USER` (installed-app flow)."""
    path = user_token_path(token_dir, user)
    if not path.exists():
        raise AuthError(f"no Google authorisation stored for {user}: run `calsync auth google {user}`")
    try:
        creds = user_credentials.Credentials.from_authorized_user_file(str(path), scopes=scopes)
        # google-auth always puts Google's own token URL here; the refresh must go where the
        # client-secrets file said (its token_uri, stored with the token; reference A9).
        token_uri = json.loads(path.read_text()).get("token_uri")
    except (ValueError, KeyError) as exc:
        raise AuthError(f"{path}: unreadable stored Google authorisation ({exc})") from exc
    if isinstance(token_uri, str) and token_uri:
        creds = creds.with_token_uri(token_uri)
    for secret in (creds.refresh_token, getattr(creds, "client_secret", None)):
        if secret:
            logs.register_secret(secret)
    return creds
