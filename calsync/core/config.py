"""calsync's configuration: one TOML file → frozen dataclasses, refused whole if anything is off.

`load(path)` reads the file with tomllib; `parse(data)` checks a decoded table. Unknown keys at
any level, missing required keys, wrong types and bad values raise ONE `ConfigError` naming the
key as a dotted path, e.g. ``/etc/calsync/calsync.toml: sync.lookback_days: expected an integer,
got string '30'``. Files named in the configuration (service-account key, CA bundle, ...) are not
opened here; `calsync doctor` and the adapters do that.

Salesforce secrets may come from the file, from the environment (CALSYNC_SALESFORCE_*) or from
systemd credentials (salesforce_* in the credentials directory, `credentials.py`: the service's
$CREDENTIALS_DIRECTORY, or the credential store for an admin); the environment wins, then the
credential, then the file. Each is held in a `Secret`, whose repr never shows the value, and is
registered with `calsync.core.logs` so no log line shows it either. A file setting may start with
`%d/` (systemd's specifier for the credentials directory). `load(..., secrets=False)` is for the
commands that need no secret (`status`, `explain` without `--live`): a missing secret is then
None and an unresolvable `%d/` path stays as written.
"""

from __future__ import annotations

import difflib
import functools
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from calsync.core import credentials, logs
from calsync.core.errors import ConfigError
from calsync.core.model import PlanSettings

DEFAULT_SCOPES = ("https://www.googleapis.com/auth/calendar.readonly",)
DEFAULT_LOGIN_URL = "https://login.salesforce.com"
DEFAULT_API_VERSION = "59.0"

# Every number a configuration holds, with its bounds: (default, minimum, maximum). Checked at
# load, so an absurd value (lookback_days = 1000000) is refused with the key instead of
# overflowing later; the README lists the same table.
LOOKBACK_DAYS = (30, 0, 3650)
INTERVAL_MINUTES = (40, 1, 1440)
CONCURRENCY = (4, 1, 16)
# How often Salesforce is asked what changed (directory.py): a week at most; a longer gap would
# re-plan nothing new, only later.
DIRECTORY_REFRESH_MINUTES = (60, 0, 7 * 24 * 60)
DAILY_CALL_BUDGET = (1000, 0, 10_000_000)
GOOGLE_TIMEOUT_SECONDS = (60, 1, 600)
# Google Calendar's per-minute quotas (reference A8): the project's and each user's, as Google
# granted them (raise them here only if Google raised them), and the share calsync may use.
GOOGLE_REQUESTS_PER_MINUTE = (10_000, 1, 1_000_000)
GOOGLE_REQUESTS_PER_MINUTE_PER_USER = (600, 1, 100_000)
GOOGLE_REQUEST_SHARE = (0.8, 0.01, 1.0)
# How long a push notification channel is asked to live (Google's default is 604,800 s, a
# week; it answers with the expiration it grants, which calsync uses).
PUSH_CHANNEL_HOURS = (168, 1, 720)
SALESFORCE_CONNECT_TIMEOUT_SECONDS = (10, 1, 120)
SALESFORCE_READ_TIMEOUT_SECONDS = (120, 1, 600)

PrivateEvents = Literal["skip", "sync"]
SalesforceAuth = Literal["access_token", "jwt", "password"]
LogFormat = Literal["text", "json"]
LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True, repr=False)
class Secret:
    """A credential value that never shows in repr(), str() or f-strings; `.reveal()` gives it."""

    _value: str

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


@dataclass(frozen=True)
class SyncConfig:
    users: tuple[str, ...]  # lowercased addresses, no duplicates
    internal_domains: tuple[str, ...] = ()  # empty → the domains of `users`
    exclude: tuple[str, ...] = ()  # lowercased glob patterns on addresses
    lookback_days: int = LOOKBACK_DAYS[0]
    interval_minutes: int = INTERVAL_MINUTES[0]
    private_events: PrivateEvents = "skip"
    activity_datetime_field: str | None = None
    # google address → Salesforce username or User Id, for users whose Salesforce email differs.
    user_map: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    shared_activities: bool = False  # relate every Contact (EventWhoIds, reference B3)
    concurrency: int = CONCURRENCY[0]
    # How often Salesforce is asked what changed (directory.py); 0 = every cycle.
    directory_refresh_minutes: int = DIRECTORY_REFRESH_MINUTES[0]

    def __post_init__(self) -> None:
        if not self.internal_domains:
            object.__setattr__(self, "internal_domains", _domains_of(self.users))
        if not isinstance(self.user_map, MappingProxyType):
            object.__setattr__(self, "user_map", MappingProxyType(dict(self.user_map)))


@dataclass(frozen=True)
class StateConfig:
    path: Path


@dataclass(frozen=True)
class GoogleConfig:
    """Exactly one of `service_account_file` or (`oauth_client_file` + `token_dir`) is set."""

    service_account_file: Path | None = None  # domain-wide delegation; its token_uri is honoured
    oauth_client_file: Path | None = None  # installed-app flow...
    token_dir: Path | None = None  # ...with one refresh token per user stored here
    api_endpoint: str | None = None  # another Calendar API base URL (emulator)
    scopes: tuple[str, ...] = DEFAULT_SCOPES
    timeout_seconds: float = GOOGLE_TIMEOUT_SECONDS[0]  # connect and read, each Calendar request
    requests_per_minute: int = GOOGLE_REQUESTS_PER_MINUTE[0]  # the project's quota (A8)
    requests_per_minute_per_user: int = GOOGLE_REQUESTS_PER_MINUTE_PER_USER[0]
    request_share: float = GOOGLE_REQUEST_SHARE[0]  # of both, at most, for this process
    # Push notifications (push.py): the public HTTPS URL Google posts to (a reverse proxy
    # forwards it to push_listen, "host:port"); both set, or neither.
    push_url: str | None = None
    push_listen: tuple[str, int] | None = None
    push_channel_hours: int = PUSH_CHANNEL_HOURS[0]

    @property
    def push(self) -> bool:
        return self.push_url is not None

    @property
    def mode(self) -> Literal["service_account", "installed_app"]:
        return "service_account" if self.service_account_file is not None else "installed_app"


@dataclass(frozen=True)
class SalesforceConfig:
    instance_url: str  # scheme://host[:port], no trailing slash
    auth: SalesforceAuth = "access_token"
    access_token: Secret | None = None
    login_url: str = DEFAULT_LOGIN_URL
    consumer_key: str | None = None
    private_key_file: Path | None = None
    username: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    password: Secret | None = None
    security_token: Secret | None = None
    ca_bundle: Path | None = None
    api_version: str = DEFAULT_API_VERSION
    external_id_field: str | None = None  # set: writes are upserts on it (reference B4)
    # Stop writing when the org's remaining daily calls fall below this.
    daily_call_budget: int = DAILY_CALL_BUDGET[0]
    # Every Salesforce request (token, queries, writes): seconds to connect, then to answer.
    connect_timeout_seconds: float = SALESFORCE_CONNECT_TIMEOUT_SECONDS[0]
    read_timeout_seconds: float = SALESFORCE_READ_TIMEOUT_SECONDS[0]


@dataclass(frozen=True)
class MetricsConfig:
    """Prometheus metrics (metrics.py): a node_exporter textfile and/or an HTTP listener."""

    textfile: Path | None = None  # rewritten atomically after each cycle
    listen: tuple[str, int] | None = None  # (host, port) of the daemon's /metrics listener


@dataclass(frozen=True)
class LogConfig:
    format: LogFormat = "text"
    level: LogLevel = "info"


@dataclass(frozen=True)
class Config:
    sync: SyncConfig
    state: StateConfig
    google: GoogleConfig
    salesforce: SalesforceConfig
    log: LogConfig = LogConfig()
    metrics: MetricsConfig = MetricsConfig()

    def plan_settings(self) -> PlanSettings:
        """The planner's settings (addresses, domains and patterns lowercased); worked out once
        per configuration (the daemon makes a Cycle per poll: 10,000 users lowercased each
        time cost 3 ms of the poll)."""
        return _plan_settings(self)


@functools.lru_cache(maxsize=8)
def _plan_settings(config: Config) -> PlanSettings:
    sync = config.sync
    return PlanSettings(
        internal_domains=frozenset(d.lower() for d in sync.internal_domains),
        configured_users=frozenset(u.lower() for u in sync.users),
        exclude=tuple(p.lower() for p in sync.exclude),
        lookback_days=sync.lookback_days,
        private_events=sync.private_events,
        activity_datetime_field=sync.activity_datetime_field,
        shared_activities=sync.shared_activities,
    )


# ---------------------------------------------------------------------------------------------
# Loading


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
    root = _Table(source, "", data, _TOP_KEYS, env=env, secrets=secrets)
    config = Config(
        sync=_sync(root.table("sync")),
        state=_state(root.table("state"), base),
        google=_google(root.table("google"), base),
        salesforce=_salesforce(root.table("salesforce"), base, env),
        log=_log(root.table("log")),
        metrics=_metrics(root.table("metrics"), base),
    )
    for secret in (
        config.salesforce.access_token,
        config.salesforce.client_secret,
        config.salesforce.password,
        config.salesforce.security_token,
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
_STATE_KEYS = ("path",)
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

# Secret keys: environment variable and systemd credential name (systemd.exec(5),
# LoadCredential=/SetCredential=, read from $CREDENTIALS_DIRECTORY).
_SECRET_SOURCES = {
    "access_token": ("CALSYNC_SALESFORCE_ACCESS_TOKEN", "salesforce_access_token"),
    "password": ("CALSYNC_SALESFORCE_PASSWORD", "salesforce_password"),
    "client_secret": ("CALSYNC_SALESFORCE_CLIENT_SECRET", "salesforce_client_secret"),
    "security_token": ("CALSYNC_SALESFORCE_SECURITY_TOKEN", "salesforce_security_token"),
}

_LABEL = r"[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?"  # one DNS label, lowercase
_DOMAIN = re.compile(rf"^{_LABEL}(?:\.{_LABEL})+$")
_EMAIL = re.compile(rf"^[^@\s\"'<>(),;:\[\]]+@{_LABEL}(?:\.{_LABEL})+$")
_USER_ID = re.compile(r"^005[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?$")  # 15 or 18 chars (reference B2)
_NAME_PART = r"[A-Za-z](?:[A-Za-z0-9]|_(?!_))*(?<!_)"  # no "__", no trailing "_"
_STANDARD_FIELD = re.compile(rf"^{_NAME_PART}$")
_CUSTOM_FIELD = re.compile(rf"^(?:{_NAME_PART}__)?{_NAME_PART}__[cC]$")  # [namespace__]Name__c
_API_VERSION = re.compile(r"^\d+\.\d$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_\-]+(?:\[\d+\])?$")  # a key, or key[index] for list items

_MISSING: Any = object()
_REQUIRED: Any = object()


def _domains_of(users: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(user.rsplit("@", 1)[1] for user in users))


def _describe(value: Any) -> str:
    """`string '30'`, `integer 30`, `boolean true`, `array`, ... for type errors."""
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"{type(value).__name__} {value}"  # TOML dates and times


def _join(prefix: str, key: str) -> str:
    if _BARE_KEY.match(key):
        part = key
    else:  # quoted the TOML way: sync.user_map."bob@acme.test"
        part = '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{prefix}.{part}" if prefix else part


class _Table:
    """One TOML table being checked; every error it raises names `source: dotted.path`."""

    def __init__(
        self,
        source: str,
        path: str,
        data: Mapping[str, Any],
        known: tuple[str, ...],
        *,
        env: Mapping[str, str] | None = None,
        secrets: bool = True,
    ) -> None:
        self.source = source
        self.path = path
        self.data = data
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.secrets = secrets  # False: a missing secret or credentials directory is no error
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                if close:
                    hint = f" (did you mean {close[0]!r}?)"
                else:
                    hint = f" (known keys: {', '.join(known)})"
                raise self.error(key, f"unknown key{hint}")

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {_join(self.path, key)}: {message}")

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def table(self, key: str) -> _Table:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {_describe(value)}")
        known = {
            "sync": _SYNC_KEYS,
            "state": _STATE_KEYS,
            "google": _GOOGLE_KEYS,
            "salesforce": _SALESFORCE_KEYS,
            "log": _LOG_KEYS,
            "metrics": _METRICS_KEYS,
        }[key]
        return _Table(self.source, _join(self.path, key), value, known, env=self.env,
                      secrets=self.secrets)

    def _value(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise self.error(key, "required key missing")
        return _MISSING

    def string(self, key: str, default: Any = None, *, hint: str = "") -> Any:
        value = self._value(key, default)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            raise self.error(key, f"expected a string{hint}, got {_describe(value)}")
        value = value.strip()
        if not value:
            raise self.error(key, "must not be empty")
        return value

    def integer(
        self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self._value(key, default)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {_describe(value)}")
        self._in_range(key, value, minimum, maximum)
        return value

    def bounded(self, key: str, bounds: tuple[int, int, int], *, fraction: bool = False) -> Any:
        """A number within `bounds` (default, minimum, maximum); `fraction`: floats allowed."""
        default, minimum, maximum = bounds
        if not fraction:
            return self.integer(key, default, minimum=minimum, maximum=maximum)
        value = self._value(key, default)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"expected a number, got {_describe(value)}")
        self._in_range(key, value, minimum, maximum)
        return value

    def _in_range(self, key: str, value: float, minimum: float | None, maximum: float | None) -> None:
        if value != value:  # NaN compares false both ways
            raise self.error(key, "must be a number, got nan")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum}, got {value}")

    def boolean(self, key: str, default: bool) -> bool:
        value = self._value(key, default)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {_describe(value)}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(key, default)
        if value not in choices:
            listed = ", ".join(repr(c) for c in choices)
            raise self.error(key, f"expected one of {listed}, got {value!r}")
        return str(value)

    def strings(self, key: str, default: Any) -> Any:
        """A list of non-empty stripped strings (or `default` when absent)."""
        value = self._value(key, default)
        if value is _MISSING:
            return default
        if not isinstance(value, list):
            raise self.error(key, f"expected an array of strings, got {_describe(value)}")
        result = []
        for index, item in enumerate(value):
            where = f"{key}[{index}]"
            if not isinstance(item, str):
                raise self.error(where, f"expected a string, got {_describe(item)}")
            if not item.strip():
                raise self.error(where, "must not be empty")
            result.append(item.strip())
        return result

    def path_value(self, key: str, base: Path, default: Any = None) -> Any:
        value = self.string(key, default)
        if value is None or value is _REQUIRED:
            return None
        if credentials.uses_specifier(value):
            found = credentials.resolve(value, self.env)
            if found is not None:
                return found
            if not self.secrets:
                return Path(value)  # never opened by a command that loads without secrets
            raise self.error(key, f"{value}: no credentials directory ({credentials.where(self.env)})")
        return _resolve(value, base)

    def url(self, key: str, default: Any = None, *, base_only: bool = False) -> Any:
        value = self.string(key, default)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.error(key, f"expected an http:// or https:// URL, got {value!r}")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise self.error(key, f"invalid port in {value!r}") from None
        if base_only and (parts.path not in ("", "/") or parts.query or parts.fragment):
            raise self.error(
                key,
                "expected only scheme://host[:port] (e.g. https://acme.my.salesforce.com), "
                f"got {value!r}",
            )
        return value.rstrip("/") if base_only else value


def _resolve(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _sync(t: _Table) -> SyncConfig:
    raw_users = t.strings("users", _REQUIRED)
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
        internal_domains=tuple(domains) or _domains_of(tuple(users)),
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


def _user_map(t: _Table, users: list[str]) -> MappingProxyType[str, str]:
    raw = t.data.get("user_map", {})
    if not isinstance(raw, dict):
        raise t.error("user_map", f"expected a table, got {_describe(raw)}")
    where = _join(t.path, "user_map")
    result: dict[str, str] = {}
    for key, value in raw.items():
        entry = _Table(t.source, where, {key: value}, (key,))
        address = key.strip().lower()
        if address not in users:
            raise entry.error(key, "not one of sync.users")
        if address in result:
            raise entry.error(key, f"duplicate address {address!r}")
        target = entry.string(key, _REQUIRED)
        if not (_USER_ID.match(target) or _EMAIL.match(target.lower())):
            raise entry.error(
                key,
                f"expected a Salesforce username (user@example.com) or a User Id (005..., 15 or 18 "
                f"characters), got {target!r}",
            )
        result[address] = target
    return MappingProxyType(result)


def _state(t: _Table, base: Path) -> StateConfig:
    return StateConfig(path=t.path_value("path", base, _REQUIRED))


def _google(t: _Table, base: Path) -> GoogleConfig:
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


def _listen_address(t: _Table, key: str) -> tuple[str, int] | None:
    """"host:port" (an IPv6 host in brackets) → (host, port); None when absent."""
    value = t.string(key, None)
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise t.error(key, f'expected "host:port" (e.g. "127.0.0.1:8790"), got {value!r}')
    return host, int(port)


def _salesforce(t: _Table, base: Path, environ: Mapping[str, str]) -> SalesforceConfig:
    instance_url = t.url("instance_url", _REQUIRED, base_only=True)
    auth = t.choice("auth", ("access_token", "jwt", "password"), "access_token")
    used = _AUTH_KEYS[auth]
    for key in sorted(set().union(*_AUTH_KEYS.values()) - used):
        if key in t:
            modes = " or ".join(repr(m) for m, keys in _AUTH_KEYS.items() if key in keys)
            raise t.error(key, f"only used with auth = {modes} (auth is {auth!r})")

    def secret(key: str, required: bool) -> Secret | None:
        return _secret(t, key, environ, required) if key in used else None

    def required(key: str) -> str | None:
        return t.string(key, _REQUIRED) if key in used else None

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
            t.path_value("private_key_file", base, _REQUIRED)
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


def _secret(t: _Table, key: str, environ: Mapping[str, str], required: bool) -> Secret | None:
    """The environment variable, else the systemd credential, else the file's value."""
    variable, credential = _SECRET_SOURCES[key]
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


def _metrics(t: _Table, base: Path) -> MetricsConfig:
    listen = t.string("listen", None)
    address: tuple[str, int] | None = None
    if listen is not None:
        host, _, port = listen.rpartition(":")
        host = host.strip("[]")  # "[::1]:9464"
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise t.error("listen", f'expected "host:port" (e.g. "127.0.0.1:9464"), got {listen!r}')
        address = (host, int(port))
    return MetricsConfig(textfile=t.path_value("textfile", base), listen=address)


def _log(t: _Table) -> LogConfig:
    return LogConfig(
        format=t.choice("format", ("text", "json"), "text"),  # type: ignore[arg-type]
        level=t.choice(  # type: ignore[arg-type]
            "level", ("debug", "info", "warning", "error"), "info"
        ),
    )


# ---------------------------------------------------------------------------------------------
# Example


_EXAMPLE = '''\
# calsync configuration (TOML). Unknown keys are refused; `calsync doctor` checks the rest.
# Relative paths are resolved against this file's directory; "~" is expanded.

[sync]
# The Google Workspace users whose calendars are synced (required).
users = ["alice@acme.test", "bob@acme.test"]
# Attendees at these domains are colleagues, not customers (default: the domains of `users`).
internal_domains = ["acme.test"]
# Attendees never treated as customers (glob patterns, case-insensitive).
exclude = ["*@resource.calendar.google.com", "noreply@*"]
# How far back the first sync reaches, and how often calsync polls.
lookback_days = 30
interval_minutes = 40
# "skip": private meetings are not logged; "sync": logged as "Private meeting", without details.
private_events = "skip"
# Optional custom Date/Time Activity field that receives the meeting's start.
activity_datetime_field = "Calsync_Activity_DateTime__c"
# Calendars fetched in parallel (1-16). lookback_days is 0-3650, interval_minutes 1-1440.
concurrency = 4
# Reserved: relate one Event to several Contacts (Shared Activities). Not used yet.
shared_activities = false
# How often to ask Salesforce which Contacts, Leads and Opportunities changed, and re-plan the
# meetings they affect (minutes, 0 = every cycle, at most 10080 = a week).
directory_refresh_minutes = 60

# For users whose Salesforce login differs from their Google address:
# [sync.user_map]
# "bob@acme.test" = "bob.smith@acme.test"   # Salesforce username, or a User Id (005...)

[state]
path = "/var/lib/calsync/state.db"

[google]
# Domain-wide delegation: a service-account key file (its token_uri is honoured). "%d/" is the
# credentials directory: $CREDENTIALS_DIRECTORY under systemd (LoadCredential=), else the
# credential store /etc/credstore/calsync (systemd/README.md).
service_account_file = "%d/google_service_account.json"
# Or the installed-app flow, one refresh token per user (`calsync auth google`):
# oauth_client_file = "/etc/calsync/google-oauth-client.json"
# token_dir = "/var/lib/calsync/google-tokens"
# Optional: another Calendar API base URL (e.g. the sandbox emulator).
# api_endpoint = "http://127.0.0.1:8701/"
# Seconds each Calendar request may take to connect, and again to answer (1-600).
timeout_seconds = 60
# Google Calendar's per-minute quotas as Google granted them to the project (10,000 per
# project, 600 per user by default), and the share of both this calsync may use (0.01-1).
requests_per_minute = 10000
requests_per_minute_per_user = 600
request_share = 0.8
# Optional push notifications: Google posts to push_url (public, HTTPS, a reverse proxy in
# front of calsync) and the proxy forwards to push_listen. Polling goes on as a safety net.
# push_url = "https://calsync.example.com/google/notify"
# push_listen = "127.0.0.1:8790"
# push_channel_hours = 168      # channel lifetime asked of Google (1-720); renewed before expiry

[salesforce]
instance_url = "https://acme.my.salesforce.com"
# "jwt" (a daemon's credential: it does not expire), "password" or "access_token" (trials only:
# the token dies with its session, and a new one needs a restart).
auth = "jwt"
# auth = "jwt": a connected app with a certificate, pre-authorized for the user.
login_url = "https://login.salesforce.com"
consumer_key = "3MVG9..."
private_key_file = "%d/salesforce_jwt.key"
username = "calsync@acme.test"
#
# auth = "access_token": prefer the environment variable CALSYNC_SALESFORCE_ACCESS_TOKEN or the
# systemd credential salesforce_access_token (LoadCredential=) over writing the token here.
# access_token = "00D...!AQ..."
#
# auth = "password": client_secret, password and security_token may also come from
# CALSYNC_SALESFORCE_CLIENT_SECRET / _PASSWORD / _SECURITY_TOKEN or systemd credentials.
# client_id = "3MVG9..."
# username = "calsync@acme.test"
#
# Optional: extra CA certificates to trust.
# ca_bundle = "/etc/calsync/ca.pem"
api_version = "59.0"
# Optional Event External ID field: when set, every write is an upsert on it.
# external_id_field = "Calsync_Key__c"
# calsync stops writing when the org's remaining daily API calls fall below this.
daily_call_budget = 1000
# Seconds to connect (1-120) and to wait for each answer (1-600), every Salesforce request.
connect_timeout_seconds = 10
read_timeout_seconds = 120

[log]
format = "text"   # or "json"
level = "info"    # "debug", "info", "warning", "error"

[metrics]
# Prometheus metrics: a node_exporter textfile rewritten after each cycle, and/or an HTTP
# listener of the daemon (`calsync run`). Both optional.
# textfile = "/var/lib/prometheus/node-exporter/calsync.prom"
# listen = "127.0.0.1:9464"
'''


def example_toml() -> str:
    """A commented example configuration (systemd/README.md); it loads as is where a credentials
    directory exists ($CREDENTIALS_DIRECTORY, or the credential store)."""
    return _EXAMPLE
