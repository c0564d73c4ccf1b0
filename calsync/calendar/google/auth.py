"""`calsync auth google USER`: the installed-app OAuth flow, for teams without domain-wide delegation.

With [google] oauth_client_file (a Desktop-app client-secrets JSON) and token_dir, each user
authorises calsync once: google-auth-oauthlib's `InstalledAppFlow` runs the authorization-code
flow with PKCE and a loopback redirect (reference A9), then the refresh token is stored at
`credentials.user_token_path(token_dir, USER)`, where the daemon's `installed_app_credentials` reads
it. The file is written atomically (temporary file, fsync, rename) with mode 0600 in a 0700
directory: it is a long-lived credential.

Before storing, one events.list call on `primary` checks that the consent was given by USER (the
primary calendar's `summary` is its owner's address), so a person signed in to the wrong Google
account in their browser cannot file their calendar under someone else's name.

Every HTTP exchange has a timeout (`google.timeout_seconds`): the token exchange, the probe, and
the browser's request to the one-shot server (a connection that stays silent is dropped).

oauthlib refuses plain-http token endpoints; the sandbox's emulator speaks http on loopback, so
OAUTHLIB_INSECURE_TRANSPORT=1 is set for this process only when the token_uri is such a URL.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from calsync.core import atomic, logs
from calsync.core.config import Config
from calsync.core.errors import AuthError, ConfigError, TransientError

DEFAULT_TIMEOUT = 600  # seconds to wait for the browser to come back to the loopback server
PROMPT = (
    "Open this URL in a browser, sign in as {user} and allow calsync to read the calendar:\n"
    "{{url}}\n"
    "Waiting for Google to redirect back to this machine..."
)
SUCCESS = "calsync is authorised. You can close this window and return to the terminal."


def is_loopback_http(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _client_secrets(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"google.oauth_client_file: {path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"google.oauth_client_file: {path}: not a client-secrets JSON ({exc})") from None
    section = data.get("installed") or data.get("web") if isinstance(data, dict) else None
    if not isinstance(section, dict) or not section.get("client_id") or not section.get("token_uri"):
        raise ConfigError(
            f"google.oauth_client_file: {path}: not an OAuth client-secrets file (download the "
            "JSON of a Desktop app OAuth client from the Google Cloud console)"
        )
    return section


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Every socket made meanwhile times out after `seconds` of silence: the one-shot server's
    connection from the browser (google-auth-oauthlib's wsgiref server reads it with no
    timeout, so a client that connects and sends nothing would hold the command forever) and
    any HTTP request that does not set its own timeout."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def save_user_token(path: Path, content: str) -> None:
    """Write `content` to `path` atomically, mode 0600, in a directory with mode 0700."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    atomic.write(path, content.encode(), 0o600)


def authorize_google(
    config: Config,
    user: str,
    *,
    open_browser: bool = True,
    timeout: float | None = DEFAULT_TIMEOUT,
    port: int = 0,
) -> Path:
    """Run the installed-app flow for `user` and store the refresh token; returns its path.

    The authorisation URL is printed on stdout by the flow (the CLI line-buffers stdout so it
    shows at once). `port` is the loopback server's (0: any free one); a fixed port can be
    forwarded with `ssh -L PORT:localhost:PORT` when the browser runs on another machine.
    Raises ConfigError without oauth_client_file/token_dir, AuthError when Google refuses or
    the wrong account consented, TransientError (exit 75) when Google cannot be reached or the
    browser did not come back within `timeout`.
    """
    from google.auth.exceptions import GoogleAuthError
    from google_auth_oauthlib.flow import InstalledAppFlow, WSGITimeoutError
    from oauthlib.oauth2.rfc6749.errors import OAuth2Error
    from requests import RequestException

    from calsync.calendar.google.api import GoogleCalendar
    from calsync.calendar.google.credentials import user_token_path

    google = config.google
    if google.oauth_client_file is None or google.token_dir is None:
        raise ConfigError(
            "google: `calsync auth google` needs [google] oauth_client_file and token_dir (the "
            "installed-app flow); this configuration uses service_account_file, whose domain-wide "
            "delegation needs no per-user authorisation"
        )
    user = user.strip().lower()
    secrets = _client_secrets(google.oauth_client_file)
    if is_loopback_http(str(secrets["token_uri"])):
        # oauthlib insists on https; a loopback emulator is not reachable by anyone else.
        os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    logs.register_secret(secrets.get("client_secret"))

    class TimedFlow(InstalledAppFlow):  # type: ignore[misc,valid-type]
        """The token exchange with a timeout (requests_oauthlib sends none by default)."""

        def fetch_token(self, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", float(google.timeout_seconds))
            return super().fetch_token(**kwargs)

    try:
        flow = TimedFlow.from_client_secrets_file(
            str(google.oauth_client_file), scopes=list(google.scopes)
        )
        with _socket_timeout(float(google.timeout_seconds)):
            credentials = flow.run_local_server(
                host="localhost",
                port=port,
                open_browser=open_browser,
                authorization_prompt_message=PROMPT.format(user=user),
                success_message=SUCCESS,
                timeout_seconds=timeout,
                login_hint=user,
                # A refresh token every time, even on a second consent (reference A9).
                access_type="offline",
                prompt="consent",
            )
    except ValueError as exc:
        raise ConfigError(f"google.oauth_client_file: {exc}") from exc
    except WSGITimeoutError as exc:
        # Nothing was refused: nobody came back in time. Temporary (EX_TEMPFAIL): run it again.
        raise TransientError(
            f"no answer from the browser within {timeout or 0:.0f} s; nothing stored, run the "
            "command again"
        ) from exc
    except OAuth2Error as exc:
        raise AuthError(
            f"Google refused the authorisation: {exc.error}"
            + (f" ({exc.description})" if exc.description else "")
        ) from exc
    except OSError as exc:  # requests' errors too (RequestException is an OSError)
        if isinstance(exc, RequestException) or exc.errno != errno.EADDRINUSE:
            raise TransientError(f"cannot complete the authorisation: {type(exc).__name__}: {exc}") from exc
        raise TransientError(f"port {port} is in use on this machine: choose another --port") from exc
    except GoogleAuthError as exc:
        raise AuthError(f"Google refused the authorisation: {exc}") from exc
    if not credentials.refresh_token:
        raise AuthError("Google gave no refresh token; revoke calsync's access in the Google "
                        "account's security settings and run the command again")
    logs.register_secret(credentials.refresh_token)
    logs.register_secret(credentials.token)

    seen = GoogleCalendar(
        user, credentials, api_endpoint=google.api_endpoint, timeout=google.timeout_seconds
    ).probe()
    if seen is not None and seen != user:
        raise AuthError(
            f"the consent was given as {seen}, not {user}: nothing stored; run the command again "
            f"and sign in as {user}"
        )
    path = user_token_path(google.token_dir, user)
    save_user_token(path, credentials.to_json())
    return path
