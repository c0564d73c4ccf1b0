"""calsync's settings model: one frozen dataclass per section of the TOML file, and their bounds.

`Config` holds `SyncConfig`, `StateConfig`, `GoogleConfig`, `SalesforceConfig`, `LogConfig` and
`MetricsConfig`; `config.py` builds them from the file and checks every value against the bounds
below before any of them exists. Secrets are held as `config_secrets.Secret`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

from calsync.core.config_secrets import Secret
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
            object.__setattr__(self, "internal_domains", domains_of(self.users))
        if not isinstance(self.user_map, MappingProxyType):
            object.__setattr__(self, "user_map", MappingProxyType(dict(self.user_map)))


@dataclass(frozen=True)
class StateConfig:
    """Exactly one of `path` (a SQLite file, the default engine) or `url` (a PostgreSQL
    database, a libpq URI without its password; `password` comes from the environment or a
    credential file, or is left to libpq: PGPASSFILE, peer authentication)."""

    path: Path | None = None
    url: str | None = None
    password: Secret | None = None

    @property
    def location(self) -> str | Path:
        """What names the database to the state layer: the URL, else the file's path."""
        return self.url if self.url is not None else self.path  # type: ignore[return-value]

    @property
    def shown(self) -> str:
        """The database as messages and logs name it: the file, or the URL (no password)."""
        return str(self.location)


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


def domains_of(users: tuple[str, ...]) -> tuple[str, ...]:
    """The domains of these addresses, in order, once each (the default internal_domains)."""
    return tuple(dict.fromkeys(user.rsplit("@", 1)[1] for user in users))
