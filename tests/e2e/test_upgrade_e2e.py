"""An upgrade, end to end: a state database written by each earlier schema version's own code
(tests/state/fixtures, scripts/make-upgrade-fixtures) synced by today's code.

Upgrading calsync changes neither Google nor Salesforce, so each test first rebuilds the world
the old version left: the Salesforce records with their ids and audit fields
(`restore_records`), the Google meetings with their ids, and the sync tokens the state holds
(`adopt_sync_token`). Then: the first run keeps a copy and migrates, the parked record is
retried, a sales rep edits Events in Salesforce while their meetings move and one is cancelled
in Google, and today's code syncs.

Legacy rows (written before m004_ownership) carry no per-field hashes: a person's change shows
only in the Event's LastModifiedDate (later than calsync's write by more than ownership.SKEW) or
in its LastModifiedById (someone other than calsync's integration user). The assertions marked
LEGACY need the second (ownership.edited, issue 16): the last one fails without it, and Alice's
edit after the upgrade also would in a run less than SKEW after the fixtures were made.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
import stat
from pathlib import Path

import pytest

import calsync
from calsync.core import config as config_module
from calsync.engine import parked
from calsync.service.runtime import open_cycle
from calsync.state.store import migrations

FIXTURES = Path(__file__).parents[1] / "state" / "fixtures"
NAMES = sorted(p.stem for p in FIXTURES.glob("*.json"))
# Parents before children: an Event's WhoId and WhatId, a relation's EventId.
RESTORE_ORDER = ["User", "Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole", "Event",
                 "EventRelation"]
ALICE, BOB = "alice@acme.test", "bob@acme.test"


def _toml(tables: dict[str, dict]) -> str:
    return "\n".join(f"[{t}]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
                     for t, values in tables.items())


def rebuild(name: str, tmp_path: Path, google_emu, sf_emu, google_private_key: str,
            tokens_kept: bool = True) -> tuple[Path, dict]:
    """The world the fixture's calsync left: returns (config path, fixture). `tokens_kept=False`:
    Google no longer takes the stored sync tokens (a long stop: 410, a full listing)."""
    fixture = json.loads((FIXTURES / f"{name}.json").read_text())
    sf, google = sf_emu.backend, google_emu.backend
    for obj, field, kind in fixture["salesforce"]["custom_fields"]:
        sf.add_custom_field(obj, field, kind, createable=True, updateable=True)
    for obj in RESTORE_ORDER:
        sf.restore_records(obj, fixture["salesforce"]["records"][obj])
    for email, display, zone in fixture["google"]["users"]:
        google.add_user(email, display, zone)
    for meeting in fixture["google"]["meetings"].values():
        google.create_event(meeting["organizer"], meeting["body"])
    for event_id in fixture["google"]["deleted"]:
        google.delete_event(event_id)

    state = tmp_path / "state.db"
    shutil.copyfile(FIXTURES / f"{name}.db", state)
    state.chmod(0o600)
    conn = sqlite3.connect(state)
    for user, token in conn.execute("SELECT user, sync_token FROM calendars"):
        if tokens_kept:
            google.adopt_sync_token(user, token)
    conn.close()

    key_file = tmp_path / "google-service-account.json"
    key_file.write_text(json.dumps(google.create_service_account(private_key_pem=google_private_key)))
    config = tmp_path / "calsync.toml"
    config.write_text(_toml({
        "sync": fixture["sync"],
        "state": {"path": str(state)},
        "google": {"service_account_file": str(key_file), "api_endpoint": google_emu.url + "/"},
        "salesforce": {"instance_url": sf_emu.url, "auth": "access_token",
                       "access_token": sf.create_session(fixture["integration_user"]),
                       "ca_bundle": str(sf_emu.ca_file)},
    }))
    return config, fixture


def sync(config: Path, retry_parked: bool = False):
    cfg = config_module.load(config)
    with open_cycle(cfg) as cycle:
        if retry_parked:  # as `calsync retry`: the parked records due now, one cycle
            parked.make_due(cycle.store, parked.select(cycle.store, [], None),
                            dt.datetime.now(dt.timezone.utc))
        return cycle.run(None)


def live_events(sf_emu, subject_has: str) -> list[dict]:
    return [e for e in sf_emu.backend.list_records("Event") if subject_has in (e["Subject"] or "")]


def one(sf_emu, subject_has: str, owner_id: str) -> dict:
    found = [e for e in live_events(sf_emu, subject_has) if e["OwnerId"] == owner_id]
    assert len(found) == 1, (subject_has, found)
    return found[0]


def utc(day_time: str) -> str:
    return dt.datetime.fromisoformat(day_time.replace("Z", "+00:00")).strftime("%Y-%m-%dT%H:%M:%S")


def moved(body: dict, hours: int) -> dict:
    def shift(value: str) -> str:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00")) + dt.timedelta(hours=hours)
        return at.isoformat().replace("+00:00", "Z")

    return {"start": {"dateTime": shift(body["start"]["dateTime"]), "timeZone": "UTC"},
            "end": {"dateTime": shift(body["end"]["dateTime"]), "timeZone": "UTC"}}


@pytest.mark.parametrize(("name", "tokens"), [(n, "kept") for n in NAMES]
                         + [(NAMES[0], "expired"), (NAMES[-1], "expired")])
def test_an_upgraded_state_keeps_the_reps_edits_and_the_canceled_meeting(
    name, tokens, tmp_path, google_emu, sf_emu, google_private_key
):
    config, fixture = rebuild(name, tmp_path, google_emu, sf_emu, google_private_key, tokens == "kept")
    legacy = "m004_ownership" not in fixture["migrations"]
    ids = fixture["salesforce"]["users"]
    meetings = {label: m["body"] for label, m in fixture["google"]["meetings"].items()}
    restored = {e["Id"]: e for e in sf_emu.backend.list_records("Event")}

    # The first run after the upgrade: a copy, the migrations, and nothing in Salesforce touched.
    result = sync(config)
    assert result.ok
    migrated = len(fixture["migrations"]) < len(migrations._migrations)
    copy = tmp_path / f"state.db.before-{calsync.__version__}"
    assert copy.exists() == migrated
    if migrated:
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    # Tokens kept: an incremental listing with the tokens the old version stored.
    assert result.calendars and all(o.full_sync == (tokens == "expired") for o in result.calendars.values())
    for event in sf_emu.backend.list_records("Event"):
        if event["Id"] in restored:
            assert event == restored[event["Id"]], "a restored Event changed with no change anywhere"

    # The record Salesforce refused before the upgrade, retried now: created once.
    assert sync(config, retry_parked=True).ok
    one(sf_emu, "Upgrade D", ids[ALICE])

    # Alice and Bob edit their Events in Salesforce; in Google, B moves, C is cancelled, A moves.
    b_alice = one(sf_emu, "Upgrade B", ids[ALICE])
    sf_emu.backend.update_record("Event", b_alice["Id"], {
        "Subject": "Onboarding with Marge (agenda agreed)", "Description": "Alice: bring the contract."},
        user_id=ids[ALICE])
    c_bob = one(sf_emu, "Upgrade C", ids[BOB])
    sf_emu.backend.update_record("Event", c_bob["Id"], {"Description": "Bob: Zoe asked for a call in Q3."},
                                 user_id=ids[BOB])
    google_emu.backend.update_event("upgrade0002", moved(meetings["B"], 2))
    google_emu.backend.delete_event("upgrade0003")
    google_emu.backend.update_event("upgrade0001", moved(meetings["A"], 24))
    assert sync(config).ok

    # Times follow Google everywhere.
    new_b = utc(moved(meetings["B"], 2)["start"]["dateTime"])
    b_alice = event_by_id(sf_emu, b_alice["Id"])
    b_bob = event_by_id(sf_emu, one(sf_emu, "Upgrade B", ids[BOB])["Id"])
    a_alice = one(sf_emu, "Upgrade A", ids[ALICE])
    assert b_alice["StartDateTime"].startswith(new_b) and b_bob["StartDateTime"].startswith(new_b)
    assert a_alice["StartDateTime"].startswith(utc(moved(meetings["A"], 24)["start"]["dateTime"]))

    # A's Description: the rep's note kept since m004 (recorded as `kept`); before m004 the old
    # code had overwritten it with Google's, calsync's own write, which is no person's edit.
    assert a_alice["Description"] == (meetings["A"]["description"] if legacy else fixture["rep_note"])

    # LEGACY: Alice's Subject and Description of B, changed after the upgrade, are hers.
    assert (b_alice["Subject"], b_alice["Description"]) == (
        "Onboarding with Marge (agenda agreed)", "Alice: bring the contract.")

    # LEGACY: the cancelled meeting's Event Bob annotated is kept, marked, with his note.
    c_after = event_by_id(sf_emu, c_bob["Id"])
    assert not c_after["IsDeleted"], "the Event Bob annotated was deleted with its meeting"
    assert c_after["Subject"].startswith("Canceled: ")
    assert c_after["Description"] == "Bob: Zoe asked for a call in Q3."

    # Never a duplicate: the live Events are A, B twice, C (kept) and D; E stays deleted.
    d_alice = one(sf_emu, "Upgrade D", ids[ALICE])
    live = {e["Id"] for e in sf_emu.backend.list_records("Event")}
    assert live == {a_alice["Id"], b_alice["Id"], b_bob["Id"], c_bob["Id"], d_alice["Id"]}
    assert live_events(sf_emu, "Upgrade E") == []

    # LEGACY: Bob's note on his B, made seconds after the old version's last sync (within
    # ownership.SKEW of calsync's write, so LastModifiedDate cannot tell), is his too: Bob, not
    # calsync's integration user, modified the Event last.
    assert b_bob["Description"] == fixture["last_minute_note"], "Bob's last-minute note was overwritten"


def event_by_id(sf_emu, sf_id: str) -> dict:
    return next(e for e in sf_emu.backend.list_records("Event", include_deleted=True) if e["Id"] == sf_id)
