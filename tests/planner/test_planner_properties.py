"""Properties of plan() on arbitrary, hostile calendar data (hypothesis)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st
from planner_builders import (
    CLIENT,
    COLLEAGUE,
    OTHER_CLIENT,
    OWNER,
    contact,
    directory,
    lead,
    opportunity,
    settings,
)

from calsync.core.model import (
    Create,
    Delete,
    Directory,
    EventTime,
    GoogleEvent,
    MeetingCopy,
    Person,
    PlanSettings,
    Skip,
    Update,
    Written,
)
from calsync.rules.planner import Plan, addresses_to_look_up, plan

UTC = dt.timezone.utc

ADDRESSES = [
    OWNER,
    OWNER.upper(),
    COLLEAGUE,
    CLIENT,
    " Bob@Client.TEST ",
    OTHER_CLIENT,
    "host@client.test",
    "lead@prospect.test",
    "room@rooms.test",
    "",
    "@",
    "no-at-sign",
    "a@b@c",
    "x" * 300 + "@client.test",
]
emails = st.one_of(st.none(), st.sampled_from(ADDRESSES), st.text(max_size=40))

people = st.builds(
    Person,
    email=emails,
    display_name=st.one_of(st.none(), st.text(max_size=20)),
    self=st.booleans(),
    organizer=st.booleans(),
    resource=st.booleans(),
    response_status=st.sampled_from(["needsAction", "accepted", "declined", "tentative", "?"]),
)

any_datetime = st.datetimes(
    timezones=st.one_of(st.none(), st.just(UTC), st.timezones()),
)
near_datetime = st.datetimes(
    min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2027, 1, 1), timezones=st.just(UTC)
)
event_times = st.one_of(
    st.none(),
    st.builds(EventTime),  # neither date nor dateTime
    st.builds(EventTime, date=st.dates()),
    st.builds(EventTime, date=st.dates(dt.date(2025, 1, 1), dt.date(2027, 1, 1))),
    st.builds(
        EventTime,
        date_time=st.one_of(any_datetime, near_datetime),
        time_zone=st.sampled_from([None, "Europe/Berlin", "America/New_York", "Nope/Zone", ""]),
    ),
    st.builds(EventTime, date=st.dates(), date_time=near_datetime),  # both: hostile
)

RULES = [
    "RRULE:FREQ=WEEKLY;COUNT=3",
    "RRULE:FREQ=DAILY",
    "RRULE:FREQ=WEEKLY;BYDAY=MO,WE",
    "RRULE:FREQ=DAILY;UNTIL=20260201T000000Z",
    "EXDATE:20260112T150000Z",
    "EXDATE;VALUE=DATE:20260112",
    "RDATE:20260301T100000Z",
    "RRULE:FREQ=SOMETIMES",
    "RRULE:",
    "garbage",
]

huge = st.sampled_from(["x" * 100_000, "\u0000\ud800 odd", "   ", "é" * 300])
texts = st.one_of(st.none(), st.text(max_size=30), huge)

google_events = st.builds(
    GoogleEvent,
    id=st.text(max_size=10),
    status=st.sampled_from(["confirmed", "tentative", "cancelled", "weird"]),
    ical_uid=st.one_of(st.none(), st.just("u1")),
    summary=texts,
    description=texts,
    location=texts,
    start=event_times,
    end=event_times,
    end_time_unspecified=st.booleans(),
    organizer=st.one_of(st.none(), people),
    attendees=st.lists(people, max_size=6).map(tuple),
    recurrence=st.lists(st.sampled_from(RULES), max_size=3).map(tuple),
    recurring_event_id=st.sampled_from([None, None, "series1"]),
    original_start=event_times,
    event_type=st.sampled_from(["default", "default", "outOfOffice", "focusTime", ""]),
    visibility=st.sampled_from(["default", "public", "private", "confidential"]),
)

plausible_people = st.builds(
    Person,
    email=st.sampled_from(ADDRESSES[:8]),
    self=st.booleans(),
    resource=st.sampled_from([False, False, False, True]),
    response_status=st.sampled_from(["needsAction", "accepted", "accepted", "declined"]),
)


@st.composite
def meetings(draw: st.DrawFn) -> GoogleEvent:
    """A plausible meeting (mostly synced), possibly a series master, with mild oddities."""
    if draw(st.booleans()):
        start = EventTime(date_time=draw(near_datetime))
        assert start.date_time is not None
        end = EventTime(
            date_time=start.date_time + dt.timedelta(minutes=draw(st.integers(0, 21_000)))
        )
    else:
        first = draw(st.dates(dt.date(2025, 1, 1), dt.date(2027, 1, 1)))
        start = EventTime(date=first)
        end = EventTime(date=first + dt.timedelta(days=draw(st.integers(0, 16))))
    return GoogleEvent(
        id="series1",
        status=draw(st.sampled_from(["confirmed", "confirmed", "tentative", "cancelled"])),
        summary=draw(texts),
        description=draw(texts),
        location=draw(texts),
        start=start,
        end=end,
        end_time_unspecified=draw(st.booleans()),
        organizer=draw(st.one_of(st.none(), plausible_people)),
        attendees=tuple(draw(st.lists(plausible_people, min_size=1, max_size=5))),
        recurrence=tuple(draw(st.lists(st.sampled_from(RULES[:7]), max_size=2))),
        visibility=draw(st.sampled_from(["default", "default", "private"])),
    )


@st.composite
def exceptions_of(draw: st.DrawFn, master: GoogleEvent) -> list[GoogleEvent]:
    """Cancelled or moved occurrences of `master`'s first slots (weekly or daily steps)."""
    found = []
    for index in draw(st.lists(st.integers(0, 3), max_size=3)):
        step = dt.timedelta(days=draw(st.sampled_from([1, 7])) * index)
        if master.start is None:
            break
        slot = (
            EventTime(date=master.start.date + step)
            if master.start.date is not None
            else EventTime(date_time=(master.start.date_time or dt.datetime.min) + step)
        )
        moved_to = draw(st.sampled_from([None, dt.timedelta(hours=2), -dt.timedelta(days=3)]))
        if moved_to is None or slot.date_time is None:
            found.append(GoogleEvent(id="x", status="cancelled", recurring_event_id="series1",
                                     original_start=slot))
        else:
            found.append(
                GoogleEvent(
                    id="y",
                    summary="moved",
                    start=EventTime(date_time=slot.date_time + moved_to),
                    end=EventTime(date_time=slot.date_time + moved_to + dt.timedelta(hours=1)),
                    organizer=master.organizer,
                    attendees=master.attendees,
                    recurring_event_id="series1",
                    original_start=slot,
                )
            )
    return found


@st.composite
def item_lists(draw: st.DrawFn) -> tuple[GoogleEvent, ...]:
    if draw(st.integers(0, 3)) == 0:
        return tuple(draw(st.lists(google_events, max_size=4)))  # hostile
    master = draw(meetings())
    return (master, *draw(exceptions_of(master)))


copies = st.builds(
    MeetingCopy,
    owner=st.sampled_from([OWNER, COLLEAGUE, "zoe@acme.test"]),
    ical_uid=st.sampled_from(["u1", "u2", "u3"]),  # few keys, so copies repeat keys
    items=item_lists(),
)

plan_settings = st.builds(
    settings,
    exclude=st.lists(st.sampled_from(["*@rooms.test", "[", "lead@*", "*"]), max_size=2).map(tuple),
    lookback_days=st.one_of(st.integers(0, 60), st.just(10**6)),
    private_events=st.sampled_from(["skip", "sync"]),
    activity_datetime_field=st.sampled_from([None, "MixmaxActivityDateTime"]),
)

DIRECTORY: Directory = directory(
    contact("003BOB", account_id="001ACME"),
    contact("003BOB2", created="2019-01-01T00:00:00.000+0000"),
    lead("00QBOB"),
    contact("003HOST", email="host@client.test"),
    lead("00QLEAD", email="lead@prospect.test"),
    lead("00QLEAD2", email="lead@prospect.test"),
    contact("003ROOM", email="room@rooms.test"),
    contact("003LONG", email="x" * 300 + "@client.test"),
    opportunities=[
        opportunity("006A", "003BOB2", close_date="2026-03-01"),
        opportunity("006B", "003BOB2", is_closed=True),
        opportunity("006C", "003HOST"),
    ],
)

nows = st.datetimes(
    min_value=dt.datetime(2025, 6, 1), max_value=dt.datetime(2026, 6, 1), timezones=st.just(UTC)
)


@st.composite
def previous_for(draw: st.DrawFn, planned: list[MeetingCopy]) -> dict[str, Written]:
    found: dict[str, Written] = {}
    for copy in planned:
        if draw(st.booleans()):
            found[copy.key] = Written(
                key=copy.key,
                owner=copy.owner,
                ical_uid=copy.ical_uid,
                sf_id=draw(st.sampled_from([None, "00UPREV"])),
                fingerprint=draw(st.sampled_from([None, "stale"])),
            )
    return found


fast = hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def replayed(first: Plan, previous: Mapping[str, Written]) -> dict[str, Written]:
    """The state store after the first plan's writes all went through."""
    after = dict(previous)
    for op in first.operations:
        if isinstance(op, (Create, Update)):
            after[op.key] = Written(
                key=op.key,
                owner=op.copy.owner,
                ical_uid=op.copy.ical_uid,
                sf_id=op.sf_id if isinstance(op, Update) else f"00U{len(after)}",
                fingerprint=op.fields.fingerprint(),
            )
        elif isinstance(op, Delete):
            after.pop(op.key, None)
    return after


@fast
@given(data=st.data(), planned=st.lists(copies, max_size=5), config=plan_settings, now=nows)
def test_plan_gives_one_operation_per_key_and_never_raises(
    data: st.DataObject, planned: list[MeetingCopy], config: PlanSettings, now: dt.datetime
) -> None:
    previous = data.draw(previous_for(planned))
    result = plan(planned, previous, DIRECTORY, config, now)
    keys = [op.key for op in result.operations]
    assert len(keys) == len(set(keys))
    assert set(keys) == {copy.key for copy in planned}


@fast
@given(data=st.data(), planned=st.lists(copies, max_size=5), config=plan_settings, now=nows)
def test_replanning_after_the_writes_only_skips(
    data: st.DataObject, planned: list[MeetingCopy], config: PlanSettings, now: dt.datetime
) -> None:
    previous = data.draw(previous_for(planned))
    first = plan(planned, previous, DIRECTORY, config, now)
    second = plan(planned, replayed(first, previous), DIRECTORY, config, now)
    assert all(isinstance(op, Skip) for op in second.operations), second.operations


@fast
@given(planned=st.lists(copies, max_size=5), config=plan_settings, now=nows)
def test_written_fields_respect_salesforce_limits(
    planned: list[MeetingCopy], config: PlanSettings, now: dt.datetime
) -> None:
    for op in plan(planned, {}, DIRECTORY, config, now).operations:
        if not isinstance(op, (Create, Update)):
            continue
        fields = op.fields
        assert 0 < len(fields.subject) <= 255
        assert fields.location is None or len(fields.location) <= 255
        assert fields.description is None or len(fields.description) <= 32_000
        assert 0 <= fields.duration_minutes <= 14 * 1440
        assert fields.start.utcoffset() == dt.timedelta(0)
        assert fields.who_id is not None
        if fields.who_id.startswith("00Q"):
            assert fields.what_id is None  # no WhatId with a Lead (reference B3)
        fields.fingerprint()  # serialisable


@fast
@given(planned=st.lists(copies, max_size=5), config=plan_settings)
def test_addresses_to_look_up_are_lowercased_external_addresses(
    planned: list[MeetingCopy], config: PlanSettings
) -> None:
    for address in addresses_to_look_up(planned, config):
        assert address == address.strip().lower() and "@" in address
        assert not address.endswith("@acme.test")
