"""Two worlds for tests that compare a run under faults with a fault-free reference (issue 16).

A world is a pair of emulators seeded with the demo company, a configuration for them and the
meetings a script makes, by handle: a script's meetings get the same Google event ids and
iCalUIDs in every world, so two worlds that went through the same script can be compared Event
by Event (`diff`), ids replaced by the names behind them.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from calsync.core import config as config_module
from calsync.service.runtime import open_cycle
from calsync.sandbox.demo import ACTIVITY_FIELD, seed, write_config
from calsync.sandbox.google import GoogleEmulator
from calsync.sandbox.salesforce import SalesforceEmulator

NOW = dt.datetime.now(dt.timezone.utc).replace(minute=0, second=0, microsecond=0)
Change = tuple[str, str, dict[str, Any]]  # (action, meeting handle, arguments)


def times(day: int, hour: int, minutes: int) -> dict[str, Any]:
    start = NOW.replace(hour=hour) + dt.timedelta(days=day)
    end = start + dt.timedelta(minutes=minutes)
    return {"start": {"dateTime": start.isoformat().replace("+00:00", "Z"), "timeZone": "UTC"},
            "end": {"dateTime": end.isoformat().replace("+00:00", "Z"), "timeZone": "UTC"}}



@dataclass
class World:
    directory: Path
    google: GoogleEmulator
    salesforce: SalesforceEmulator
    config: Path
    ids: dict[str, str] = field(default_factory=dict)  # handle -> Google event id
    organizers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(
        cls, directory: Path, external_id: bool, tls: Path | None = None, google_key: str | None = None,
        new_state: Callable[[], str] | None = None,
    ) -> "World":
        """`tls`: where the Salesforce emulator keeps its CA; `google_key`: the service account's
        private key (PEM). Both can be shared between worlds: making them is slow. `new_state`:
        a fresh PostgreSQL database's URL for the world's state (else state.db beside it)."""
        directory.mkdir(parents=True, exist_ok=True)
        google = GoogleEmulator().start()
        salesforce = SalesforceEmulator(state_dir=tls or directory / "tls").start()
        company = seed(google.backend, salesforce.backend, NOW)
        key = directory / "google-service-account.json"
        key.write_text(json.dumps(google.backend.create_service_account(private_key_pem=google_key)))
        token = salesforce.backend.create_session(company.users[0])
        path = write_config(directory, google.url, salesforce.url, key, str(salesforce.ca_file), token)
        if not external_id:
            path.write_text(path.read_text().replace('external_id_field = "Calsync_Key__c"\n', ""))
        if new_state is not None:
            text = path.read_text()
            assert '[state]\npath = "state.db"\n' in text
            path.write_text(text.replace('[state]\npath = "state.db"\n', f'[state]\nurl = "{new_state()}"\n'))
        world = cls(directory, google, salesforce, path)
        world.ids = {label: event_id for label, event_id in company.meetings.items()}
        return world

    def stop(self) -> None:
        self.google.stop()
        self.salesforce.stop()
        if "url = " in self.config.read_text():
            from calsync.state.postgres import close_pools

            close_pools()  # this process's idle connections to the world's database: the
            # cluster allows 200, and the fault tests start a world per step (reopened on use)

    def apply(self, changes: list[Change]) -> None:
        backend = self.google.backend
        for action, handle, args in changes:
            if action == "create":
                body = {**args["body"], "id": handle, "iCalUID": f"{handle}@chaos.test"}
                backend.create_event(args["organizer"], body)
                self.ids[handle] = handle
                self.organizers[handle] = args["organizer"]
            elif action == "update":
                backend.update_event(self.ids[handle], args)
            elif action == "attendees":
                organizer = self.organizers[handle]
                backend.update_event(self.ids[handle], {
                    "attendees": list(dict.fromkeys([organizer, *args["guests"]]))})
            elif action == "cancel":
                backend.delete_event(self.ids[handle])

    def sync_in_process(self) -> None:
        with open_cycle(config_module.load(self.config)) as cycle:
            result = cycle.run()
        assert result.ok, {u: c.error for u, c in result.calendars.items()}

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "calsync", "--config", str(self.config), *args],
            capture_output=True, text=True, timeout=timeout,
        )

    def events(self) -> list[tuple[tuple[str, str], tuple[Any, ...]]]:
        """Every Event as ((owner, Subject), its other values), ids replaced by names."""
        backend = self.salesforce.backend
        names: dict[str, str] = {}
        for obj, label in (("User", "Email"), ("Contact", "Email"), ("Lead", "Email"),
                           ("Account", "Name"), ("Opportunity", "Name")):
            for row in backend.list_records(obj):
                names[row["Id"][:15]] = f"{obj}:{row.get(label)}"

        def name(value: Any) -> str | None:
            return names.get(str(value)[:15], str(value)) if value else None

        found = []
        for row in backend.list_records("Event"):
            found.append(((name(row.get("OwnerId")) or "", str(row.get("Subject"))), (
                row.get("StartDateTime"), row.get("EndDateTime"), row.get("IsAllDayEvent"),
                row.get("ActivityDate"), row.get("DurationInMinutes"), row.get("Location"),
                row.get("Description"), name(row.get("WhoId")), name(row.get("WhatId")),
                row.get(ACTIVITY_FIELD), row.get("Type"), row.get("ShowAs"), row.get("IsPrivate"),
            )))
        return found


@dataclass
class Diff:
    """How a world's Events differ from a reference's."""

    events: int  # in the reference
    duplicates: int = 0
    missing: list[Any] = field(default_factory=list)
    extra: list[Any] = field(default_factory=list)
    differing: list[Any] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return not (self.duplicates or self.missing or self.extra or self.differing)

    def line(self) -> str:
        return (f"{self.events} Events in the reference; duplicates {self.duplicates}, missing "
                f"{len(self.missing)}, extra {len(self.extra)}, differing {len(self.differing)}")


def diff(world: World, reference: World) -> Diff:
    want = dict(reference.events())
    rows = world.events()
    got = dict(rows)
    return Diff(
        events=len(want),
        duplicates=sum(n - 1 for n in Counter(key for key, _ in rows).values()),
        missing=sorted(set(want) - set(got)),
        extra=sorted(set(got) - set(want)),
        differing=sorted((k, got[k], want[k]) for k in set(want) & set(got) if got[k] != want[k]),
    )
