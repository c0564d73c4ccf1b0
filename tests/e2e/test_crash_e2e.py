"""SIGKILL at the worst instants: the Salesforce write lands, the process never records it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from calsync.sandbox.demo import KEY_FIELD
from calsync.sandbox.server import Fault


def start_sync(path):
    return subprocess.Popen(
        [sys.executable, "-m", "calsync", "--config", str(path), "sync"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def kill_while_in_flight(path, sf_emu, method):
    """Start a sync, SIGKILL it once its `method` Collections call is sent, and let the
    emulator's delayed answer (a Fault with delay=1.5 set by the caller) land afterwards."""
    seen = len(sf_emu.requests_seen)
    proc = start_sync(path)
    deadline = time.monotonic() + 30
    while not any(m == method for m, _ in list(sf_emu.requests_seen)[seen:]):
        assert proc.poll() is None and time.monotonic() < deadline, f"no {method} seen"
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    time.sleep(2.0)  # the write lands after the client is gone


def wait_for_write(sf_emu, proc, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any("composite/sobjects" in path for _, path in list(sf_emu.requests_seen)):
            return
        if proc.poll() is not None:
            pytest.fail("calsync finished before writing")
        time.sleep(0.01)
    pytest.fail("no Collections write seen")


def assert_exactly_the_demo_events(sf_emu):
    rows = sf_emu.backend.list_records("Event")
    counts = Counter((r["Subject"], r["OwnerId"]) for r in rows)
    assert len(rows) == 7, sorted(counts)
    assert max(counts.values()) == 1


@pytest.mark.parametrize("external_id", [None, KEY_FIELD])
def test_sigkill_while_the_create_is_in_flight_leaves_no_duplicate(make_config, sync, sf_emu, external_id):
    path = make_config(salesforce={"external_id_field": external_id})
    # The server holds the create for a moment and then performs it, whoever is still listening.
    sf_emu.faults.add(Fault(delay=1.5, method="POST", path_prefix="/services/data/v59.0/composite/sobjects"))
    proc = start_sync(path)
    wait_for_write(sf_emu, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    time.sleep(2.0)  # the write lands after the client is gone
    assert len(sf_emu.backend.list_records("Event")) == 7
    result = sync(path)
    assert result.ok
    assert_exactly_the_demo_events(sf_emu)
    assert sync(path).salesforce_calls == 0


@pytest.mark.parametrize("state_engine", ["sqlite", "postgres"])  # CI runs it on both
def test_sigkill_at_random_instants_then_a_clean_run_converges(make_config, sync, sf_emu, google_emu, company):
    path = make_config()
    rng = random.Random(20261125)
    for round_ in range(4):
        if round_ == 2:
            google_emu.backend.update_event(company.meetings["external"], {"summary": "Globex renewal v2"})
        proc = start_sync(path)
        time.sleep(rng.uniform(0.3, 1.5))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    result = sync(path)
    assert result.ok, {u: c.error for u, c in result.calendars.items()}
    rows = sf_emu.backend.list_records("Event")
    counts = Counter((r["Subject"], r["OwnerId"]) for r in rows)
    assert len(rows) == 7 and max(counts.values()) == 1
    assert sum(1 for r in rows if r["Subject"] == "Globex renewal v2") == 2
    assert sync(path).salesforce_calls == 0


def test_sigkill_while_an_update_is_in_flight_is_not_taken_for_a_persons_edit(
    make_config, sync, sf_emu, google_emu, company
):
    # Issue 10: calsync keeps fields people change in Salesforce. Its own update, landed after
    # the process died, must not look like one: the next renames still reach the Event.
    path = make_config()
    assert sync(path).ok
    google_emu.backend.update_event(company.meetings["external"], {"summary": "Globex renewal v2"})
    sf_emu.faults.add(Fault(delay=1.5, method="PATCH", path_prefix="/services/data/v59.0/composite/sobjects"))
    kill_while_in_flight(path, sf_emu, "PATCH")
    assert sum(1 for r in sf_emu.backend.list_records("Event") if r["Subject"] == "Globex renewal v2") == 2
    google_emu.backend.update_event(company.meetings["external"], {"summary": "Globex renewal v3"})
    result = sync(path)
    assert result.ok
    assert sum(1 for r in sf_emu.backend.list_records("Event") if r["Subject"] == "Globex renewal v3") == 2
    assert_exactly_the_demo_events(sf_emu)
    assert sync(path).salesforce_calls == 0


def test_sigkill_while_a_delete_is_in_flight_is_not_taken_for_a_persons_delete(
    make_config, sync, sf_emu, google_emu, company
):
    # An Event a person deletes stays deleted (issue 10); one calsync deleted itself, landed
    # after the process died, must not: the meeting wanted again gets its Event back.
    path = make_config()
    assert sync(path).ok
    lead = company.meetings["lead"]
    google_emu.backend.update_event(lead, {"attendees": ["bob@acme.test"]})  # no Lead left
    sf_emu.faults.add(Fault(delay=1.5, method="DELETE", path_prefix="/services/data/v59.0/composite/sobjects"))
    kill_while_in_flight(path, sf_emu, "DELETE")
    assert not [r for r in sf_emu.backend.list_records("Event") if r["Subject"] == "Intro call with Soylent"]
    assert sync(path).ok
    google_emu.backend.update_event(lead, {"attendees": ["bob@acme.test", "zoe@soylent.test"]})
    assert sync(path).ok
    assert len([r for r in sf_emu.backend.list_records("Event") if r["Subject"] == "Intro call with Soylent"]) == 1
    assert_exactly_the_demo_events(sf_emu)


def test_sigkill_while_a_delete_is_in_flight_then_the_meeting_wanted_again_before_any_sync(
    make_config, sync, sf_emu, google_emu, company
):
    # Issue 16 (chaos): the delete lands after the process died, and the meeting is wanted
    # again before the next sync. calsync's own delete is not a person's: the Event comes back.
    path = make_config()
    assert sync(path).ok
    lead = company.meetings["lead"]
    google_emu.backend.update_event(lead, {"attendees": ["bob@acme.test"]})  # no Lead left
    sf_emu.faults.add(Fault(delay=1.5, method="DELETE", path_prefix="/services/data/v59.0/composite/sobjects"))
    kill_while_in_flight(path, sf_emu, "DELETE")
    assert not [r for r in sf_emu.backend.list_records("Event") if r["Subject"] == "Intro call with Soylent"]
    google_emu.backend.update_event(lead, {"attendees": ["bob@acme.test", "zoe@soylent.test"]})
    assert sync(path).ok
    assert len([r for r in sf_emu.backend.list_records("Event") if r["Subject"] == "Intro call with Soylent"]) == 1
    assert_exactly_the_demo_events(sf_emu)
    assert sync(path).salesforce_calls == 0
