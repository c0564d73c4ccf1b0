"""Which landed Event is whose (calsync/landed.py), on plain data: the window in Salesforce's own
clock, the match on owner and times, the Subject and Name only as tie-breakers."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.rules import landed
from calsync.state.store import PendingCreate

NOW = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.timezone.utc)
ALICE, BOB = "005000000000001AAA", "005000000000002AAA"
CALSYNC, REP = "005000000000009AAA", "005000000000007AAA"
HANK, MARGE = "003000000000001AAA", "003000000000002AAA"


def intent(key: str, *, owner: str = ALICE, hour: int = 15, subject: str = "Pricing", who: str = HANK,
           sf_at: dt.datetime | None = NOW, all_day: str | None = None) -> PendingCreate:
    body: dict = {"OwnerId": owner, "Subject": subject, "WhoId": who, "IsAllDayEvent": bool(all_day)}
    if all_day:
        body.update(ActivityDate=all_day, DurationInMinutes=2880)
    else:
        body.update(StartDateTime=f"2026-11-26T{hour:02d}:00:00.000+0000",
                    EndDateTime=f"2026-11-26T{hour + 1:02d}:00:00.000+0000", DurationInMinutes=60)
    return PendingCreate(key, "alice@acme.test", f"uid-{key}", body, NOW + dt.timedelta(minutes=30), sf_at)


def row(event_id: str, *, owner: str = ALICE, hour: int = 15, subject: str = "Pricing", who: str = HANK,
        by: str = CALSYNC, created: str = "2026-11-25T09:00:01.000+0000", all_day: str | None = None) -> dict:
    found = {"Id": event_id, "OwnerId": owner, "Subject": subject, "WhoId": who, "CreatedById": by,
             "CreatedDate": created, "IsAllDayEvent": bool(all_day)}
    if all_day:
        found.update(ActivityDate=all_day, DurationInMinutes=2880, StartDateTime=f"{all_day}T00:00:00.000+0000")
    else:
        found.update(StartDateTime=f"2026-11-26T{hour:02d}:00:00Z", EndDateTime=f"2026-11-26T{hour + 1:02d}:00:00Z")
    return found


def test_the_window_starts_at_salesforces_time_of_the_intent_whatever_calsyncs_clock_said() -> None:
    # calsync's clock said 09:30 (30 minutes ahead); Salesforce's said 09:00.
    assert landed.window_start([intent("a")]) == NOW - landed.MARGIN
    # Recorded before m009: 15 minutes of skew either way, and the margin.
    legacy = intent("b", sf_at=None)
    assert landed.window_start([legacy]) == legacy.intent_at - landed.MAX_SKEW - landed.MARGIN
    assert landed.window_start([intent("a"), legacy]) == NOW - landed.MARGIN  # the earliest


def test_an_event_a_trigger_renamed_and_renamed_is_still_the_intents() -> None:
    found = landed.match([intent("a")], [row("00U1", subject="[Meeting] Pricing", who=MARGE)], {}, CALSYNC)
    assert found["a"]["Id"] == "00U1"


def test_only_events_of_the_same_owner_and_times_by_calsyncs_user_and_unclaimed_are_taken() -> None:
    rows = [
        row("00U1", owner=BOB),  # another owner's
        row("00U2", hour=16),  # another time
        row("00U3", by=REP),  # a person's own Event at the same time
        row("00U4"),  # recorded for another meeting
    ]
    assert landed.match([intent("a")], rows, {"00U4": "other-key"}, CALSYNC) == {}
    # Without knowing calsync's user, the creator is not checked (the rest still is).
    assert landed.match([intent("a")], rows[:3], {}, None)["a"]["Id"] == "00U3"


def test_two_meetings_in_one_slot_each_get_the_event_that_looks_like_theirs() -> None:
    pending = [intent("a", subject="Pricing", who=HANK), intent("b", subject="Legal review", who=MARGE)]
    rows = [row("00U1", subject="Legal review", who=MARGE, created="2026-11-25T09:00:01.000+0000"),
            row("00U2", subject="Pricing", who=HANK, created="2026-11-25T09:00:02.000+0000")]
    found = landed.match(pending, rows, {}, CALSYNC)
    assert {k: v["Id"] for k, v in found.items()} == {"a": "00U2", "b": "00U1"}


def test_all_day_events_match_on_their_day_and_duration() -> None:
    pending = [intent("a", all_day="2026-12-01")]
    assert landed.match(pending, [row("00U1", all_day="2026-12-02")], {}, CALSYNC) == {}
    assert landed.match(pending, [row("00U1", all_day="2026-12-01", subject="x")], {}, CALSYNC)["a"]["Id"] == "00U1"


@settings(max_examples=200, deadline=None)
@given(
    intents=st.lists(st.tuples(st.sampled_from([ALICE, BOB]), st.integers(9, 11), st.sampled_from(["P", "Q"])),
                     min_size=1, max_size=5),
    rows=st.lists(st.tuples(st.sampled_from([ALICE, BOB]), st.integers(9, 11), st.sampled_from(["P", "Q", "[x] P"]),
                            st.sampled_from([CALSYNC, REP]), st.booleans()), max_size=8),
)
def test_each_event_goes_to_one_intent_of_its_slot_never_a_claimed_one_or_a_persons(intents, rows) -> None:
    pending = [intent(f"k{i}", owner=o, hour=h, subject=s) for i, (o, h, s) in enumerate(intents)]
    listed = [row(f"00U{i:012d}", owner=o, hour=h, subject=s, by=by) for i, (o, h, s, by, _) in enumerate(rows)]
    claims = {r["Id"][:15]: "someone" for r, (*_, claimed) in zip(listed, rows) if claimed}
    found = landed.match(pending, listed, claims, CALSYNC)
    ids = [r["Id"] for r in found.values()]
    assert len(ids) == len(set(ids))
    by_key = {p.key: p for p in pending}
    for key, event in found.items():
        assert landed.slot(event) == landed.slot(by_key[key].intent)
        assert event["CreatedById"] == CALSYNC and event["Id"][:15] not in claims
    # Nothing left that could have been taken: an unmatched intent has no free Event of its slot.
    free = [r for r in listed if r["Id"] not in ids and r["CreatedById"] == CALSYNC and r["Id"][:15] not in claims]
    for p in pending:
        if p.key not in found:
            assert not [r for r in free if landed.slot(r) == landed.slot(p.intent)]
