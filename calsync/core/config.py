"""calsync's configuration: one TOML file → frozen dataclasses, refused whole if anything is off.

`load(path)` reads the file with tomllib; `parse(data)` checks a decoded table, section by
section (the `_sync`, `_state`, `_google`, `_salesforce`, `_log` and `_metrics` checks below).
Unknown keys at any level, missing required keys, wrong types and bad values raise ONE
`ConfigError` naming the key as a dotted path, e.g. ``/etc/calsync/calsync.toml:
sync.lookback_days: expected an integer, got string '30'``. Files named in the configuration
(service-account key, CA bundle, ...) are not opened here; `calsync doctor` and the adapters do
that.

Salesforce secrets may come from the file, from the environment (CALSYNC_SALESFORCE_*) or from
systemd credentials (salesforce_* in the credentials directory, `credentials.py`: the service's
$CREDENTIALS_DIRECTORY, or the credential store for an admin); the environment wins, then the
credential, then the file. Each is held in a `Secret`, whose repr never shows the value, and is
registered with `calsync.core.logs` so no log line shows it either. A file setting may start with
`%d/` (systemd's specifier for the credentials directory). `load(..., secrets=False)` is for the
commands that need no secret (`status`, `explain` without `--live`): a missing secret is then
None and an unresolvable `%d/` path stays as written.

This module is the configuration's public face: `from calsync.core.config import Config, load`.
Its parts live beside it: the dataclasses and their bounds in `config_model.py`, the typed
checks of one table in `config_table.py`, where each secret comes from in `config_secrets.py`,
the commented example in `config_example.py`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from calsync.core import logs
from calsync.core.config_example import example_toml
from calsync.core.config_model import (
    CONCURRENCY,
    DAILY_CALL_BUDGET,
    DEFAULT_API_VERSION,
    DEFAULT_LOGIN_URL,
    DEFAULT_SCOPES,
    DIRECTORY_REFRESH_MINUTES,
    GOOGLE_REQUEST_SHARE,
    GOOGLE_REQUESTS_PER_MINUTE,
    GOOGLE_REQUESTS_PER_MINUTE_PER_USER,
    GOOGLE_TIMEOUT_SECONDS,
    INTERVAL_MINUTES,
    LOOKBACK_DAYS,
    PUSH_CHANNEL_HOURS,
    SALESFORCE_CONNECT_TIMEOUT_SECONDS,
    SALESFORCE_READ_TIMEOUT_SECONDS,
    Config,
    GoogleConfig,
    LogConfig,
    LogFormat,
    LogLevel,
    MetricsConfig,
    PrivateEvents,
    SalesforceAuth,
    SalesforceConfig,
    StateConfig,
    SyncConfig,
    domains_of,
)
from calsync.core.config_secrets import STATE_PASSWORD, Secret, resolve_secret, state_password
from calsync.core.config_table import REQUIRED, Table, describe_value, dotted
from calsync.core.errors import ConfigError

__all__ = [
    "CONCURRENCY",
    "DAILY_CALL_BUDGET",
    "DEFAULT_API_VERSION",
    "DEFAULT_LOGIN_URL",
    "DEFAULT_SCOPES",
    "DIRECTORY_REFRESH_MINUTES",
    "GOOGLE_REQUEST_SHARE",
    "GOOGLE_REQUESTS_PER_MINUTE",
    "GOOGLE_REQUESTS_PER_MINUTE_PER_USER",
    "GOOGLE_TIMEOUT_SECONDS",
    "INTERVAL_MINUTES",
    "LOOKBACK_DAYS",
    "PUSH_CHANNEL_HOURS",
    "SALESFORCE_CONNECT_TIMEOUT_SECONDS",
    "SALESFORCE_READ_TIMEOUT_SECONDS",
    "Config",
    "GoogleConfig",
    "LogConfig",
    "LogFormat",
    "LogLevel",
    "MetricsConfig",
    "PrivateEvents",
    "SalesforceAuth",
    "SalesforceConfig",
    "Secret",
    "StateConfig",
    "SyncConfig",
    "example_toml",
    "load",
    "parse",
]


def load(
    path: str | Path, environ: Mapping[str, str] | None = None, *, secrets: bool = True
) -> Config:
    """Read and check the TOML file at `path`; relative paths inside resolve against its folder.

    `secrets=False`: for commands that never contact Google or Salesforce (see the docstring).
    """
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{source}: configuration file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory, not a configuration file") from None
    except PermissionError:
        raise ConfigError(f"{source}: cannot read configuration file: permission denied") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(f"{source}: cannot read configuration file: {reason}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: not UTF-8 ({exc.reason})") from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)".
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    return parse(data, source, environ, base_dir=path.absolute().parent, secrets=secrets)


def parse(
    data: Mapping[str, Any],
    source: str = "<config>",
    environ: Mapping[str, str] | None = None,
    *,
    base_dir: Path | None = None,
    secrets: bool = True,
) -> Config:
    """Check a decoded TOML table. `base_dir` (default: the working directory) anchors relative
    paths; `environ` (default: os.environ) supplies CALSYNC_SALESFORCE_* and CREDENTIALS_DIRECTORY.
    """
    env = os.environ if environ is None else environ
    base = Path.cwd() if base_dir is None else base_dir
    root = Table(source, "", data, _TOP_KEYS, env=env, secrets=secrets)
    config = Config(
        sync=_sync(root.table("sync", _SYNC_KEYS)),
        state=_state(root.table("state", _STATE_KEYS), base),
        google=_google(root.table("google", _GOOGLE_KEYS), base),
        salesforce=_salesforce(root.table("salesforce", _SALESFORCE_KEYS), base, env),
        log=_log(root.table("log", _LOG_KEYS)),
        metrics=_metrics(root.table("metrics", _METRICS_KEYS), base),
    )
    for secret in (
        config.salesforce.access_token,
        config.salesforce.client_secret,
        config.salesforce.password,
        config.salesforce.security_token,
        config.state.password,
    ):
        logs.register_secret(secret)
    return config


_SYNC_KEYS = (
    "users",
    "internal_domains",
    "exclude",
    "lookback_days",
    "interval_minutes",
    "private_events",
    "activity_datetime_field",
    "user_map",
    "shared_activities",
    "concurrency",
    "directory_refresh_minutes",
)
_STATE_KEYS = ("path", "url")
_GOOGLE_KEYS = (
    "service_account_file", "oauth_client_file", "token_dir", "api_endpoint", "scopes",
    "timeout_seconds", "requests_per_minute", "requests_per_minute_per_user", "request_share",
    "push_url", "push_listen", "push_channel_hours",
)
_SALESFORCE_KEYS = (
    "instance_url",
    "auth",
    "access_token",
    "login_url",
    "consumer_key",
    "private_key_file",
    "username",
    "client_id",
    "client_secret",
    "password",
    "security_token",
    "ca_bundle",
    "api_version",
    "external_id_field",
    "daily_call_budget",
    "connect_timeout_seconds",
    "read_timeout_seconds",
)
_LOG_KEYS = ("format", "level")
_METRICS_KEYS = ("textfile", "listen")
_TOP_KEYS = ("sync", "state", "google", "salesforce", "log", "metrics")

# Which [salesforce] keys each auth mode reads; the others are refused so a half-switched
# configuration is caught at load rather than silently ignored.
_AUTH_KEYS: dict[str, frozenset[str]] = {
    "access_token": frozenset({"access_token"}),
    "jwt": frozenset({"login_url", "consumer_key", "private_key_file", "username"}),
    "password": frozenset(
        {"login_url", "client_id", "client_secret", "username", "password", "security_token"}
    ),
}

_LABEL = r"[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?"  # one DNS label, lowercase
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")
_EMAIL = re.compile(rf"^[^@\s\"'<>(),;:\[\]]+@{_LABEL}(?:\.{_LABEL})+$")
_USER_ID = re.compile(r"^005[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$")  # 15 or 18 chars (reference B2)
_NAME_PART = r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)"  # no "__", no trailing "_"
_STANDARD_FIELD = re.compile(rf"^{_NAME_PART}$")
_CUSTOM_FIELD = re.compile(rf"^(?:{_NAME_PART}__)?{_NAME_PART}__[cC]$")  # [namespace__]Name__c
_API_VERSION = re.compile(r"^\d+\.\d$")


def _sync(t: Table) -> SyncConfig:
    raw_users = t.strings("users", REQUIRED)
    if not raw_users:
        raise t.error("users", "must list at least one address")
    users: list[str] = []
    for index, raw in enumerate(raw_users):
        address = raw.lower()
        if not _EMAIL.match(address):
            raise t.error(f"users[{index}]", f"{raw!r} does not look like an email address")
        if address in users:
            raise t.error(f"users[{index}]", f"duplicate address {address!r}")
        users.append(address)

    domains: list[str] = []
    for index, raw in enumerate(t.strings("internal_domains", [])):
        domain = raw.lower()
        if not _DOMAIN.match(domain):
            raise t.error(
                f"internal_domains[{index}]",
                f"{raw!r} does not look like a domain (e.g. 'acme.test')",
            )
        if domain not in domains:
            domains.append(domain)

    exclude = tuple(pattern.lower() for pattern in t.strings("exclude", []))

    field_name = t.string("activity_datetime_field", None)
    if field_name is not None and not (
        _STANDARD_FIELD.match(field_name) or _CUSTOM_FIELD.match(field_name)
    ):
        raise t.error(
            "activity_datetime_field",
            f"{field_name!r} is not a Salesforce field API name (custom fields end with __c, "
            "e.g. 'Calsync_Activity_DateTime__c')",
        )

    return SyncConfig(
        users=tuple(users),
        internal_domains=tuple(domains) or domains_of(tuple(users)),
        exclude=exclude,
        lookback_days=t.bounded("lookback_days", LOOKBACK_DAYS),
        interval_minutes=t.bounded("interval_minutes", INTERVAL_MINUTES),
        private_events=t.choice(  # type: ignore[arg-type]
            "private_events", ("skip", "sync"), "skip"
        ),
        activity_datetime_field=field_name,
        user_map=_user_map(t, users),
        shared_activities=t.boolean("shared_activities", False),
        concurrency=t.bounded("concurrency", CONCURRENCY),
        directory_refresh_minutes=t.bounded("directory_refresh_minutes", DIRECTORY_REFRESH_MINUTES),
    )


def _user_map(t: Table, users: list[str]) -> MappingProxyType[str, str]:
    raw = t.data.get("user_map", {})
    if not isinstance(raw, dict):
        raise t.error("user_map", f"expected a table, got {describe_value(raw)}")
    where = dotted(t.path, "user_map")
    result: dict[str, str] = {}
    for key, value in raw.items():
        entry = Table(t.source, where, {key: value}, (key,))
        address = key.strip().lower()
        if address not in users:
            raise entry.error(key, "not one of sync.users")
        if address in result:
            raise entry.error(key, f"duplicate address {address!r}")
        target = entry.string(key, REQUIRED)
        if not (_USER_ID.match(target) or _EMAIL.match(target.lower())):
            raise entry.error(
                key,
                f"expected a Salesforce username (user@example.com) or a User Id (005..., 15 or 18 "
                f"characters), got {target!r}",
            )
        result[address] = target
    return MappingProxyType(result)


def _state(t: Table, base: Path) -> StateConfig:
    """[state]: `path` (a SQLite file) or `url` (a PostgreSQL database), exactly one."""
    if "url" not in t:
        return StateConfig(path=t.path_value("path", base, REQUIRED))
    if "path" in t:
        raise t.error("url", "set either path (a SQLite file) or url (PostgreSQL), not both")
    url = t.string("url")
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise t.error("url", f"expected a postgresql:// URL (a libpq URI), got {parts.scheme or url!r}://...")
    if parts.password is not None or re.search(r"(^|[?&])password=", parts.query):
        # The URL is logged and shown (status, doctor): a password in it would be too.
        raise t.error(
            "url",
            "holds a password, which never goes in the configuration: put it in the systemd"
            f" credential {STATE_PASSWORD[1]} (or the environment variable {STATE_PASSWORD[0]}),"
            " or let libpq find it (PGPASSFILE, a ~/.pgpass file, peer authentication over a"
            " unix socket); then remove it from the URL",
        )
    return StateConfig(url=url, password=state_password(t, t.env))


def _google(t: Table, base: Path) -> GoogleConfig:
    service_account = t.path_value("service_account_file", base)
    oauth_client = t.path_value("oauth_client_file", base)
    token_dir = t.path_value("token_dir", base)
    if service_account is not None:
        for other in ("oauth_client_file", "token_dir"):
            if other in t:
                raise t.error(
                    other,
                    "not allowed with service_account_file: use either domain-wide "
                    "delegation (service_account_file) or the installed-app flow "
                    "(oauth_client_file + token_dir)",
                )
    elif oauth_client is None and token_dir is None:
        raise t.error(
            "service_account_file",
            "required key missing "
            "(or set oauth_client_file + token_dir for the installed-app flow)",
        )
    elif oauth_client is None:
        raise t.error("oauth_client_file", "required key missing (token_dir is set)")
    elif token_dir is None:
        raise t.error("token_dir", "required key missing (oauth_client_file is set)")

    scopes = t.strings("scopes", list(DEFAULT_SCOPES))
    if not scopes:
        raise t.error("scopes", "must list at least one scope")
    push_url = t.url("push_url")
    if push_url is not None and (urlsplit(push_url).query or urlsplit(push_url).fragment):
        raise t.error("push_url", f"expected a URL without ?query or #fragment, got {push_url!r}")
    push_listen = _listen_address(t, "push_listen")
    if (push_url is None) != (push_listen is None):
        missing, given = ("push_listen", "push_url") if push_listen is None else ("push_url", "push_listen")
        raise t.error(missing, f"required key missing ({given} is set: push notifications need both)")
    return GoogleConfig(
        service_account_file=service_account,
        oauth_client_file=oauth_client,
        token_dir=token_dir,
        api_endpoint=t.url("api_endpoint"),
        scopes=tuple(scopes),
        timeout_seconds=t.bounded("timeout_seconds", GOOGLE_TIMEOUT_SECONDS, fraction=True),
        requests_per_minute=t.bounded("requests_per_minute", GOOGLE_REQUESTS_PER_MINUTE),
        requests_per_minute_per_user=t.bounded(
            "requests_per_minute_per_user", GOOGLE_REQUESTS_PER_MINUTE_PER_USER
        ),
        request_share=float(t.bounded("request_share", GOOGLE_REQUEST_SHARE, fraction=True)),  # type: ignore[arg-type]
        push_url=push_url,
        push_listen=push_listen,
        push_channel_hours=t.bounded("push_channel_hours", PUSH_CHANNEL_HOURS),
    )


def _listen_address(t: Table, key: str) -> tuple[str, int] | None:
    """"host:port" (an IPv6 host in brackets) → (host, port); None when absent."""
    value = t.string(key, None)
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise t.error(key, f'expected "host:port" (e.g. "127.0.0.1:8790"), got {value!r}')
    return host, int(port)


def _salesforce(t: Table, base: Path, environ: Mapping[str, str]) -> SalesforceConfig:
    instance_url = t.url("instance_url", REQUIRED, base_only=True)
    auth = t.choice("auth", ("access_token", "jwt", "password"), "access_token")
    used = _AUTH_KEYS[auth]
    for key in sorted(set().union(*_AUTH_KEYS.values()) - used):
        if key in t:
            modes = " or ".join(repr(m) for m, keys in _AUTH_KEYS.items() if key in keys)
            raise t.error(key, f"only used with auth = {modes} (auth is {auth!r})")

    def secret(key: str, required: bool) -> Secret | None:
        return resolve_secret(t, key, environ, required) if key in used else None

    def required(key: str) -> str | None:
        return t.string(key, REQUIRED) if key in used else None

    api_version = t.string("api_version", DEFAULT_API_VERSION, hint=' like "59.0"')
    if not _API_VERSION.match(api_version):
        raise t.error("api_version", f'expected a version like "59.0", got {api_version!r}')

    external_id = t.string("external_id_field", None)
    if external_id is not None and not _CUSTOM_FIELD.match(external_id):
        raise t.error(
            "external_id_field",
            f"{external_id!r} is not a custom field API name (External ID fields end with __c, "
            "e.g. 'Calsync_Key__c')",
        )

    return SalesforceConfig(
        instance_url=instance_url,
        auth=auth,  # type: ignore[arg-type]
        access_token=secret("access_token", required=True),
        login_url=(
            t.url("login_url", DEFAULT_LOGIN_URL, base_only=True)
            if "login_url" in used
            else DEFAULT_LOGIN_URL
        ),
        consumer_key=required("consumer_key"),
        private_key_file=(
            t.path_value("private_key_file", base, REQUIRED)
            if "private_key_file" in used
            else None
        ),
        username=required("username"),
        client_id=required("client_id"),
        client_secret=secret("client_secret", required=True),
        password=secret("password", required=True),
        security_token=secret("security_token", required=False),
        ca_bundle=t.path_value("ca_bundle", base),
        api_version=api_version,
        external_id_field=external_id,
        daily_call_budget=t.bounded("daily_call_budget", DAILY_CALL_BUDGET),
        connect_timeout_seconds=t.bounded(
            "connect_timeout_seconds", SALESFORCE_CONNECT_TIMEOUT_SECONDS, fraction=True
        ),
        read_timeout_seconds=t.bounded(
            "read_timeout_seconds", SALESFORCE_READ_TIMEOUT_SECONDS, fraction=True
        ),
    )


def _metrics(t: Table, base: Path) -> MetricsConfig:
    listen = t.string("listen", None)
    address: tuple[str, int] | None = None
    if listen is not None:
        host, _, port = listen.rpartition(":")
        host = host.strip("[]")  # "[::1]:9464"
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise t.error("listen", f'expected "host:port" (e.g. "127.0.0.1:9464"), got {listen!r}')
        address = (host, int(port))
    return MetricsConfig(textfile=t.path_value("textfile", base), listen=address)


def _log(t: Table) -> LogConfig:
    return LogConfig(
        format=t.choice("format", ("text", "json"), "text"),  # type: ignore[arg-type]
        level=t.choice(  # type: ignore[arg-type]
            "level", ("debug", "info", "warning", "error"), "info"
        ),
    )
