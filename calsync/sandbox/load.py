"""A larger company for measuring: N meetings, each with its own customer Contact.

Used by `scripts/measure-first-sync` and the call-budget test: the first sync of N Events must
stay within the Salesforce call budget (at most 15 calls per 1,000 Events). It also measures the
directory refresh (directory.py): an idle cycle that is a refresh, and one after Salesforce-side
changes that affect 1,000 meetings (each gets an Opportunity its Contact is primary on).

`--memory --per-calendar K` measures the first sync's peak memory instead: the N meetings go to
N/K extra salespeople (K each), and the first sync runs in a child process (as `calsync sync`
does), whose peak RSS (its VmHWM) is apart from the emulators'.
`--chunk M` sets the cycle's chunk (meetings planned and written together; 0: one chunk).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def seed_salespeople(google: Any, salesforce: Any, count: int) -> list[str]:
    """`count` more salespeople (rep00000@acme.test, ...), users of both emulators."""
    emails = [f"rep{i:05d}@acme.test" for i in range(count)]
    for email in emails:
        google.add_user(email, f"Rep {email[3:8]}", "UTC")
        salesforce.create_user(email, first_name="Rep", last_name=email[3:8], email=email)
    return emails


def seed_meetings(
    google: Any, salesforce: Any, owners: list[str], count: int, now: dt.datetime, guests: int = 1
) -> None:
    """`count` one-hour meetings spread over `owners`, each with `guests` distinct customer
    Contacts; every third meeting's first Contact is primary on an open Opportunity."""
    start = (now + dt.timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    for i in range(count):
        domain = f"customer{i:05d}.test"
        account = salesforce.create_record("Account", {"Name": f"Customer {i:05d}"})
        emails = [f"buyer{g}.{i:05d}@{domain}" for g in range(guests)]
        contacts = [
            salesforce.create_record(
                "Contact", {"FirstName": f"Buyer{g}", "LastName": f"{i:05d}", "Email": e, "AccountId": account}
            )
            for g, e in enumerate(emails)
        ]
        contact = contacts[0]
        if i % 3 == 0:
            opp = salesforce.create_record(
                "Opportunity",
                {"Name": f"Deal {i:05d}", "AccountId": account, "StageName": "Prospecting",
                 "CloseDate": (now.date() + dt.timedelta(days=30)).isoformat()},
            )
            salesforce.create_record(
                "OpportunityContactRole", {"OpportunityId": opp, "ContactId": contact, "IsPrimary": True}
            )
        begin = start + dt.timedelta(hours=i % 200, days=i // 200)
        google.create_event(owners[i % len(owners)], {
            "summary": f"Call with customer {i:05d}",
            "start": {"dateTime": begin.isoformat().replace("+00:00", "Z")},
            "end": {"dateTime": (begin + dt.timedelta(hours=1)).isoformat().replace("+00:00", "Z")},
            "attendees": [owners[i % len(owners)], *emails],
        })


@dataclass
class Sandbox:
    """Both emulators on ephemeral ports with the demo company, and a configuration for them."""

    directory: Path
    google: Any  # GoogleEmulator
    salesforce: Any  # SalesforceEmulator
    company: Any  # DemoCompany
    now: dt.datetime
    config: Path

    def set_users(self, users: list[str]) -> None:
        """The configuration's [sync] users."""
        text = self.config.read_text()
        line = text.split("users = ", 1)[1].split("\n", 1)[0]
        self.config.write_text(text.replace(line, json.dumps(users), 1))

    def salesforce_calls(self) -> tuple[int, dict[str, int]]:
        return self.salesforce.backend.api_calls, dict(self.salesforce.backend.calls_by_kind())

    def calls_since(self, before: tuple[int, dict[str, int]]) -> dict[str, Any]:
        total, kinds = before
        now_total, now_kinds = self.salesforce_calls()
        return {"salesforce_calls": now_total - total,
                "by_kind": {k: v - kinds.get(k, 0) for k, v in now_kinds.items() if v - kinds.get(k, 0)}}


@contextmanager
def sandbox(prefix: str) -> Iterator[Sandbox]:
    """Start both emulators in a temporary directory, seed the demo company, write a config."""
    import tempfile

    from calsync.sandbox.demo import seed, write_config
    from calsync.sandbox.google import GoogleEmulator
    from calsync.sandbox.salesforce import SalesforceEmulator

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        directory = Path(tmp)
        google, salesforce = GoogleEmulator().start(), SalesforceEmulator(state_dir=directory).start()
        try:
            now = dt.datetime.now(dt.timezone.utc)
            company = seed(google.backend, salesforce.backend, now)
            salesforce.backend.session_lifetime = dt.timedelta(days=1)
            key = directory / "key.json"
            key.write_text(json.dumps(google.backend.create_service_account()))
            token = salesforce.backend.create_session(company.users[0])
            path = write_config(directory, google.url, salesforce.url, key, salesforce.ca_file, token)
            yield Sandbox(directory, google, salesforce, company, now, path)
        finally:
            google.stop()
            salesforce.stop()


def rename_meetings(google: Any, owners: list[str], count: int) -> int:
    """Rename `count` of the seeded meetings in Google (organizer's calendar, so every copy)."""
    renamed = 0
    for owner in owners:
        for item in google.calendar_events(owner):
            if renamed == count:
                return renamed
            summary = item.get("summary") or ""
            if summary.startswith("Call with customer") and item.get("status") != "cancelled" \
                    and item.get("organizer", {}).get("self"):
                google.update_event(item["id"], {"summary": summary + " (renamed)"})
                renamed += 1
    return renamed


def measure(count: int, external_id: bool = True, guests: int = 1) -> dict[str, Any]:
    """Seed the demo company plus `count` meetings, sync twice, and count calls and time."""
    import time

    from calsync.core import config as config_module
    from calsync.service.runtime import open_cycle

    with sandbox("calsync-measure-") as box:
        salesforce, now, path = box.salesforce, box.now, box.config
        seed_meetings(box.google.backend, salesforce.backend, box.company.users, count, now, guests)
        # Salesforce's clock an hour on: the seeding is old news to the directory refresh, as
        # it would be in an org whose records were not all made a minute before calsync ran.
        salesforce.backend.clock = lambda: dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
        if not external_id:  # creates then go through recorded intents, not upserts
            path.write_text("\n".join(
                line for line in path.read_text().splitlines() if not line.startswith("external_id_field")
            ))
        every_cycle = box.directory / "refresh-every-cycle.toml"
        every_cycle.write_text(path.read_text().replace(
            "lookback_days = 30", "lookback_days = 30\ndirectory_refresh_minutes = 0"))
        figures: dict[str, Any] = {"meetings": count, "guests": guests, "external_id": external_id}

        def run(name: str, config_path: Path) -> None:
            before = box.salesforce_calls()
            began = time.monotonic()
            with open_cycle(config_module.load(config_path)) as cycle:
                result = cycle.run()
            outcomes = result.calendars.values()
            figures[name] = {
                "ok": result.ok,
                "events_created": sum(c.created for c in outcomes),
                "events_updated": sum(c.updated for c in outcomes),
                **box.calls_since(before),
                "google_calls": sum(c.google_calls for c in outcomes),
                "seconds": round(time.monotonic() - began, 2),
            }

        run("first", path)
        run("second", path)  # idle, and not a refresh (directory_refresh_minutes = 60)
        run("idle_refresh", every_cycle)  # idle, but a refresh: asks what changed
        affected = _new_opportunities(salesforce.backend, min(count, 1000), now)
        figures["refresh_affecting"] = affected
        run("refresh_after_changes", every_cycle)
        # Meetings renamed in Google: each update is read back first (ownership.py).
        figures["renamed"] = rename_meetings(box.google.backend, box.company.users, min(count, 1000))
        run("updates_after_renames", path)
        return figures


def measure_memory(count: int, per_calendar: int, chunk: int | None = None) -> dict[str, Any]:
    """The first sync of `count` meetings, `per_calendar` to each of count/per_calendar extra
    salespeople, in a child process: its peak RSS, time and Salesforce calls."""
    import subprocess
    import sys
    import time

    with sandbox("calsync-memory-") as box:
        reps = seed_salespeople(box.google.backend, box.salesforce.backend, -(-count // per_calendar))
        seed_meetings(box.google.backend, box.salesforce.backend, reps, count, box.now)
        box.set_users(box.company.users + reps)
        before = box.salesforce_calls()
        began = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", "calsync.sandbox.load", "--child", str(box.config),
             *(["--chunk", str(chunk)] if chunk is not None else [])],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )
        out, _ = child.communicate()
        result = json.loads(out or b"{}")
        return {
            "meetings": count, "per_calendar": per_calendar, "calendars": len(reps) + 3,
            "chunk": chunk, "ok": result.get("ok"), "events_created": result.get("created"),
            "peak_rss_mb": round(result.get("peak_rss_kb", 0) / 1024, 1),
            "seconds": round(time.monotonic() - began, 1),
            **box.calls_since(before),
        }


def _child(config_path: str, chunk: int | None) -> None:
    """One cycle over every calendar, as `calsync sync` runs it; prints a JSON summary."""
    import logging

    from calsync.core import config as config_module
    from calsync.engine import cycle as cycle_module
    from calsync.service.runtime import open_cycle

    logging.disable(logging.CRITICAL)
    if chunk is not None:
        cycle_module.CHUNK_MEETINGS = chunk if chunk > 0 else 10**12
    with open_cycle(config_module.load(config_path)) as cycle:
        result = cycle.run()
    print(json.dumps({"ok": result.ok, "peak_rss_kb": _peak_rss_kb(),
                      "created": sum(c.created for c in result.calendars.values())}))


def _peak_rss_kb() -> int:
    """This process's peak resident memory since its exec (VmHWM). Not ru_maxrss: that keeps
    the high-water mark of the parent's image copied by fork, before exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def _new_opportunities(salesforce: Any, count: int, now: dt.datetime) -> int:
    """Salesforce-side changes only: `count` seeded Contacts without an Opportunity become
    primary on a new one, so their meetings' Related To must move from Account to Opportunity."""
    contacts = [r for r in salesforce.list_records("Contact") if r["Email"].startswith("buyer0.")]
    roles = {r["ContactId"] for r in salesforce.list_records("OpportunityContactRole")}
    changed = 0
    for contact in contacts:
        if changed == count:
            break
        if contact["Id"] in roles:
            continue
        opp = salesforce.create_record("Opportunity", {
            "Name": f"Upsell {contact['LastName']}", "AccountId": contact["AccountId"],
            "StageName": "Prospecting", "CloseDate": (now.date() + dt.timedelta(days=60)).isoformat()})
        salesforce.create_record("OpportunityContactRole",
                                 {"OpportunityId": opp, "ContactId": contact["Id"], "IsPrimary": True})
        changed += 1
    return changed


if __name__ == "__main__":
    import argparse
    import logging

    parser = argparse.ArgumentParser(description="Measure a first and a second sync of N extra meetings.")
    parser.add_argument("--meetings", type=int, default=1000)
    parser.add_argument("--guests", type=int, default=1, help="customer Contacts per meeting")
    parser.add_argument("--no-external-id", action="store_true",
                        help="configure no External ID field: creates use recorded intents")
    parser.add_argument("--memory", action="store_true",
                        help="measure the first sync's peak RSS in a child process instead")
    parser.add_argument("--per-calendar", type=int, default=50,
                        help="--memory: meetings per extra salesperson")
    parser.add_argument("--chunk", type=int, default=None,
                        help="--memory: meetings per chunk (0: everything in one chunk)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("calsync").setLevel(logging.WARNING)
    if args.child:
        _child(args.child, args.chunk)
    elif args.memory:
        print(json.dumps(measure_memory(args.meetings, args.per_calendar, args.chunk), indent=2))
    else:
        print(json.dumps(measure(args.meetings, external_id=not args.no_external_id, guests=args.guests), indent=2))
