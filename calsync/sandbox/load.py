"""A larger company for measuring: N meetings, each with its own customer Contact.

Used by `scripts/measure-first-sync` and the call-budget test: the first sync of N Events must
stay within the Salesforce call budget (at most 15 calls per 1,000 Events). It also measures the
directory refresh (directory.py): an idle cycle that is a refresh, and one after Salesforce-side
changes that affect 1,000 meetings (each gets an Opportunity its Contact is primary on).
"""

from __future__ import annotations

import datetime as dt
from typing import Any


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


def measure(count: int, external_id: bool = True, guests: int = 1) -> dict[str, Any]:
    """Seed the demo company plus `count` meetings, sync twice, and count calls and time."""
    import tempfile
    import time
    from pathlib import Path

    from calsync import config as config_module
    from calsync.runtime import open_cycle
    from calsync.sandbox.demo import seed, write_config
    from calsync.sandbox.google import GoogleEmulator
    from calsync.sandbox.salesforce import SalesforceEmulator

    with tempfile.TemporaryDirectory(prefix="calsync-measure-") as tmp:
        directory = Path(tmp)
        google, salesforce = GoogleEmulator().start(), SalesforceEmulator(state_dir=directory).start()
        try:
            now = dt.datetime.now(dt.timezone.utc)
            company = seed(google.backend, salesforce.backend, now)
            seed_meetings(google.backend, salesforce.backend, company.users, count, now, guests)
            # Salesforce's clock an hour on: the seeding is old news to the directory refresh, as
            # it would be in an org whose records were not all made a minute before calsync ran.
            salesforce.backend.session_lifetime = dt.timedelta(days=1)
            salesforce.backend.clock = lambda: dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
            key = directory / "key.json"
            import json

            key.write_text(json.dumps(google.backend.create_service_account()))
            token = salesforce.backend.create_session(company.users[0])
            path = write_config(directory, google.url, salesforce.url, key, salesforce.ca_file, token)
            if not external_id:  # creates then go through recorded intents, not upserts
                path.write_text("\n".join(
                    line for line in path.read_text().splitlines() if not line.startswith("external_id_field")
                ))
            every_cycle = directory / "refresh-every-cycle.toml"
            every_cycle.write_text(path.read_text().replace(
                "lookback_days = 30", "lookback_days = 30\ndirectory_refresh_minutes = 0"))
            figures: dict[str, Any] = {"meetings": count, "guests": guests, "external_id": external_id}

            def run(name: str, config_path: Path) -> None:
                before, kinds = salesforce.backend.api_calls, dict(salesforce.backend.calls_by_kind())
                began = time.monotonic()
                with open_cycle(config_module.load(config_path)) as cycle:
                    result = cycle.run()
                outcomes = result.calendars.values()
                figures[name] = {
                    "ok": result.ok,
                    "events_created": sum(c.created for c in outcomes),
                    "events_updated": sum(c.updated for c in outcomes),
                    "salesforce_calls": salesforce.backend.api_calls - before,
                    "by_kind": {k: v - kinds.get(k, 0) for k, v in salesforce.backend.calls_by_kind().items()
                                if v - kinds.get(k, 0)},
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
            figures["renamed"] = rename_meetings(google.backend, company.users, min(count, 1000))
            run("updates_after_renames", path)
            return figures
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
    import json
    import logging

    parser = argparse.ArgumentParser(description="Measure a first and a second sync of N extra meetings.")
    parser.add_argument("--meetings", type=int, default=1000)
    parser.add_argument("--guests", type=int, default=1, help="customer Contacts per meeting")
    parser.add_argument("--no-external-id", action="store_true",
                        help="configure no External ID field: creates use recorded intents")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("calsync").setLevel(logging.WARNING)
    print(json.dumps(measure(args.meetings, external_id=not args.no_external_id, guests=args.guests), indent=2))
