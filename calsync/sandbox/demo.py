"""`calsync sandbox`: both emulators on loopback, a demo company, a config for it, one real sync.

The demo company (Acme, domain acme.test) has three salespeople on Google Calendar and in
Salesforce, customer Accounts with Contacts, open and closed Opportunities with primary contact
roles, a Lead, and calendars holding the cases calsync decides on: externally and internally
organised meetings, a weekly series, an all-day onsite, a private meeting, an internal-only
meeting, an out-of-office block, a declined invitation and a meeting with a room and a no-reply
address. Meetings are placed relative to now so the sync always has something to do.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calsync.sandbox.google import GoogleEmulator
from calsync.sandbox.salesforce import SalesforceEmulator

DOMAIN = "acme.test"
ACTIVITY_FIELD = "Calsync_Activity_DateTime__c"
KEY_FIELD = "Calsync_Key__c"

USERS = [
    ("alice@acme.test", "Alice", "Archer", "Europe/Berlin"),
    ("bob@acme.test", "Bob", "Baker", "America/New_York"),
    ("carol@acme.test", "Carol", "Chen", "UTC"),
]
ACCOUNTS = ["Globex", "Initech", "Umbrella"]
CONTACTS = [  # email, first, last, account
    ("hank@globex.test", "Hank", "Scorpio", "Globex"),
    ("marge@globex.test", "Marge", "Bouvier", "Globex"),
    ("peter@initech.test", "Peter", "Gibbons", "Initech"),
    ("bill@initech.test", "Bill", "Lumbergh", "Initech"),
    ("ada@umbrella.test", "Ada", "Wong", "Umbrella"),
]
LEADS = [  # email, first, last, company, converted
    ("zoe@soylent.test", "Zoe", "Sol", "Soylent", False),
    ("old@soylent.test", "Olaf", "Old", "Soylent", True),
]


@dataclass
class DemoCompany:
    users: list[str]
    sf_user_ids: dict[str, str]
    contact_ids: dict[str, str]
    lead_ids: dict[str, str]
    account_ids: dict[str, str]
    opportunity_ids: dict[str, str]
    meetings: dict[str, str] = field(default_factory=dict)  # label -> Google event id


def _at(day: dt.date, hour: int, minute: int = 0) -> str:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.timezone.utc).isoformat().replace(
        "+00:00", "Z"
    )


def _timed(day: dt.date, hour: int, minutes: int, zone: str = "UTC") -> dict[str, Any]:
    end = dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.timezone.utc) + dt.timedelta(minutes=minutes)
    return {
        "start": {"dateTime": _at(day, hour), "timeZone": zone},
        "end": {"dateTime": end.isoformat().replace("+00:00", "Z"), "timeZone": zone},
    }


def seed(google: Any, salesforce: Any, now: dt.datetime) -> DemoCompany:
    """Fill both emulators' backends with the demo company; returns its ids."""
    sf_users: dict[str, str] = {}
    for email, first, last, zone in USERS:
        google.add_user(email, f"{first} {last}", zone)
        sf_users[email] = salesforce.create_user(email, first_name=first, last_name=last, email=email)
    # A former employee: inactive in Salesforce, so never an owner.
    salesforce.create_user("dave@acme.test", first_name="Dave", last_name="Gone", active=False)
    salesforce.add_custom_field("Event", ACTIVITY_FIELD, "datetime", createable=True, updateable=True)
    salesforce.add_custom_field(
        "Event", KEY_FIELD, "string", length=255, external_id=True, unique=True
    )

    accounts = {name: salesforce.create_record("Account", {"Name": name}) for name in ACCOUNTS}
    contacts = {
        email: salesforce.create_record(
            "Contact",
            {"FirstName": first, "LastName": last, "Email": email, "AccountId": accounts[account]},
        )
        for email, first, last, account in CONTACTS
    }
    leads = {
        email: salesforce.create_record(
            "Lead",
            {"FirstName": first, "LastName": last, "Email": email, "Company": company,
             "IsConverted": converted, "Status": "Open - Not Contacted"},
        )
        for email, first, last, company, converted in LEADS
    }
    today = now.date()
    opportunities = {}
    for name, account, closed, days, primary in [
        ("Globex platform renewal", "Globex", False, 30, "hank@globex.test"),
        ("Initech pilot", "Initech", True, -60, "peter@initech.test"),
        ("Initech expansion", "Initech", False, 45, "peter@initech.test"),
    ]:
        opp = salesforce.create_record(
            "Opportunity",
            {"Name": name, "AccountId": accounts[account],
             "StageName": "Closed Won" if closed else "Negotiation/Review",
             "CloseDate": (today + dt.timedelta(days=days)).isoformat(), "IsClosed": closed},
        )
        opportunities[name] = opp
        salesforce.create_record(
            "OpportunityContactRole",
            {"OpportunityId": opp, "ContactId": contacts[primary], "IsPrimary": True, "Role": "Decision Maker"},
        )

    company = DemoCompany(
        users=[u[0] for u in USERS], sf_user_ids=sf_users, contact_ids=contacts, lead_ids=leads,
        account_ids=accounts, opportunity_ids=opportunities,
    )
    d = lambda n: today + dt.timedelta(days=n)  # noqa: E731 - a day n days from today
    meetings: list[tuple[str, str, dict[str, Any]]] = [
        ("external", "hank@globex.test", {
            "summary": "Globex renewal: pricing review", "location": "Zoom",
            "description": "Agenda: renewal terms, seat count.",
            "attendees": ["hank@globex.test", "alice@acme.test", "bob@acme.test", "marge@globex.test"],
            **_timed(d(1), 15, 60)}),
        ("internal", "alice@acme.test", {
            "summary": "Initech expansion workshop",
            "attendees": ["alice@acme.test", "conf-room-1@resource.calendar.google.com",
                          "bill@initech.test", "peter@initech.test", "carol@acme.test"],
            **_timed(d(2), 13, 90, "Europe/Berlin")}),
        ("lead", "bob@acme.test", {
            "summary": "Intro call with Soylent",
            "attendees": ["bob@acme.test", "zoe@soylent.test", "noreply@soylent.test"],
            **_timed(d(3), 17, 30, "America/New_York")}),
        ("weekly", "alice@acme.test", {
            "summary": "Umbrella weekly check-in",
            "attendees": ["alice@acme.test", "ada@umbrella.test"],
            "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=10"],
            **_timed(d(-7), 9, 30, "Europe/Berlin")}),
        ("all-day", "bob@acme.test", {
            "summary": "Globex onsite",
            "start": {"date": d(5).isoformat()}, "end": {"date": d(7).isoformat()},
            "attendees": ["bob@acme.test", "hank@globex.test"]}),
        ("private", "carol@acme.test", {
            "summary": "Initech pricing (confidential)", "visibility": "private",
            "attendees": ["carol@acme.test", "bill@initech.test"], **_timed(d(1), 10, 30)}),
        ("internal-only", "alice@acme.test", {
            "summary": "Team pipeline review",
            "attendees": ["alice@acme.test", "bob@acme.test", "carol@acme.test"], **_timed(d(1), 8, 30)}),
        ("out-of-office", "bob@acme.test", {
            "summary": "Vacation", "eventType": "outOfOffice", **_timed(d(10), 0, 24 * 60)}),
        ("declined", "ada@umbrella.test", {
            "summary": "Umbrella roadmap preview",
            "attendees": ["ada@umbrella.test", "carol@acme.test"], **_timed(d(4), 14, 60)}),
        ("converted-lead", "carol@acme.test", {
            "summary": "Catch-up with Olaf (converted lead)",
            "attendees": ["carol@acme.test", "old@soylent.test"], **_timed(d(2), 16, 30)}),
    ]
    for label, organizer, body in meetings:
        created = google.create_event(organizer, body)
        company.meetings[label] = created["id"]
    google.respond("carol@acme.test", company.meetings["declined"], "declined")
    return company


def write_config(
    directory: Path, google_url: str, salesforce_url: str, key_file: Path, ca_file: str, token: str
) -> Path:
    """The sandbox's calsync.toml (the access token is the emulator's: not a real secret)."""
    path = directory / "calsync.toml"
    path.write_text(
        f"""# Written by `calsync sandbox` for its emulators; edit freely and run
#   calsync --config {path} sync
[sync]
users = {json.dumps([u[0] for u in USERS])}
internal_domains = ["{DOMAIN}"]
exclude = ["*@resource.calendar.google.com", "noreply@*"]
lookback_days = 30
interval_minutes = 40
private_events = "skip"
activity_datetime_field = "{ACTIVITY_FIELD}"

[state]
path = "state.db"

[google]
service_account_file = "{key_file.name}"
api_endpoint = "{google_url}/"

[salesforce]
instance_url = "{salesforce_url}"
auth = "access_token"
access_token = "{token}"
ca_bundle = "{ca_file}"
external_id_field = "{KEY_FIELD}"
"""
    )
    return path


def describe_events(salesforce: Any) -> list[dict[str, str]]:
    """The Events in the emulated org, with the names behind their ids, for printing."""
    names: dict[str, str] = {}
    for obj in ("User", "Contact", "Lead", "Account", "Opportunity"):
        for row in salesforce.list_records(obj):
            names[row["Id"][:15]] = row.get("Name") or row.get("Username") or row["Id"]

    def name(value: Any) -> str:
        return names.get(str(value)[:15], "") if value else ""

    rows = []
    for row in sorted(salesforce.list_records("Event"),
                      key=lambda r: (str(r.get("StartDateTime")), name(r.get("OwnerId")))):
        rows.append({
            "Assigned To": name(row.get("OwnerId")),
            "Subject": str(row.get("Subject") or ""),
            "Start (UTC)": (row.get("ActivityDate") + " all day") if row.get("IsAllDayEvent")
            else str(row.get("StartDateTime") or "")[:16].replace("T", " "),
            "Name": name(row.get("WhoId")),
            "Related To": name(row.get("WhatId")),
        })
    return rows


def table(rows: list[dict[str, str]]) -> str:
    if not rows:
        return "(no Events)"
    headers = list(rows[0])
    widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in headers}
    lines = ["  ".join(h.ljust(widths[h]) for h in headers), "  ".join("-" * widths[h] for h in headers)]
    lines += ["  ".join(r[h].ljust(widths[h]) for h in headers) for r in rows]
    return "\n".join(lines)


def run_sandbox(
    directory: Path,
    google_port: int,
    salesforce_port: int,
    *,
    serve: bool = False,
    echo: Callable[[str], None] = print,
) -> int:
    """Start, seed, configure, sync once, print the Events; serve on until Ctrl-C if asked."""
    from calsync.core import config as config_module
    from calsync.core.errors import ConfigError
    from calsync.service.runtime import open_cycle

    directory = directory.resolve()
    # The emulators' own chatter is not what a person trying calsync wants to read.
    logging.getLogger("calsync.sandbox").setLevel(logging.WARNING)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in ("state.db", "state.db-wal", "state.db-shm"):
        (directory / stale).unlink(missing_ok=True)  # fresh emulators: old tokens mean nothing
    now = dt.datetime.now(dt.timezone.utc)
    google = GoogleEmulator()
    salesforce = SalesforceEmulator(state_dir=directory / "tls")
    try:
        google.start(port=google_port)
        salesforce.start(port=salesforce_port)
    except OSError as exc:
        google.stop()
        raise ConfigError(
            f"cannot listen on the sandbox ports ({exc.strerror}); pass --google-port 0 "
            "--salesforce-port 0 to pick free ones"
        ) from exc
    try:
        company = seed(google.backend, salesforce.backend, now)
        key = google.backend.create_service_account()
        key_file = directory / "google-service-account.json"
        key_file.write_text(json.dumps(key, indent=2))
        os.chmod(key_file, 0o600)
        token = salesforce.backend.create_session(company.users[0])
        path = write_config(directory, google.url, salesforce.url, key_file, str(salesforce.ca_file), token)
        os.chmod(path, 0o600)
        echo(f"Google Calendar emulator:  {google.url}  (control API {google.url}/_control/)")
        echo(f"Salesforce emulator:       {salesforce.url}  (CA {salesforce.ca_file})")
        echo(f"Demo company: {len(company.users)} salespeople, {len(company.contact_ids)} contacts, "
             f"{len(company.lead_ids)} leads, {len(company.opportunity_ids)} opportunities, "
             f"{len(company.meetings)} meetings")
        echo(f"Configuration: {path}")
        echo("")
        echo("Syncing once ...")
        cfg = config_module.load(path)
        with open_cycle(cfg) as cycle:
            result = cycle.run()
        for outcome in result.calendars.values():
            echo(f"  {outcome.user}: created {outcome.created}, updated {outcome.updated}, "
                 f"deleted {outcome.deleted}, skipped {outcome.skipped}, failed {outcome.failed}"
                 + ("" if outcome.ok else f"  FAILED: {outcome.error}"))
        echo(f"  Salesforce API calls: {result.salesforce_calls}")
        echo("")
        echo("Salesforce Events that landed:")
        # One line per call: `calsync`'s echo escapes control characters, a newline included.
        for line in table(describe_events(salesforce.backend)).splitlines():
            echo(line)
        if serve:
            echo("")
            echo(f"Emulators keep running; try `calsync --config {path} sync`. Ctrl-C stops.")
            stop = threading.Event()
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            try:
                stop.wait()
            except KeyboardInterrupt:
                pass
        return 0 if result.ok else 1
    finally:
        google.stop()
        salesforce.stop()
