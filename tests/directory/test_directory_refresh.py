"""directory.refresh() against the Salesforce emulator through SalesforceOrg (real simple-salesforce).

Each test starts the watermark (as a first sync would), lets time pass on a shared injected
clock, changes something in the org, and checks which indexed meetings get queued and what it
cost in Salesforce calls.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator

import pytest

from calsync.engine import directory
from calsync.engine.directory import CLAIM, CLAIM_LEASE, WATERMARK, RefreshResult, refresh
from calsync.core.errors import QuotaExhausted
from calsync.salesforce.org import SalesforceOrg
from calsync.sandbox.demo import DemoCompany
from calsync.sandbox.salesforce import SalesforceEmulator
from calsync.sandbox.salesforce.errors import request_limit_fault
from calsync.sandbox.server import Fault
from calsync.state.store import IndexEntry, StateStore

HOUR = dt.timedelta(hours=1)
LOOKBACK = dt.timedelta(days=30)
ALICE, BOB = "alice@acme.test", "bob@acme.test"


class Clock:
    """calsync's clock; Salesforce's is the same one shifted by `skew`."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start
        self.skew = dt.timedelta(0)

    def advance(self, minutes: float) -> None:
        self.now += dt.timedelta(minutes=minutes)

    def salesforce(self) -> dt.datetime:
        return self.now + self.skew


@pytest.fixture
def clock(sf_emu: SalesforceEmulator, company: DemoCompany) -> Clock:
    # An hour after the seeding, so the demo records are old news.
    c = Clock(dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + HOUR)
    sf_emu.backend.clock = c.salesforce
    return c


@pytest.fixture
def org(sf_emu: SalesforceEmulator, company: DemoCompany) -> SalesforceOrg:
    sf_emu.backend.session_lifetime = dt.timedelta(days=30)  # the tests move the clock by hours
    token = sf_emu.backend.create_session(company.users[0])
    return SalesforceOrg(sf_emu.url, access_token=token, ca_bundle=sf_emu.ca_file, sleep=lambda s: None)


@pytest.fixture
def store(tmp_path) -> Iterator[StateStore]:
    s = StateStore(tmp_path / "state.db")
    yield s
    s.close()


def run(store: StateStore, org: SalesforceOrg, clock: Clock, every: dt.timedelta = HOUR) -> RefreshResult:
    return refresh(store, org, clock.now, every=every, lookback=LOOKBACK)


def index(store: StateStore, clock: Clock, uid: str, *, addresses=(), ids=(), user=ALICE, days=1) -> None:
    start = clock.now + dt.timedelta(days=days)
    store.index_meetings([IndexEntry(user, uid, frozenset(addresses), frozenset(ids), start)])


@pytest.fixture
def started(store: StateStore, org: SalesforceOrg, clock: Clock, company: DemoCompany) -> DemoCompany:
    """The watermark set as after a first sync, then a few minutes pass; every meeting of the
    demo company indexed as the first sync would have."""
    c = company.contact_ids
    opp = company.opportunity_ids
    index(store, clock, "renewal", addresses=["hank@globex.test", "marge@globex.test"],
          ids=[c["hank@globex.test"], opp["Globex platform renewal"]])
    index(store, clock, "renewal", addresses=["hank@globex.test", "marge@globex.test"],
          ids=[c["hank@globex.test"], opp["Globex platform renewal"]], user=BOB)
    index(store, clock, "workshop", addresses=["bill@initech.test", "peter@initech.test"],
          ids=[c["bill@initech.test"], company.account_ids["Initech"]])
    index(store, clock, "weekly", addresses=["ada@umbrella.test"],
          ids=[c["ada@umbrella.test"], company.account_ids["Umbrella"]], days=-7)
    index(store, clock, "soylent", addresses=["zoe@soylent.test"], ids=[company.lead_ids["zoe@soylent.test"]],
          user=BOB)
    index(store, clock, "olaf", addresses=["old@soylent.test"], user="carol@acme.test")
    assert run(store, org, clock).outcome == "started"
    clock.advance(5)
    return company


def due(store: StateStore, org: SalesforceOrg, clock: Clock) -> RefreshResult:
    clock.advance(61)
    return run(store, org, clock)


def test_the_first_refresh_sets_the_watermark_without_calling_salesforce(store, org, clock):
    result = run(store, org, clock)
    assert (result.outcome, org.calls) == ("started", 0)
    assert store.meta(WATERMARK)[0] == clock.now.isoformat(timespec="microseconds")


def test_after_a_first_sync_the_next_refresh_is_not_due(store, org, clock):
    assert run(store, org, clock).outcome == "started"
    clock.advance(30)
    assert (run(store, org, clock).outcome, org.calls) == ("not due", 0)
    assert store.meta(WATERMARK)[0] == (clock.now - dt.timedelta(minutes=30)).isoformat(timespec="microseconds")


def test_the_first_watermark_is_salesforces_time_once_it_answered(store, org, clock, sf_emu):
    clock.skew = -HOUR  # calsync's clock runs an hour ahead of Salesforce's
    org.query("SELECT Id FROM User LIMIT 1")  # any answer carries Salesforce's Date header
    assert run(store, org, clock).outcome == "started"
    assert store.meta(WATERMARK)[0] == clock.salesforce().isoformat(timespec="microseconds")
    contact = sf_emu.backend.create_record("Contact", {"LastName": "Skew", "Email": "skew@late.test"})
    store.index_meetings([IndexEntry(ALICE, "uid-skew", frozenset({"skew@late.test"}), frozenset(),
                                     clock.now + HOUR)])
    result = due(store, org, clock)
    assert result.outcome == "refreshed" and (ALICE, "uid-skew") in result.queued, contact


def test_not_due_makes_no_call(store, org, clock, started):
    clock.advance(50)
    assert (run(store, org, clock).outcome, org.calls) == ("not due", 0)


def test_due_says_beforehand_what_refresh_will_find(store, org, clock):
    # Cycle asks `due` first so an idle poll never builds the Salesforce client: it must agree
    # with refresh's own answer at every step (first run, within the period, past it).
    for minutes in (0, 30, 29, 2, 59, 61, 0.5):
        clock.advance(minutes)
        expected = directory.due(store, clock.now, HOUR)
        assert (run(store, org, clock).outcome != "not due") == expected


def test_nothing_changed_costs_three_calls_and_queues_nothing(store, org, clock, started):
    result = due(store, org, clock)
    assert result.outcome == "refreshed"
    assert result.salesforce_calls == org.calls == 3
    assert result.queued == frozenset() and store.replans(ALICE) == set()


def test_every_zero_refreshes_each_cycle(store, org, clock, started):
    assert run(store, org, clock, every=dt.timedelta(0)).outcome == "refreshed"
    assert run(store, org, clock, every=dt.timedelta(0)).outcome == "refreshed"
    assert org.calls == 6


def test_a_new_contact_whose_address_is_indexed_queues_that_meeting(store, org, clock, started, sf_emu):
    index(store, clock, "skipped", addresses=["newbie@initech.test"])  # skipped: no Contact or Lead
    sf_emu.backend.create_record("Contact", {"LastName": "Newbie", "Email": "Newbie@Initech.test"})
    result = due(store, org, clock)
    assert result.queued == {(ALICE, "skipped")}
    assert store.replans(ALICE) == {"skipped"}


def test_a_converted_lead_queues_its_meeting(store, org, clock, started, sf_emu, company):
    sf_emu.backend.convert_lead(company.lead_ids["zoe@soylent.test"])
    assert due(store, org, clock).queued == {(BOB, "soylent")}
    assert store.replans(BOB) == {"soylent"}


def test_a_primary_role_added_queues_the_meetings_of_its_contact(store, org, clock, started, sf_emu, company):
    sf_emu.backend.create_record("OpportunityContactRole", {
        "OpportunityId": company.opportunity_ids["Initech expansion"],
        "ContactId": company.contact_ids["bill@initech.test"], "IsPrimary": True})
    assert due(store, org, clock).queued == {(ALICE, "workshop")}


def test_a_primary_role_removed_queues_the_meetings_it_related(store, org, clock, started, sf_emu, company):
    hank = company.contact_ids["hank@globex.test"]
    role = next(r for r in sf_emu.backend.list_records("OpportunityContactRole") if r["ContactId"] == hank)
    sf_emu.backend.delete_record("OpportunityContactRole", role["Id"])
    assert due(store, org, clock).queued == {(ALICE, "renewal"), (BOB, "renewal")}


def test_an_opportunity_closed_queues_the_meetings_of_its_contacts(store, org, clock, started, sf_emu, company):
    sf_emu.backend.update_record("Opportunity", company.opportunity_ids["Globex platform renewal"],
                                 {"StageName": "Closed Won"})
    assert due(store, org, clock).queued == {(ALICE, "renewal"), (BOB, "renewal")}


def test_a_close_date_moved_queues_the_meetings_of_its_contacts(store, org, clock, started, sf_emu, company):
    index(store, clock, "pilot", ids=[company.contact_ids["peter@initech.test"]], user="carol@acme.test")
    sf_emu.backend.update_record("Opportunity", company.opportunity_ids["Initech pilot"], {"CloseDate": "2027-01-31"})
    assert due(store, org, clock).queued == {("carol@acme.test", "pilot")}


def test_an_account_set_on_a_contact_queues_the_meetings_it_names(store, org, clock, started, sf_emu, company):
    loner = sf_emu.backend.create_record("Contact", {"LastName": "Loner", "Email": "loner@nowhere.test"})
    index(store, clock, "loner", addresses=["loner@nowhere.test"], ids=[loner])
    assert due(store, org, clock).queued == {(ALICE, "loner")}  # new Contact: once
    store.clear_replans(ALICE, ["loner"])
    sf_emu.backend.update_record("Contact", loner, {"AccountId": company.account_ids["Globex"]})
    assert due(store, org, clock).queued == {(ALICE, "loner")}


def test_an_email_changed_queues_the_meeting_it_named_by_id(store, org, clock, started, sf_emu, company):
    index(store, clock, "new-address", addresses=["h.scorpio@globex.test"])
    sf_emu.backend.update_record("Contact", company.contact_ids["hank@globex.test"],
                                 {"Email": "h.scorpio@globex.test"})
    result = due(store, org, clock)
    assert result.queued == {(ALICE, "renewal"), (BOB, "renewal"), (ALICE, "new-address")}


def test_a_meeting_before_the_lookback_window_is_not_queued(store, org, clock, started, sf_emu, company):
    index(store, clock, "long-ago", addresses=["ada@umbrella.test"], days=-40)
    sf_emu.backend.update_record("Contact", company.contact_ids["ada@umbrella.test"], {"Title": "CTO"})
    assert due(store, org, clock).queued == {(ALICE, "weekly")}


def test_the_same_change_is_acted_on_once(store, org, clock, started, sf_emu, company):
    sf_emu.backend.update_record("Contact", company.contact_ids["ada@umbrella.test"], {"Title": "CTO"})
    assert due(store, org, clock).queued == {(ALICE, "weekly")}
    # The watermark is that change's own stamp, so the overlap brings it back: it is skipped.
    again = run(store, org, clock, every=dt.timedelta(0))
    assert (again.outcome, again.queued, again.changes.empty) == ("refreshed", frozenset(), True)
    clock.advance(16)
    sf_emu.backend.update_record("Contact", company.contact_ids["ada@umbrella.test"], {"Title": "CEO"})
    assert run(store, org, clock, every=dt.timedelta(0)).queued == {(ALICE, "weekly")}


def test_a_salesforce_clock_behind_ours_loses_no_change(store, org, clock, company, sf_emu):
    index(store, clock, "weekly", addresses=["ada@umbrella.test"])
    clock.skew = -dt.timedelta(minutes=10)  # Salesforce stamps 10 minutes behind calsync
    assert run(store, org, clock).outcome == "started"
    clock.advance(2)  # after the first sync, but stamped before its watermark
    sf_emu.backend.update_record("Contact", company.contact_ids["ada@umbrella.test"], {"Title": "CTO"})
    stamped = clock.salesforce()
    assert due(store, org, clock).queued == {(ALICE, "weekly")}
    # From then on the watermark is Salesforce's time, below the one calsync's clock gave.
    assert store.meta(WATERMARK)[0] == stamped.isoformat(timespec="microseconds")


def test_a_refused_query_keeps_the_watermark_and_queues_nothing(store, org, clock, started, sf_emu, company):
    sf_emu.backend.update_record("Contact", company.contact_ids["ada@umbrella.test"], {"Title": "CTO"})
    watermark = store.meta(WATERMARK)[0]
    sf_emu.faults.add(Fault(status=400, body=[{"errorCode": "INVALID_FIELD", "message": "No such column"}],
                            query_contains="FROM Lead"))
    failed = due(store, org, clock)
    assert failed.outcome == "failed" and "INVALID_FIELD" in (failed.error or "")
    assert store.meta(WATERMARK)[0] == watermark and store.replans(ALICE) == set()
    # The claim is released and the refresh is still due: the next cycle tries again.
    assert run(store, org, clock).queued == {(ALICE, "weekly")}


def test_quota_exhausted_propagates_and_releases_the_claim(store, org, clock, started, sf_emu):
    sf_emu.faults.add(request_limit_fault())
    clock.advance(61)
    with pytest.raises(QuotaExhausted):
        run(store, org, clock)
    assert run(store, org, clock).outcome == "refreshed"


def test_a_claim_left_by_a_crash_expires(store, org, clock, started):
    clock.advance(61)
    assert directory._claim(store, clock.now, HOUR, clock.now) not in ("not due", "busy", "started")  # then the process died
    assert (run(store, org, clock).outcome, org.calls) == ("busy", 0)
    clock.advance(CLAIM_LEASE.total_seconds() / 60)
    assert run(store, org, clock).outcome == "refreshed"


def test_two_threads_due_at_once_query_only_once(tmp_path, org, clock, started, sf_emu, company):
    sf_emu.faults.add(Fault(delay=1.0, query_contains="FROM Contact"))  # answers, slowly
    clock.advance(61)
    results: list[RefreshResult] = []

    def cycle_thread() -> None:
        own = StateStore(tmp_path / "state.db")  # each daemon thread has its own connection
        try:
            results.append(run(own, org, clock))
        finally:
            own.close()

    first = threading.Thread(target=cycle_thread)
    first.start()
    other = StateStore(tmp_path / "state.db")
    deadline = time.monotonic() + 10
    while (other.meta(CLAIM) or (None,))[0] is None and time.monotonic() < deadline:
        time.sleep(0.02)  # until the first thread holds the claim (it then waits for Salesforce)
    other_org = SalesforceOrg(sf_emu.url, access_token=sf_emu.backend.create_session(company.users[1]),
                              ca_bundle=sf_emu.ca_file)
    try:
        assert run(other, other_org, clock).outcome == "busy"
    finally:
        other.close()
    first.join()
    assert [r.outcome for r in results] == ["refreshed"]
    assert other_org.calls == 0 and sf_emu.backend.calls_by_kind()["query"] == 3
