"""`calsync doctor`: every check, one after another, each yielded as it finishes (`Check`).

The state database, Google access for every configured user (a token and one events.list with
maxResults=1), with push notifications on the push URL (HTTPS) and the daemon's listener
(answering at push_listen, and through push_url), the Salesforce login and daily API allowance
(GET /limits), the Event permissions and fields calsync writes (describe Event), and that every
user maps to an active Salesforce User. It never writes: the user mapping is worked out against
a throwaway in-memory store, and every detail goes through `logs.redact` so no secret reaches
the screen. `config_warnings` is shared with `check-config`.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from calsync.core import logs
from calsync.core.config import Config
from calsync.core.errors import AuthError, CalsyncError, NetworkError, StateError
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
            calendars, written = _held(store)
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


def _held(store: StateStore) -> tuple[int, int]:
    """What a state holds, as the check reports it: calendars and Events written."""
    return len(store.calendars()), store.count_written()


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
            calendars, written = _held(store)
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
