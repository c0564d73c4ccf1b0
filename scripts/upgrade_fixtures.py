"""Make the upgrade fixtures: state databases written by the code of each earlier schema version.

    scripts/make-upgrade-fixtures [--ref main] [--only m004_ownership ...] [--out DIR]

For every migration of calsync/state.py (at --ref), the last commit of --ref's first-parent
history whose state.py defines exactly the migrations up to it is that schema version's code.
Each is checked out into a temporary `git worktree` (outside this checkout, removed afterwards)
and this file is run again there with --scenario: with that version's calsync first on
PYTHONPATH, it starts that version's own emulators, seeds a small company (two salespeople, a
Contact, a Lead, an Opportunity, five meetings), runs that version's `python -m calsync sync`
twice (between them a rep edits an Event, a meeting moves, one is cancelled; a validation rule
refuses one meeting's Event, which stays parked), lets another rep edit an Event seconds after
the last sync, and writes

    tests/state/fixtures/<migration>.db    the state database as that version left it
    tests/state/fixtures/<migration>.json  what a test needs to rebuild the world it points at:
                                           the commit, the migrations applied, the configured
                                           users and [sync] settings, the Google meetings (ids,
                                           bodies), the Salesforce records (ids, audit fields)

Salesforce record ids come from the emulator's counter and the Google ids are fixed here, so
the ids are the same at every run; times are placed relative to the hour of the run, and the
sync tokens are random. The scenario uses only the emulators' seeding methods and the `calsync`
command line, which every version since the first has.

Nothing here imports today's calsync: the --scenario half must import the old one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "state" / "fixtures"
MIGRATION_RE = re.compile(r"^def (m\d{3}_\w+)\(", re.MULTILINE)

INTEGRATION_USER = "calsync@acme.test"  # the Salesforce user calsync signs in as
USERS = [  # email, first name, last name, time zone: each a Google calendar and a Salesforce user
    ("alice@acme.test", "Alice", "Archer", "Europe/Berlin"),
    ("bob@acme.test", "Bob", "Baker", "America/New_York"),
]
ACTIVITY_FIELD = "Calsync_Activity_DateTime__c"
SYNC_SETTINGS: dict[str, Any] = {
    "users": [u[0] for u in USERS],
    "internal_domains": ["acme.test"],
    "exclude": ["noreply@*"],
    # The fixtures keep the times of the day they were made: a test years later still lists them.
    "lookback_days": 3650,
    "interval_minutes": 40,
    "private_events": "skip",
    "activity_datetime_field": ACTIVITY_FIELD,
}
REP_NOTE = "Rep's notes before the upgrade: budget confirmed, send the quote."
LAST_MINUTE_NOTE = "Bob, just after calsync's last sync: Marge prefers mornings."
REFUSED_SUBJECT = "Upgrade D: refused by a validation rule"
REFUSAL = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
# Objects dumped from the emulator: everything the Events and the state's ids point at.
OBJECTS = ["User", "Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole", "Event",
           "EventRelation"]


# -- the orchestrator (today's checkout) ------------------------------------------------------


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def migrations_at(commit: str) -> tuple[str, ...]:
    try:
        text = git("show", f"{commit}:calsync/state.py")
    except subprocess.CalledProcessError:
        return ()
    return tuple(MIGRATION_RE.findall(text))


def schema_commits(ref: str) -> dict[str, str]:
    """Migration name -> the last first-parent commit of `ref` whose schema ends with it."""
    newest = migrations_at(ref)
    last: dict[tuple[str, ...], str] = {}
    for commit in git("rev-list", "--first-parent", "--reverse", ref).split():
        last[migrations_at(commit)] = commit
    found = {}
    for i, name in enumerate(newest):
        commit = last.get(newest[: i + 1])
        if commit is not None:  # a schema only ever seen on a side branch is no released one
            found[name] = commit
    return found


def make(ref: str, only: list[str], out: Path, python: str) -> None:
    commits = schema_commits(ref)
    unknown = set(only) - set(commits)
    if unknown:
        raise SystemExit(f"no such schema version on {ref}: {', '.join(sorted(unknown))}")
    out.mkdir(parents=True, exist_ok=True)
    for name, commit in commits.items():
        if only and name not in only:
            continue
        work = Path(tempfile.mkdtemp(prefix=f"calsync-fixture-{name}-"))
        tree = work / "tree"
        print(f"{name}: {commit[:10]} {git('log', '-1', '--format=%s', commit)[:90]}", flush=True)
        git("worktree", "add", "--detach", "--quiet", str(tree), commit)
        try:
            env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
            subprocess.run(
                [python, str(Path(__file__).resolve()), "--scenario", "--name", name,
                 "--commit", commit, "--out", str(out.resolve())],
                cwd=tree, env=env, check=True,
            )
        finally:
            git("worktree", "remove", "--force", str(tree))
            shutil.rmtree(work, ignore_errors=True)


# -- the scenario (run with the old calsync first on PYTHONPATH) ---------------------------------


def _when(day: dt.date, hour: int, minutes: int) -> dict[str, Any]:
    start = dt.datetime(day.year, day.month, day.day, hour, tzinfo=dt.timezone.utc)
    end = start + dt.timedelta(minutes=minutes)
    return {"start": {"dateTime": start.isoformat().replace("+00:00", "Z"), "timeZone": "UTC"},
            "end": {"dateTime": end.isoformat().replace("+00:00", "Z"), "timeZone": "UTC"}}


def _toml(tables: dict[str, dict[str, Any]]) -> str:
    lines = []
    for table, values in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        lines.append("")
    return "\n".join(lines)


def _sync(config: Path, label: str) -> None:
    done = subprocess.run([sys.executable, "-m", "calsync", "--config", str(config), "sync"],
                          capture_output=True, text=True, timeout=300)
    print(f"  sync {label}: exit {done.returncode}: {done.stdout.strip()}", flush=True)
    # 65 (or 1 before exit 65 existed): the parked record; anything else is a broken scenario.
    if done.returncode not in (0, 1, 65) or "Traceback" in done.stderr:
        raise SystemExit(f"sync {label} failed:\n{done.stdout}\n{done.stderr}")


def _rows(db: Path, sql: str) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def scenario(name: str, commit: str, out: Path) -> None:
    import calsync
    from calsync.sandbox.google import GoogleEmulator
    from calsync.sandbox.google.oauth import generate_private_key_pem
    from calsync.sandbox.salesforce import SalesforceEmulator

    here = Path(calsync.__file__).resolve().parent.parent
    if here != Path.cwd().resolve():
        raise SystemExit(f"imported calsync from {here}, not from the checkout of {commit}")
    work = Path(tempfile.mkdtemp(prefix="calsync-scenario-"))
    google = GoogleEmulator().start()
    sf = SalesforceEmulator(state_dir=work / "tls").start()
    try:
        g, s = google.backend, sf.backend
        sf_users = {}
        for email, first, last, zone in USERS:
            g.add_user(email, f"{first} {last}", zone)
            sf_users[email] = s.create_user(email, first_name=first, last_name=last, email=email)
        s.create_user(INTEGRATION_USER, first_name="Calsync", last_name="Integration")
        s.add_custom_field("Event", ACTIVITY_FIELD, "datetime", createable=True, updateable=True)
        globex = s.create_record("Account", {"Name": "Globex"})
        hank = s.create_record("Contact", {"FirstName": "Hank", "LastName": "Scorpio",
                                           "Email": "hank@globex.test", "AccountId": globex})
        s.create_record("Contact", {"FirstName": "Marge", "LastName": "Bouvier",
                                    "Email": "marge@globex.test", "AccountId": globex})
        s.create_record("Lead", {"FirstName": "Zoe", "LastName": "Sol", "Email": "zoe@soylent.test",
                                 "Company": "Soylent", "Status": "Open - Not Contacted"})
        today = dt.datetime.now(dt.timezone.utc).date()
        renewal = s.create_record("Opportunity", {
            "Name": "Globex renewal", "AccountId": globex, "StageName": "Negotiation/Review",
            "CloseDate": (today + dt.timedelta(days=30)).isoformat()})
        s.create_record("OpportunityContactRole", {"OpportunityId": renewal, "ContactId": hank,
                                                   "IsPrimary": True, "Role": "Decision Maker"})

        day = lambda n: today + dt.timedelta(days=n)  # noqa: E731 - n days from today
        meetings: dict[str, tuple[str, dict[str, Any]]] = {
            # label: (organizer, body); Google ids fixed (base32hex, reference A5)
            "A": ("alice@acme.test", {
                "id": "upgrade0001", "summary": "Upgrade A: Globex pricing", "location": "Zoom",
                "description": "Agenda: renewal terms.",
                "attendees": ["alice@acme.test", "hank@globex.test"], **_when(day(2), 10, 60)}),
            "B": ("alice@acme.test", {
                "id": "upgrade0002", "summary": "Upgrade B: Globex onboarding",
                "description": "Kick-off with Marge.",
                "attendees": ["alice@acme.test", "bob@acme.test", "marge@globex.test"],
                **_when(day(3), 14, 30)}),
            "C": ("bob@acme.test", {
                "id": "upgrade0003", "summary": "Upgrade C: Soylent intro",
                "attendees": ["bob@acme.test", "zoe@soylent.test"], **_when(day(4), 16, 45)}),
            "D": ("alice@acme.test", {
                "id": "upgrade0004", "summary": REFUSED_SUBJECT,
                "attendees": ["alice@acme.test", "hank@globex.test"], **_when(day(5), 9, 30)}),
            "E": ("bob@acme.test", {
                "id": "upgrade0005", "summary": "Upgrade E: cancelled before the upgrade",
                "attendees": ["bob@acme.test", "hank@globex.test"], **_when(day(6), 11, 30)}),
        }
        for organizer, body in meetings.values():
            g.create_event(organizer, dict(body))
        # A validation rule refuses meeting D's Event: the record is parked for a retry.
        s.fail_records(lambda r: r.get("Subject") == REFUSED_SUBJECT, REFUSAL,
                       "Subject: this meeting needs an approval", times=-1)

        key = g.create_service_account(private_key_pem=generate_private_key_pem())
        (work / "google.json").write_text(json.dumps(key))
        state = work / "state.db"
        config = work / "calsync.toml"
        config.write_text(_toml({
            "sync": SYNC_SETTINGS,
            "state": {"path": str(state)},
            "google": {"service_account_file": str(work / "google.json"),
                       "api_endpoint": google.url + "/"},
            "salesforce": {"instance_url": sf.url, "auth": "access_token",
                           "access_token": s.create_session(INTEGRATION_USER),
                           "ca_bundle": str(sf.ca_file)},
        }))
        _sync(config, "1 (first)")

        # Alice changes her Event of meeting A in Salesforce; then A moves an hour in Google,
        # and E is cancelled. Versions with m004_ownership keep her Description (`kept`),
        # earlier ones overwrite it: either way, the state is what that version made of it.
        events = {e["Subject"]: e for e in s.list_records("Event")}
        a_event = events[meetings["A"][1]["summary"]]
        s.update_record("Event", a_event["Id"], {"Description": REP_NOTE},
                        user_id=sf_users["alice@acme.test"], system=False)
        moved = _when(day(2), 11, 60)
        g.update_event("upgrade0001", moved)
        meetings["A"][1].update(moved)
        g.delete_event("upgrade0005")
        _sync(config, "2 (after the rep's edit and the move)")

        # Bob changes his Event of meeting B seconds after that sync, and the old version never
        # runs again: a person's edit the upgraded calsync must find on its own.
        events = {(e["Subject"], e["OwnerId"]): e for e in s.list_records("Event")}
        b_bob = events[(meetings["B"][1]["summary"], sf_users["bob@acme.test"])]
        s.update_record("Event", b_bob["Id"], {"Description": LAST_MINUTE_NOTE},
                        user_id=sf_users["bob@acme.test"], system=False)

        written = _rows(state, "SELECT * FROM written")
        retries = _rows(state, "SELECT * FROM retries")
        if sum(1 for r in written if r["sf_id"]) != 4 or len(retries) != 1:
            raise SystemExit(f"unexpected state: {len(written)} written, {len(retries)} retries")
        applied = [r["name"] for r in _rows(state, "SELECT name FROM _sqlite_migrations ORDER BY id")]
        if applied[-1] != name:
            raise SystemExit(f"{commit} applied {applied}, not up to {name}")

        out.mkdir(parents=True, exist_ok=True)
        target = out / f"{name}.db"
        target.unlink(missing_ok=True)
        source, copy = sqlite3.connect(f"file:{state}?mode=ro", uri=True), sqlite3.connect(target)
        source.backup(copy)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file (the WAL was folded in)
        copy.execute("VACUUM")
        copy.close()
        source.close()

        records = {
            obj: [{k: v for k, v in row.items() if v is not None}
                  for row in sorted(s.list_records(obj, include_deleted=True), key=lambda r: r["Id"])]
            for obj in OBJECTS
        }
        fixture = {
            "migration": name,
            "migrations": applied,
            "commit": commit,
            "commit_subject": subprocess.run(["git", "log", "-1", "--format=%s", commit],
                                             capture_output=True, text=True).stdout.strip(),
            "calsync_version": getattr(calsync, "__version__", None),
            "made_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "sync": SYNC_SETTINGS,
            "integration_user": INTEGRATION_USER,
            "rep_note": REP_NOTE,
            "last_minute_note": LAST_MINUTE_NOTE,
            "refusal": {"subject": REFUSED_SUBJECT, "status_code": REFUSAL},
            "google": {
                "users": [[email, f"{first} {last}", zone] for email, first, last, zone in USERS],
                "meetings": {label: {"organizer": org, "body": body}
                             for label, (org, body) in meetings.items()},
                "deleted": ["upgrade0005"],
            },
            "salesforce": {
                "custom_fields": [["Event", ACTIVITY_FIELD, "datetime"]],
                "users": {**sf_users, INTEGRATION_USER: s.user_by_username(INTEGRATION_USER)["Id"]},
                "records": records,
            },
        }
        (out / f"{name}.json").write_text(json.dumps(fixture, indent=1, sort_keys=True) + "\n")
        print(f"  wrote {target.name} ({target.stat().st_size} bytes) and {name}.json", flush=True)
    finally:
        google.stop()
        sf.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default="main", help="whose first-parent history (default main)")
    parser.add_argument("--only", action="append", default=[], metavar="MIGRATION",
                        help="only this schema version (repeatable)")
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--scenario", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--commit", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scenario:
        scenario(args.name, args.commit, args.out)
    else:
        make(args.ref, args.only, args.out, sys.executable)


if __name__ == "__main__":
    main()
