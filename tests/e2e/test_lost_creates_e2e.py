"""Right in every org (issue 16): a create whose answer is lost is found whatever the clocks and
the org's automation do, and calsync's own writes are never taken for a person's edit.

Through both emulators and the real client libraries. calsync writes as its own integration
user (`calsync@acme.test`); a second active User stands in for the sales rep. The Salesforce
emulator's `drop_after` fault lets the create land and cuts the connection before its answer;
its clock offset puts Salesforce's clock behind or ahead of this machine's (its Date header
follows, reference B10 "Clocks"); its triggers rewrite Subject or WhoId on insert as the
inserting user (B10 "Triggers, Flows").
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calsync.core import config as config_module
from calsync.sandbox.server import Fault
from calsync.state.store import StateStore

COLLECTIONS = "/services/data/v59.0/composite/sobjects"
DEMO_EVENTS = 7


@pytest.fixture
def integration(sf_emu) -> str:
    """The access token of calsync's own Salesforce user (not one of the salespeople)."""
    sf_emu.backend.create_user("calsync@acme.test", first_name="Calsync", last_name="Integration")
    return sf_emu.backend.create_session("calsync@acme.test")


@pytest.fixture
def rep(sf_emu) -> str:
    return sf_emu.backend.create_user("rep@acme.test", first_name="Rita", last_name="Rep")


def lose_the_next_create(sf_emu) -> None:
    """The create lands; its answer never comes (a connection cut after Salesforce committed)."""
    sf_emu.faults.add(Fault(drop_after=True, method="POST", path_prefix=COLLECTIONS))


def live_events(sf_emu) -> list[dict]:
    return sf_emu.backend.list_records("Event")


def assert_one_event_per_meeting_and_owner(sf_emu, expected: int | None = DEMO_EVENTS) -> None:
    """No two Events of one owner at one time (every meeting here has a slot of its own)."""
    rows = live_events(sf_emu)
    slots = Counter((r["OwnerId"], r["StartDateTime"] if not r["IsAllDayEvent"] else r["ActivityDate"])
                    for r in rows)
    assert max(slots.values()) == 1, sorted(slots.items())
    assert expected is None or len(rows) == expected, (len(rows), expected)


def _state_rows(path, sql: str) -> list[tuple]:
    """The rows of `sql` on the state of the configuration at `path` (SQLite or PostgreSQL)."""
    store = StateStore(config_module.load(path).state)
    try:
        return [tuple(r.values()) for r in store.rows(sql)]
    finally:
        store.close()


def _state_exec(path, sql: str) -> None:
    store = StateStore(config_module.load(path).state)
    try:
        store.exec(sql)
    finally:
        store.close()


def assert_state_claims_every_event(path, sf_emu) -> None:
    claimed = [r[0][:15] for r in _state_rows(path, "SELECT sf_id FROM written WHERE sf_id IS NOT NULL")]
    pending = _state_rows(path, "SELECT COUNT(*) FROM written WHERE state = 'creating'")[0][0]
    assert pending == 0
    assert sorted(claimed) == sorted(r["Id"][:15] for r in live_events(sf_emu))


def _move(google_emu, event_id: str, hours: int) -> None:
    """The meeting moves to 11:00 + `hours` UTC, six days from now, 45 minutes long."""
    start = dt.datetime.now(dt.timezone.utc).replace(hour=11, minute=0, second=0, microsecond=0)
    start += dt.timedelta(days=6, hours=hours)
    fmt = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    google_emu.backend.update_event(event_id, {
        "start": {"dateTime": fmt(start), "timeZone": "UTC"},
        "end": {"dateTime": fmt(start + dt.timedelta(minutes=45)), "timeZone": "UTC"}})


def _external_events(sf_emu) -> list[dict]:
    return sorted((r for r in live_events(sf_emu) if "Globex renewal" in (r["Subject"] or "")),
                  key=lambda r: r["OwnerId"])


_made = iter(range(8, 10_000))


def new_meetings(google_emu) -> int:
    """Two new meetings on a day of their own: a timed one (Alice, a Contact) and an all-day one
    (Carol, a Contact): two new Events."""
    day = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=next(_made))).date()
    start = dt.datetime(day.year, day.month, day.day, 7, tzinfo=dt.timezone.utc)
    fmt = lambda t: t.isoformat().replace("+00:00", "Z")  # noqa: E731
    google_emu.backend.create_event("alice@acme.test", {
        "summary": f"Globex check-in {day}", "attendees": ["alice@acme.test", "hank@globex.test"],
        "start": {"dateTime": fmt(start), "timeZone": "UTC"},
        "end": {"dateTime": fmt(start + dt.timedelta(minutes=30)), "timeZone": "UTC"}})
    google_emu.backend.create_event("carol@acme.test", {
        "summary": f"Umbrella onsite {day}", "attendees": ["carol@acme.test", "ada@umbrella.test"],
        "start": {"date": day.isoformat()}, "end": {"date": (day + dt.timedelta(days=1)).isoformat()}})
    return 2


@pytest.mark.parametrize("minutes", [-10, 10])
def test_a_lost_create_is_found_with_salesforces_clock_ten_minutes_off(
    make_config, sync, sf_emu, google_emu, integration, minutes
):
    # A VM resumed before NTP: Salesforce's clock (CreatedDate, the Date header) is 10 minutes
    # behind or ahead of calsync's. The create is lost on an incremental sync, where nothing
    # but the reconciliation can find it.
    sf_emu.backend.clock_offset = dt.timedelta(minutes=minutes)
    path = make_config(salesforce={"access_token": integration})
    assert sync(path).ok
    expected = DEMO_EVENTS + new_meetings(google_emu)
    lose_the_next_create(sf_emu)
    first = sync(path)
    assert not first.ok and len(live_events(sf_emu)) == expected  # landed, answer lost
    second = sync(path)
    assert second.ok, {u: c.error for u, c in second.calendars.items()}
    assert sum(c.created for c in second.calendars.values()) == 0
    assert_one_event_per_meeting_and_owner(sf_emu, expected)
    assert_state_claims_every_event(path, sf_emu)
    assert sync(path).salesforce_calls == 0


@pytest.mark.parametrize("external_id", [False, True])
@pytest.mark.parametrize("relist", [False, True], ids=["incremental", "after a 410"])
def test_an_event_that_landed_unanswered_goes_with_a_meeting_deleted_before_the_next_run(
    make_config, sync, sf_emu, google_emu, company, integration, external_id, relist
):
    # The create lands, its answer is lost, and the meeting is deleted before the next run:
    # Google then shows it as a bare id, whether the next listing is incremental or full
    # (reference A3). The Event that landed is found and goes with its meeting.
    path = make_config(salesforce={"access_token": integration,
                                   **({} if external_id else {"external_id_field": None})})
    assert sync(path).ok
    new_meetings(google_emu)  # a timed one on Alice's calendar, an all-day one on Carol's
    made = [e["id"] for user in ("alice@acme.test", "carol@acme.test")
            for e in google_emu.backend.calendar_events(user)
            if e.get("summary", "").startswith(("Globex check-in ", "Umbrella onsite "))]
    assert len(made) == 2
    lose_the_next_create(sf_emu)
    assert not sync(path).ok
    assert len(live_events(sf_emu)) == DEMO_EVENTS + 2  # landed, answers lost
    for event_id in made:
        google_emu.backend.delete_event(event_id)
    if relist:
        google_emu.backend.invalidate_sync_tokens()
    assert sync(path).ok
    assert_one_event_per_meeting_and_owner(sf_emu, DEMO_EVENTS)
    assert_state_claims_every_event(path, sf_emu)


@pytest.mark.parametrize("rewrite", ["subject", "name"])
def test_a_lost_create_rewritten_by_a_trigger_is_adopted_and_its_values_are_not_a_persons(
    make_config, sync, sf_emu, google_emu, company, integration, rep, rewrite, caplog
):
    marge = company.contact_ids["marge@globex.test"]
    if rewrite == "subject":
        sf_emu.backend.add_trigger("Event", subject_prefix="[Meeting] ")
    else:
        sf_emu.backend.add_trigger("Event", set_fields={"WhoId": marge})
    path = make_config(salesforce={"access_token": integration})
    lose_the_next_create(sf_emu)
    assert not sync(path).ok
    again = sync(path)
    assert again.ok and sum(c.created for c in again.calendars.values()) == 0
    assert_one_event_per_meeting_and_owner(sf_emu)
    alice_id = company.sf_user_ids["alice@acme.test"]
    alice_event, = [r for r in _external_events(sf_emu) if r["OwnerId"] == alice_id]
    bob_event, = [r for r in _external_events(sf_emu) if r["OwnerId"] != alice_id]
    # A rep writes notes on Alice's Event (after the trigger): the notes are the rep's, the
    # trigger's value stays calsync's.
    sf_emu.backend.update_record("Event", alice_event["Id"], {"Description": "Call notes"}, user_id=rep)
    _move(google_emu, company.meetings["external"], hours=2)
    with caplog.at_level(logging.INFO):
        moved = sync(path)
    assert moved.ok and sum(c.updated for c in moved.calendars.values()) == 2
    kept = [r.fields for r in caplog.records if r.getMessage() == "kept a change made in Salesforce"]
    assert [k["fields"] for k in kept] == ["Description"], kept
    after = {r["Id"]: r for r in live_events(sf_emu)}
    for event in (after[alice_event["Id"]], after[bob_event["Id"]]):
        assert event["StartDateTime"].endswith("13:00:00.000+0000") and event["DurationInMinutes"] == 45
        assert event["Subject"] == "Globex renewal: pricing review"  # calsync's field, still written
        assert event["WhoId"][:15] == company.contact_ids["hank@globex.test"][:15]
    assert after[alice_event["Id"]]["Description"] == "Call notes"
    assert_one_event_per_meeting_and_owner(sf_emu)


def _legacy(path) -> None:
    """Make every state row look written before per-field ownership (m004): no hashes."""
    _state_exec(path, "UPDATE written SET hashes = NULL, kept = NULL, pending_hashes = NULL")


def test_a_legacy_event_a_rep_edited_seconds_after_calsync_keeps_the_edits_and_is_retired(
    make_config, sync, sf_emu, google_emu, company, integration, rep, caplog
):
    path = make_config(salesforce={"access_token": integration})
    assert sync(path).ok
    _legacy(path)
    alice_id = company.sf_user_ids["alice@acme.test"]
    event, = [r for r in _external_events(sf_emu) if r["OwnerId"] == alice_id]
    # Seconds after calsync's write (well within the old 2-minute window).
    sf_emu.backend.update_record("Event", event["Id"], {
        "Subject": "Globex renewal (3-year deal)", "Description": "Rep: they want 3-year pricing"}, user_id=rep)
    _move(google_emu, company.meetings["external"], hours=1)
    with caplog.at_level(logging.INFO):
        assert sync(path).ok
    row = sf_emu.backend.record("Event", event["Id"])
    assert row["Subject"] == "Globex renewal (3-year deal)"
    assert row["Description"] == "Rep: they want 3-year pricing"
    assert row["StartDateTime"].endswith("12:00:00.000+0000")  # times follow Google
    kept = [r.fields for r in caplog.records if r.getMessage() == "kept a change made in Salesforce"]
    assert len(kept) == 1 and set(kept[0]["fields"].split(",")) >= {"Subject", "Description"}
    google_emu.backend.delete_event(company.meetings["external"])
    assert sync(path).ok
    row = sf_emu.backend.record("Event", event["Id"])
    assert row is not None and row["Subject"] == "Canceled: Globex renewal (3-year deal)"
    assert row["Description"] == "Rep: they want 3-year pricing"


def test_a_legacy_event_nobody_touched_follows_google_and_goes_with_its_meeting(
    make_config, sync, sf_emu, google_emu, company, integration
):
    path = make_config(salesforce={"access_token": integration})
    assert sync(path).ok
    _legacy(path)
    before = _external_events(sf_emu)
    google_emu.backend.update_event(company.meetings["external"], {"summary": "Globex renewal: final terms"})
    _move(google_emu, company.meetings["external"], hours=3)
    result = sync(path)
    assert result.ok and sum(c.updated for c in result.calendars.values()) == 2
    for old in before:
        row = sf_emu.backend.record("Event", old["Id"])
        assert row["Subject"] == "Globex renewal: final terms" and row["StartDateTime"].endswith("14:00:00.000+0000")
    _legacy(path)
    google_emu.backend.delete_event(company.meetings["external"])
    gone = sync(path)
    assert gone.ok and sum(c.deleted for c in gone.calendars.values()) == 2
    assert not _external_events(sf_emu)


@pytest.mark.parametrize("state_engine", ["sqlite", "postgres"])  # CI runs it on both
def test_reconciling_fails_the_calendars_rather_than_create_again(make_config, sync, sf_emu, integration):
    path = make_config(salesforce={"access_token": integration})
    lose_the_next_create(sf_emu)
    assert not sync(path).ok
    # The query that looks for the landed Events fails: those calendars wait, nothing is re-created.
    sf_emu.faults.add(Fault(status=503, body=[{"errorCode": "SERVER_UNAVAILABLE", "message": "down"}],
                            method="GET", path_prefix="/services/data/v59.0/query", times=3))
    waiting = sync(path)
    assert not waiting.ok
    assert all("cannot reconcile earlier creates" in (c.error or "") for c in waiting.calendars.values() if not c.ok)
    assert len(live_events(sf_emu)) == DEMO_EVENTS
    assert sync(path).ok
    assert_one_event_per_meeting_and_owner(sf_emu)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    skew=st.integers(min_value=-15 * 60, max_value=15 * 60),
    prefix=st.sampled_from(["", "[Meeting] ", "Logged: "]),
    suffix=st.sampled_from(["", " (via Flow)"]),
    rewrite_name=st.booleans(),
    lost=st.fixed_dictionaries({"full": st.booleans(), "incremental": st.booleans()}),
)
def test_lost_answers_never_give_two_events_whatever_the_skew_and_the_automation(
    make_config, sync, sf_emu, google_emu, company, integration, tmp_path_factory,
    skew, prefix, suffix, rewrite_name, lost
):
    for row in live_events(sf_emu):  # each example starts from an empty org and state
        sf_emu.backend.delete_record("Event", row["Id"])
    sf_emu.backend.clear_triggers()
    sf_emu.faults.clear()
    sf_emu.backend.clock_offset = dt.timedelta(seconds=skew)
    if prefix or suffix:
        sf_emu.backend.add_trigger("Event", subject_prefix=prefix, subject_suffix=suffix)
    if rewrite_name:
        sf_emu.backend.add_trigger("Event", set_fields={"WhoId": company.contact_ids["marge@globex.test"]})
    state = tmp_path_factory.mktemp("state") / "state.db"
    path = make_config(salesforce={"access_token": integration}, state={"path": str(state)})
    for sync_kind in ("full", "incremental"):
        expected = len(live_events(sf_emu)) + (new_meetings(google_emu) if sync_kind == "incremental" else 0)
        if lost[sync_kind]:
            lose_the_next_create(sf_emu)
            assert not sync(path).ok
        result = sync(path)
        assert result.ok, {u: c.error for u, c in result.calendars.items()}
        assert_one_event_per_meeting_and_owner(sf_emu, expected if sync_kind == "incremental" else None)
    claimed = sorted(r[0][:15] for r in _state_rows(path, "SELECT sf_id FROM written WHERE sf_id IS NOT NULL"))
    assert claimed == sorted(r["Id"][:15] for r in live_events(sf_emu))


def test_calsync_asks_who_it_is_once_a_day_and_never_on_an_idle_cycle(
    make_config, sync, sf_emu, google_emu, company, integration
):
    path = make_config(salesforce={"access_token": integration})

    def userinfo_requests() -> int:
        return sum(1 for _, p in list(sf_emu.requests_seen) if p.endswith("/oauth2/userinfo"))

    assert sync(path).ok and userinfo_requests() == 0  # creates only: nothing read back
    assert sync(path).salesforce_calls == 0
    google_emu.backend.update_event(company.meetings["external"], {"summary": "Globex renewal v2"})
    assert sync(path).ok and userinfo_requests() == 1  # the read-back before the update
    google_emu.backend.update_event(company.meetings["external"], {"summary": "Globex renewal v3"})
    assert sync(path).ok and userinfo_requests() == 1  # cached in the state store
    assert sync(path).salesforce_calls == 0
