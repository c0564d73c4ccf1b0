"""The operator commands' logic: `calsync status` (read the state) and `calsync doctor` (check it all).

`status` reads only the state database, opened read-only (`StateStore.reader`: no copy, only the
queries of what it shows), so it needs no network, changes nothing on disk and never creates a
missing database. Per calendar it
reports the last successful sync, the age of the stored sync token, the counts of the last cycle,
the records parked for retry, its push channel's expiration and an estimate of the next run: the daemon records nothing of its
schedule, so the estimate is the last attempt plus the interval, stretched by the daemon's own
backoff after failures (`scheduling.backoff_delay` without jitter), or "now" when it never ran or is
overdue.

`doctor` runs one check after another and yields each as it finishes (`Check`): the state
database, Google access for every configured user (a token and one events.list with
maxResults=1), with push notifications on the push URL (HTTPS) and the daemon's listener
(answering at push_listen, and through push_url), the Salesforce login and daily API allowance (GET /limits), the Event permissions
and fields calsync writes (describe Event), and that every user maps to an active Salesforce User.
It never writes: the user mapping is worked out against a throwaway in-memory store, and every
detail goes through `logs.redact` so no secret reaches the screen.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from calsync.core import display, logs
from calsync.core.config import Config
from calsync.core.config_model import StateConfig
from calsync.core.errors import AuthError, CalsyncError, NetworkError, StateError
from calsync.core.model import Written
from calsync.engine.history import Fate, fates
from calsync.engine.parked import Parked, named
from calsync.service.gauges import CalendarGauge, Gauges, estimated_next_run, gauges  # noqa: F401
from calsync.state.store import StateStore


def _written_fields() -> tuple[str, ...]:
    """The standard fields calsync writes (timed and all-day bodies of `EventFields`), each of
    which the integration user must be able to create and update (reference B3)."""
    from calsync.core.model import EventFields

    moment = dt.datetime(2026, 1, 5, 15, tzinfo=dt.timezone.utc)
    names: dict[str, None] = {}
    for all_day in (False, True):
        sample = EventFields(
            owner_id="005", subject="", start=moment, end=moment, is_all_day=all_day,
            activity_date=moment.date(), duration_minutes=0, location=None, description=None,
            who_id=None, what_id=None,
        )
        names.update(dict.fromkeys(sample.to_salesforce()))
    return tuple(names)


WRITTEN_FIELDS = _written_fields()


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# ---------------------------------------------------------------------------------------------
# The state database, read without touching it


# ---------------------------------------------------------------------------------------------
# status


@dataclass(frozen=True)
class CalendarStatus:
    user: str
    configured: bool  # False: in the state database but no longer in [sync] users
    last_attempt_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str | None  # set when the last attempt failed
    consecutive_failures: int
    has_sync_token: bool
    token_saved_at: dt.datetime | None
    last_result: Mapping[str, Any]  # the counts of the last successful cycle
    events_written: int
    retries: tuple[Parked, ...]  # records refused, waiting for a retry, with their meeting
    next_run_at: dt.datetime | None  # None: now (never ran, or overdue)
    deleted_in_salesforce: tuple[Written, ...] = ()  # Events people deleted: not re-created
    push_expires_at: dt.datetime | None = None  # the latest live push channel's expiration
    # Records refused in the last 30 days that left the retry queue: dropped, written since, or
    # no longer needing a write (history.py).
    record_history: tuple[Fate, ...] = ()

    @property
    def needs_attention(self) -> bool:
        """`status --failing`: its last attempt failed, or records wait for a retry."""
        return self.consecutive_failures > 0 or self.last_attempt_failed or bool(self.retries)

    @property
    def last_attempt_failed(self) -> bool:
        return self.last_attempt_at is not None and self.last_error is not None

    def next_at(self, now: dt.datetime) -> dt.datetime:
        return self.next_run_at or now


@dataclass(frozen=True)
class StatusReport:
    state_path: str
    state_exists: bool
    now: dt.datetime
    interval: dt.timedelta
    calendars: tuple[CalendarStatus, ...]
    unmapped: tuple[str, ...] = ()  # configured users the last mapping found no active User for
    # The running daemon's listeners (push, metrics) that cannot listen: name → why (the
    # daemon records them in the state, `Daemon._record_listeners`).
    listeners_down: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @property
    def never_synced(self) -> bool:
        return all(c.last_attempt_at is None for c in self.calendars)

    def only(self, users: Sequence[str] = (), failing: bool = False) -> StatusReport:
        """The report of some calendars: these users, and/or those that need attention
        (`status --user U`, `status --failing`)."""
        chosen = [
            c for c in self.calendars
            if (not users or c.user in users)
            and (not failing or c.needs_attention or c.user in self.unmapped)
        ]
        return replace(self, calendars=tuple(chosen))

    def to_json(self) -> dict[str, Any]:
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat(timespec="seconds") if value else None

        def age(value: dt.datetime | None) -> int | None:
            return int((self.now - value).total_seconds()) if value else None

        return {
            "state_path": self.state_path,
            "state_exists": self.state_exists,
            "now": iso(self.now),
            "interval_minutes": int(self.interval.total_seconds() // 60),
            "never_synced": self.never_synced,
            "users_without_salesforce_user": list(self.unmapped),
            "listeners_down": dict(self.listeners_down),
            "calendars": [
                {
                    "user": c.user,
                    "configured": c.configured,
                    "last_attempt_at": iso(c.last_attempt_at),
                    "last_attempt_ok": None if c.last_attempt_at is None else not c.last_attempt_failed,
                    "last_success_at": iso(c.last_success_at),
                    "last_error": c.last_error,
                    "consecutive_failures": c.consecutive_failures,
                    "sync_token": c.has_sync_token,
                    "token_saved_at": iso(c.token_saved_at),
                    "token_age_seconds": age(c.token_saved_at),
                    "last_result": dict(c.last_result),
                    "events_written": c.events_written,
                    "retries": [
                        {
                            "key": p.retry.key,
                            "ical_uid": p.retry.ical_uid,
                            "event_id": p.event_id,
                            "subject": p.subject,
                            "start": iso(p.start),
                            "operation": p.retry.operation,
                            "status_code": p.retry.status_code,
                            "message": p.retry.message,
                            "attempts": p.retry.attempts,
                            "next_attempt_at": iso(p.retry.next_attempt_at),
                        }
                        for p in c.retries
                    ],
                    "next_run": iso(c.next_run_at) if c.next_run_at else "now",
                    "deleted_in_salesforce": [
                        {"key": w.key, "ical_uid": w.ical_uid, "sf_id": w.sf_id}
                        for w in c.deleted_in_salesforce
                    ],
                    "push_channel_expires_at": iso(c.push_expires_at),
                    "record_history": [fate.to_json() for fate in c.record_history],
                }
                for c in self.calendars
            ],
        }


def status(config: Config, *, now: dt.datetime | None = None, details: bool = True) -> StatusReport:
    """What the state database says about each calendar. Raises StateError if it is unreadable.

    `details=False` (`status --check`, the metrics) leaves out what only the full report shows:
    the counts of Events written, the Events people deleted and the push channels, whose
    queries read every `written` row of each calendar. What is left reads one row per
    calendar, the parked records and the user mapping."""
    now = now or _utcnow()
    interval = dt.timedelta(minutes=config.sync.interval_minutes)
    configured = list(config.sync.users)
    if not StateStore.exists(config.state):
        calendars = tuple(_never(user) for user in configured)
        return StatusReport(config.state.shown, False, now, interval, calendars)
    store = StateStore.reader(config.state)
    try:
        saved = {c.user: c for c in store.calendars()}
        channels = _channel_expiry(store) if details else {}

        def written(user: str) -> int:
            return store.count_written(user) if details else 0

        def removed(user: str) -> tuple[Written, ...]:
            return tuple(store.removed_in_salesforce(user)) if details else ()

        found: list[CalendarStatus] = []
        for user in configured + sorted(set(saved) - set(configured)):
            state = saved.get(user)
            if state is None:
                found.append(_never(user, written=written(user),
                                    retries=tuple(named(store, store.retries(user)))))
                continue
            next_run = estimated_next_run(state, interval, now)
            found.append(
                CalendarStatus(
                    user=user,
                    configured=user in configured,
                    last_attempt_at=state.last_attempt_at,
                    last_success_at=state.last_success_at,
                    last_error=state.last_error,
                    consecutive_failures=state.consecutive_failures,
                    has_sync_token=bool(state.sync_token),
                    token_saved_at=state.token_saved_at,
                    last_result=dict(state.last_result),
                    events_written=written(user),
                    retries=tuple(named(store, store.retries(user))),
                    next_run_at=next_run,
                    deleted_in_salesforce=removed(user),
                    push_expires_at=channels.get(user),
                    record_history=tuple(f for f in fates(store, now, owner=user)
                                         if f.outcome != "waiting"),
                )
            )
        mapping = store.sf_users()
        unmapped = tuple(u for u in configured if u in mapping and mapping[u][0] is None)
        down = _listeners_down(store, config.state)
    finally:
        store.close()
    return StatusReport(config.state.shown, True, now, interval, tuple(found), unmapped, down)


def _listeners_down(store: StateStore, path: Path | StateConfig) -> dict[str, str]:
    """The listeners the running daemon recorded as down (none when no daemon runs)."""
    from calsync.state.lock import daemon_holder

    saved = store.meta("listeners")
    if saved is None or not isinstance(saved[0], dict):
        return {}
    record = saved[0]
    if record.get("pid") is None or daemon_holder(path) != record.get("pid"):
        return {}  # written by a daemon that no longer runs
    listeners = record.get("listeners") or {}
    return {name: str(state.get("error") or "not listening")
            for name, state in sorted(listeners.items())
            if isinstance(state, dict) and not state.get("up")}


def _channel_expiry(store: StateStore) -> dict[str, dt.datetime]:
    """Per user, the expiration of its latest push channel Google confirmed (push.py)."""
    from calsync.state.store import push_channels

    found: dict[str, dt.datetime] = {}
    for channel in push_channels(store):
        if channel.resource_id and channel.expires_at:
            found[channel.user] = max(channel.expires_at, found.get(channel.user, channel.expires_at))
    return found


def _never(user: str, written: int = 0, retries: tuple[Parked, ...] = ()) -> CalendarStatus:
    return CalendarStatus(
        user=user, configured=True, last_attempt_at=None, last_success_at=None, last_error=None,
        consecutive_failures=0, has_sync_token=False, token_saved_at=None, last_result={},
        events_written=written, retries=retries, next_run_at=None,
    )


def _ago(now: dt.datetime, then: dt.datetime) -> str:
    seconds = int((now - then).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{seconds} s ago"


def _when(value: dt.datetime) -> str:
    return display.moment(value)


def summary(report: StatusReport, total: StatusReport | None = None) -> str:
    """One line over every calendar: `3 calendars: 2 ok, 1 failing, 0 never synced; 1 record
    waiting for a retry; 1 user without a Salesforce User`."""
    whole = total or report
    calendars = [c for c in whole.calendars if c.configured]
    failing = sum(1 for c in calendars if c.consecutive_failures > 0)
    never = sum(1 for c in calendars if c.last_attempt_at is None)
    ok = len(calendars) - failing - never
    waiting = sum(len(c.retries) for c in calendars)
    line = (f"{len(calendars)} calendar{'s' if len(calendars) != 1 else ''}: {ok} ok, {failing} failing,"
            f" {never} never synced; {waiting} record{'s' if waiting != 1 else ''} waiting for a retry")
    if whole.unmapped:
        line += f"; {len(whole.unmapped)} without a Salesforce User"
    if total is not None and len(report.calendars) != len(total.calendars):
        line += f" (showing {len(report.calendars)})"
    return line


def render_status(report: StatusReport, total: StatusReport | None = None) -> list[str]:
    """The text form of `status`: a summary line, then one block per calendar (`total`: the
    whole report when `report` is a part of it)."""
    lines = [f"state: {report.state_path}" + ("" if report.state_exists else " (not created yet)"),
             summary(report, total)]
    for name, why in report.listeners_down.items():
        lines.append(f"{name} listener: DOWN ({why}); the daemon retries it and polls every"
                     " calendar meanwhile")
    if report.never_synced and report.calendars:
        lines.append("never synced: no calendar has been synced yet (run `calsync sync` or start the daemon)")
    for c in report.calendars:
        head = c.user + ("" if c.configured else " (no longer configured)")
        lines.append(head)
        if c.last_success_at:
            lines.append(f"  last successful sync: {_when(c.last_success_at)} ({_ago(report.now, c.last_success_at)})")
        else:
            lines.append("  last successful sync: never")
        if c.last_attempt_failed:
            assert c.last_attempt_at is not None
            lines.append(
                f"  last attempt FAILED {_when(c.last_attempt_at)} "
                f"({c.consecutive_failures} in a row): {logs.redact(c.last_error or '')}"
            )
        if c.user in report.unmapped:
            lines.append("  no active Salesforce User for this address: add it to [sync] user_map "
                         "or activate the User (calsync doctor names it)")
        if c.token_saved_at:
            lines.append(f"  sync token: saved {_ago(report.now, c.token_saved_at)}")
        elif c.last_attempt_at is not None:
            lines.append("  sync token: none (the next sync lists the whole lookback window)")
        if c.last_result:
            r = c.last_result
            kind = "full" if r.get("full_sync") else "incremental"
            lines.append(
                f"  last cycle: {r.get('items', 0)} items ({kind}), created {r.get('created', 0)}, "
                f"updated {r.get('updated', 0)}, deleted {r.get('deleted', 0)}, "
                f"skipped {r.get('skipped', 0)}, failed {r.get('failed', 0)}"
            )
        lines.append(f"  Events written: {c.events_written}")
        if c.deleted_in_salesforce:
            lines.append(f"  deleted in Salesforce by people, not re-created: {len(c.deleted_in_salesforce)}"
                         " (`calsync resync --restore-deleted` brings them back)")
        if c.retries:
            lines.append(f"  waiting for retry: {len(c.retries)} (calsync retry, or calsync retry --drop)")
            for parked in c.retries:
                retry = parked.retry
                lines.append(
                    f"    {parked.describe()}: {retry.operation} refused, {retry.status_code or '?'}: "
                    f"{logs.redact((retry.message or '')[:200])}; attempt {retry.attempts}, next "
                    f"{_when(retry.next_attempt_at)}"
                )
        else:
            lines.append("  waiting for retry: none")
        if c.record_history:
            lines.append(f"  refused in the last 30 days, no longer waiting: {len(c.record_history)}")
            for fate in c.record_history:
                lines.append(f"    {fate.describe()}")
        lines.append(
            "  next run: " + ("now" if c.next_run_at is None else f"{_when(c.next_run_at)} (estimated)")
        )
        if c.push_expires_at is not None:
            left = c.push_expires_at - report.now
            lines.append(f"  push channel: expires {_when(c.push_expires_at)}"
                         + (" (expired)" if left.total_seconds() <= 0 else f" (in {_span(left)})"))
    return lines


def _span(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


# ---------------------------------------------------------------------------------------------
# doctor


@dataclass(frozen=True)
class Check:
    """One doctor check: `ok`, what was found, and what to do when it failed.

    `warn`: it passes (the exit status stays 0) but something should change.
    """

    name: str
    ok: bool
    detail: str
    advice: str | None = None
    warn: bool = False

    def lines(self) -> list[str]:
        mark = "FAIL" if not self.ok else ("WARN" if self.warn else "ok  ")
        out = [f"{mark} {self.name}: {logs.redact(self.detail)}"]
        if (not self.ok or self.warn) and self.advice:
            out.append(f"     → {logs.redact(self.advice)}")
        return out


def _failed(name: str, exc: CalsyncError, advice: str) -> Check:
    """A check that failed on `exc`; a network failure brings its own remedy (network.py)."""
    remedy = getattr(exc, "remedy", "")
    if isinstance(exc, (NetworkError, AuthError)) and remedy:
        return Check(name, False, str(exc).removesuffix("; " + remedy), remedy)
    return Check(name, False, str(exc), advice)


# Keys of [salesforce] whose value is a secret (config._SECRET_SOURCES); better as systemd
# credentials or environment variables than in the file.
SECRET_KEYS = ("access_token", "password", "client_secret", "security_token")
ALL_ADDRESSES = frozenset({"", "0.0.0.0", "::", "*", "0:0:0:0:0:0:0:0"})


def config_warnings(config: Config, config_path: str | Path) -> list[Check]:
    """What `check-config` and `doctor` warn about in the configuration itself: a secret in
    a file other users can read, a listener bound to all addresses. Warnings, not failures."""
    import tomllib

    found: list[Check] = []
    path = Path(config_path)
    try:
        mode = path.stat().st_mode
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("salesforce") or {}
    except (OSError, ValueError):
        mode, table = 0, {}
    secrets = [key for key in SECRET_KEYS if isinstance(table, dict) and table.get(key)]
    readable = mode & (stat.S_IRGRP | stat.S_IROTH)
    if secrets and readable:
        who = "every user of this host" if mode & stat.S_IROTH else "its group"
        found.append(Check(
            "secret in a readable configuration", True,
            f"{path} holds salesforce.{', salesforce.'.join(secrets)} and {who} can read it"
            f" (mode {stat.S_IMODE(mode):04o})",
            f"move the secret to the systemd credential (salesforce_{secrets[0]} in "
            "/etc/credstore/calsync, systemd/README.md) or the environment, or at least "
            f"chmod 600 {path}", warn=True))
    listeners = {"google.push_listen": config.google.push_listen, "metrics.listen": config.metrics.listen}
    for key, address in listeners.items():
        if address is not None and address[0].strip("[]") in ALL_ADDRESSES:
            what = ("Google's notifications (and anyone's forged ones)" if key.startswith("google")
                    else "the metrics (user addresses, error counts)")
            found.append(Check(
                f"{key} on all addresses", True,
                f"{key} = \"{address[0]}:{address[1]}\" listens on every address of this host:"
                f" anyone who reaches it gets {what} straight to calsync",
                "listen on 127.0.0.1 (or [::1]) and let the reverse proxy (push) or the local "
                "Prometheus reach it there (README.md, \"Push notifications (optional)\"; README.md, \"Monitor\")", warn=True))
    return found


def doctor(
    config: Config,
    *,
    calendar_for: Callable[[str], Any] | None = None,
    org_factory: Callable[[], Any] | None = None,
    now: dt.datetime | None = None,
    config_path: str | Path | None = None,
) -> Iterator[Check]:
    """Yield each check as it completes. Writes nothing, anywhere."""
    now = now or _utcnow()
    if config_path is not None:
        yield from config_warnings(config, config_path)
    yield _check_state(config)
    yield from _check_google(config, calendar_for)
    yield from _check_push(config)
    yield from _check_salesforce(config, org_factory, now)


SERVICE_STATE_ROOT = Path("/var/lib")  # where systemd's StateDirectory= creates directories


def _check_state(config: Config, *, state_root: Path = SERVICE_STATE_ROOT) -> Check:
    if config.state.url is not None:
        return _check_postgres_state(config)
    path = Path(config.state.location)
    if not path.exists():
        parent = next((p for p in [path.parent, *path.parent.parents] if p.exists()), None)
        if not path.parent.exists() and path.parent.parent == state_root:
            # The systemd install before its first start: the unit's StateDirectory= makes it,
            # owned by the service's user (an admin's sync would make it theirs).
            return Check(
                "state database", True,
                f"{path.parent} does not exist yet: systemd creates it (mode 0700, owned by the"
                f" service's user) when calsync.service first starts, and the first sync then"
                f" creates {path.name}",
                "to create it now (the admin commands then work before the first start): install"
                " systemd/calsync.tmpfiles as /etc/tmpfiles.d/calsync.conf and run"
                " `systemd-tmpfiles --create /etc/tmpfiles.d/calsync.conf` (systemd/README.md, \"Install\")",
                warn=True,
            )
        if parent is not None and parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            made = "" if parent == path.parent else f" (and the directory {path.parent}, mode 0700)"
            return Check("state database", True,
                         f"{path} does not exist yet; the first sync creates it{made}")
        return Check(
            "state database", False, f"{path} does not exist and {parent or path.parent} is not"
            f" writable, so calsync cannot create {path.parent if not path.parent.exists() else path}",
            "create the directory and give the calsync user write access, or change [state] path",
        )
    try:
        store = StateStore.reader(path)
        try:
            store.check_intact()  # doctor reads every page once (no copy of the file)
            calendars = len(store.calendars())
            written = store.count_written()
        finally:
            store.close()
    except StateError as exc:
        return Check("state database", False, str(exc),
                     "restore the file from a backup or point [state] path at a new file "
                     "(calsync then does one full sync)")
    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)):
        return Check("state database", False, f"{path} (or its directory) is not writable",
                     "give the user calsync runs as write access to the file and its directory")
    return Check("state database", True, f"{path}: {calendars} calendars, {written} Events written")


def _check_postgres_state(config: Config) -> Check:
    """[state] url: the database answers, calsync's tables are intact, and it can be written."""
    where = config.state.shown
    try:
        if not StateStore.exists(config.state):
            store = StateStore(config.state)  # reachable and writable: the tables are created
            store.close()
            return Check("state database", True, f"{where}: reachable; calsync's tables created")
        store = StateStore(config.state)
        try:
            store.check_usable()  # every row read once, and 16 KB written and taken back
            calendars = len(store.calendars())
            written = store.count_written()
        finally:
            store.close()
    except StateError as exc:
        return Check("state database", False, str(exc),
                     "check the URL, that the server runs, and the password (README.md, \"State"
                     " in PostgreSQL\")")
    return Check("state database", True, f"{where}: {calendars} calendars, {written} Events written")


def _check_google(config: Config, calendar_for: Callable[[str], Any] | None) -> Iterator[Check]:
    from calsync.calendar.google.api import calendar_factory
    from calsync.calendar.google.credentials import user_token_path

    google = config.google
    if google.mode == "service_account":
        advice = (
            "in the Google Admin console (Security → API controls → Domain-wide delegation) allow "
            f"the service account's client ID the scopes {', '.join(google.scopes)}; check that "
            "the user exists and Calendar is on for them"
        )
    else:
        advice = "run `sudo -u calsync calsync auth google {user}` (systemd/README.md)"
    make = calendar_for or calendar_factory(google)
    for user in config.sync.users:
        name = f"Google access for {user}"
        if google.mode == "installed_app":
            assert google.token_dir is not None
            token = user_token_path(google.token_dir, user)
            if token.exists() and token.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                yield Check(name, False, f"{token} is readable by other users",
                            f"chmod 600 {token}")
                continue
        try:
            calendar = make(user)
            seen = calendar.probe()
        except CalsyncError as exc:
            yield _failed(name, exc, advice.format(user=user))
            continue
        yield Check(name, True, "token obtained, events.list answered"
                    + (f" (calendar {seen})" if seen else ""))


def _check_push(config: Config) -> Iterator[Check]:
    """[google] push_url must be HTTPS (Google posts nowhere else), the daemon's listener must
    answer at push_listen, and push_url must reach it through the reverse proxy."""
    from calsync.service.push import listener_answers

    google = config.google
    if google.push_url is None or google.push_listen is None:
        return
    url = google.push_url
    proxy_advice = ("put a reverse proxy with a valid TLS certificate in front of push_listen and "
                    "set push_url to its public https:// address (README.md, \"Push notifications (optional)\")")
    if url.startswith("https://"):
        yield Check("push URL", True, f"{url} (HTTPS)")
    else:
        yield Check("push URL", False, f"{url} is not HTTPS: Google delivers notifications only "
                    "to HTTPS URLs with a valid certificate", proxy_advice)
    host, port = google.push_listen
    local = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    problem = listener_answers(local)
    if problem:
        yield Check("push listener", False, f"{host}:{port}: {problem}",
                    "start the daemon (systemctl start calsync) and check that nothing else "
                    "uses push_listen; it serves notifications only while it runs")
        return
    yield Check("push listener", True, f"the daemon's listener answers at {host}:{port}")
    if url != local.rstrip("/") and url.startswith("https://"):
        problem = listener_answers(url)
        if problem:
            yield Check("push URL reaches the listener", False, f"{url}: {problem}",
                        f"make the reverse proxy forward {url} to {host}:{port} "
                        "(README.md, \"Push notifications (optional)\")")
        else:
            yield Check("push URL reaches the listener", True, f"{url} → {host}:{port}")


def _check_salesforce(
    config: Config, org_factory: Callable[[], Any] | None, now: dt.datetime
) -> Iterator[Check]:
    from calsync.salesforce.org import SalesforceOrg

    sf = config.salesforce
    login_advice = {
        "access_token": "give a fresh salesforce.access_token (the credential "
        "salesforce_access_token, or $CALSYNC_SALESFORCE_ACCESS_TOKEN) and restart the daemon; "
        "for a daemon prefer auth = \"jwt\"",
        "jwt": "check consumer_key, private_key_file and username, and that the connected app is "
        "pre-authorised for the user (Manage Connected Apps → Permitted Users)",
        "password": "check client_id, client_secret, username, password and security_token",
    }[sf.auth]
    try:
        org = (org_factory or (lambda: SalesforceOrg.from_config(sf)))()
        limits = org.limits()
    except CalsyncError as exc:
        yield _failed("Salesforce login", exc, login_advice)
        yield Check("Salesforce checks", False, "not run: no Salesforce session",
                    "fix the login above, then run `calsync doctor` again")
        return
    daily = limits.get("DailyApiRequests") or {}
    remaining, most = daily.get("Remaining"), daily.get("Max")
    yield Check("Salesforce login", True, f"{sf.instance_url} (auth = {sf.auth})")
    if sf.auth == "access_token":
        yield _token_warning(config)
    if isinstance(remaining, int):
        detail = f"{remaining} of {most} daily API calls remaining"
        if remaining < sf.daily_call_budget:
            yield Check("Salesforce API allowance", False,
                        detail + f", below [salesforce] daily_call_budget = {sf.daily_call_budget}: "
                        "calsync stops writing",
                        "wait for the rolling 24-hour allowance to recover, find what else spends it "
                        "(Setup → System Overview), or lower daily_call_budget")
        else:
            yield Check("Salesforce API allowance", True, detail)
    else:
        yield Check("Salesforce API allowance", True, "GET /limits answered without DailyApiRequests")

    try:
        describe = org.describe("Event")
    except CalsyncError as exc:
        yield Check("Event permissions", False, f"describe Event failed: {exc}",
                    "give the integration user a profile or permission set with API Enabled and "
                    "read, create, edit and delete on Events")
    else:
        yield from _check_event(config, describe)
    yield _check_users(config, org, now)


def _token_warning(config: Config) -> Check:
    """auth = "access_token" works for a trial, not for a daemon: the token dies with its
    session (the org's session timeout, a logout, a password change: reference B7) and the
    daemon reads its credentials at start, so a new one means a restart."""
    from calsync.state.lock import daemon_holder

    daemon = daemon_holder(config.state)
    who = f"the daemon (pid {daemon}) runs" if daemon else "a daemon would run"
    return Check(
        "Salesforce credential", True,
        f"{who} with auth = \"access_token\", a token that expires with its Salesforce session;"
        " a new one needs `systemctl restart calsync`",
        "use auth = \"jwt\" (a certificate on a connected app; it does not expire): "
        "systemd/README.md, \"Install\", step 4",
        warn=True,
    )


def _check_event(config: Config, describe: Mapping[str, Any]) -> Iterator[Check]:
    from calsync.engine.salesforce_session import activity_field_problem, external_id_problem  # the sync's own rules

    missing = [p for p in ("createable", "updateable", "deletable") if not describe.get(p)]
    if missing:
        yield Check("Event permissions", False, "Event is not " + ", ".join(missing) + " for this user",
                    "give the integration user create, edit and delete on Events (profile or "
                    "permission set object permissions)")
    else:
        yield Check("Event permissions", True, "create, edit and delete allowed")
    fields = {str(f.get("name", "")).lower(): f for f in describe.get("fields", [])}

    def writable(f: Mapping[str, Any]) -> bool:
        return bool(f.get("createable")) and bool(f.get("updateable"))

    blocked = [n for n in WRITTEN_FIELDS if n.lower() not in fields or not writable(fields[n.lower()])]
    if blocked:
        yield Check("Event fields", False, "not writable by this user: " + ", ".join(blocked),
                    "grant field-level security edit access on these Activity fields to the "
                    "integration user")
    else:
        yield Check("Event fields", True, f"{len(WRITTEN_FIELDS)} standard fields writable")

    activity = config.sync.activity_datetime_field
    if activity:
        name = f"activity field {activity}"
        info = fields.get(activity.lower())
        advice = (
            f"create a Date/Time field {activity} on Activity (Setup → Object Manager → Activity "
            "→ Fields & Relationships), give the integration user edit access to it, or remove "
            "[sync] activity_datetime_field"
        )
        problem = activity_field_problem(info)
        yield Check(name, problem is None, problem or "Date/Time, writable", advice if problem else None)

    key = config.salesforce.external_id_field
    if key:
        name = f"external ID field {key}"
        info = fields.get(key.lower())
        advice = (
            f"create a Text(255) field {key} on Activity marked External ID (and Unique), give the "
            "integration user edit access, or remove [salesforce] external_id_field"
        )
        problem = external_id_problem(info)
        yield Check(name, problem is None, problem or "External ID, writable", advice if problem else None)

    if config.sync.shared_activities:
        info = fields.get("eventwhoids")
        advice = ("enable Shared Activities (Setup → Activity Settings → Allow Users to Relate "
                  "Multiple Contacts to Tasks and Events), or set [sync] shared_activities = false")
        if info is None or not info.get("createable"):
            yield Check("shared activities", False, "EventWhoIds is not writable on Event", advice)
        else:
            yield Check("shared activities", True, "EventWhoIds writable")


def _check_users(config: Config, org: Any, now: dt.datetime) -> Check:
    """Map users exactly as a cycle would (`Cycle.resolve_users`), on a throwaway store."""
    from calsync.engine.cycle import Cycle

    users = list(config.sync.users)
    scratch = StateStore(":memory:")
    try:
        cycle = Cycle(config, scratch, calendar_for=lambda user: None, org_factory=lambda: org)
        resolved = cycle.resolve_users(users, now)
    except CalsyncError as exc:
        return Check("Salesforce users", False, f"cannot look up Users: {exc}",
                     "give the integration user read access to Users")
    finally:
        scratch.close()
    unmapped = [u for u in users if not resolved.get(u)]
    if not unmapped:
        return Check("Salesforce users", True, f"all {len(users)} users map to an active Salesforce User")
    mapping = config.sync.user_map
    targets = {u: mapping.get(u, u).lower() for u in unmapped}
    try:
        found = org.find_users([t for t in targets.values() if "@" in t],
                               [t for t in targets.values() if "@" not in t])
    except CalsyncError:
        found = []
    inactive = {
        u for u, t in targets.items()
        if any(not f.active and (t in (f.email, f.username) or f.id.lower()[:15] == t[:15])
               for f in found)
    }
    parts = [f"{u} (inactive User)" if u in inactive else u for u in unmapped]
    return Check(
        "Salesforce users", False, "no active Salesforce User for " + ", ".join(parts),
        "activate the User, or map the address in [sync] user_map to the Salesforce username "
        "or User Id (e.g. \"bob@acme.com\" = \"bob.smith@acme.com.prod\")",
    )


def exit_code(checks: Sequence[Check]) -> int:
    return 0 if all(c.ok for c in checks) else 1
