"""Expansion of Google recurrence rules (RFC 5545 RRULE/EXRULE/RDATE/EXDATE lines) into slots.

Google gives a series master `start`/`end` (the first instance's) and `recurrence` lines without
DTSTART (reference A4); slots expand in `start.timeZone` so they keep their wall-clock time across
DST changes. Used by the planner (first occurrence of a series) and by the Google emulator
(singleEvents=true), so both read a rule the same way.
"""

from __future__ import annotations

import datetime as dt
import types
import warnings
from collections.abc import Iterator, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from dateutil import rrule

from calsync.core.model import EventTime

# A hostile rule (FREQ=SECONDLY forever) must not spin: callers never need more slots than this.
MAX_SLOTS = 5000
# Nor may an impossible one (BYMONTH=2;BYMONTHDAY=31), which dateutil searches for until year
# 9999: no rule is expanded further than this past its first instance.
HORIZON = dt.timedelta(days=366 * 5)
# Periods (days, weeks, months, years: the rule's FREQ) dateutil may step through for one rule,
# whether they hold a slot or not: a bound on CPU whatever the rule (FREQ=SECONDLY;BYSETPOS=2
# never selects a slot and steps one second at a time). About 50 ms at most.
MAX_PERIODS = 20_000


class RecurrenceError(ValueError):
    """The recurrence lines or the master's start cannot be expanded."""


def _zone(start: EventTime) -> dt.tzinfo | None:
    if start.time_zone:
        try:
            return ZoneInfo(start.time_zone)
        except Exception as exc:  # ZoneInfoNotFoundError, ValueError on odd names
            raise RecurrenceError(f"unknown time zone {start.time_zone!r}") from exc
    return start.date_time.tzinfo if start.date_time else None


def _dtstart(start: EventTime) -> dt.datetime:
    if start.date is not None:
        return dt.datetime.combine(start.date, dt.time())
    if start.date_time is None:
        raise RecurrenceError("series master has no start")
    zone = _zone(start)
    return start.date_time.astimezone(zone) if zone else start.date_time


def _normalise_lines(lines: Sequence[str], all_day: bool) -> str:
    """The RRULE/EXRULE lines for dateutil (RDATE/EXDATE are read by `_dates`)."""
    kept = []
    for line in lines:
        line = line.strip()
        name = line.split(":", 1)[0].split(";", 1)[0].upper()
        if name not in {"RRULE", "EXRULE"}:
            continue  # Google never sends DTSTART here; ignore anything else rather than fail
        if all_day:
            # All-day series are naive dates; dateutil refuses a UTC UNTIL with a naive DTSTART.
            line = line.replace("Z;", ";").rstrip("Z") if "UNTIL=" in line else line
        kept.append(line)
    return "\n".join(kept)


def slots(
    start: EventTime,
    end: EventTime | None,
    recurrence: Sequence[str],
    *,
    after: dt.datetime | None = None,
    before: dt.datetime | None = None,
    limit: int = MAX_SLOTS,
) -> Iterator[tuple[EventTime, EventTime]]:
    """Yield (start, end) of each slot of the series in order, as Google would list instances.

    `after`/`before` (aware) bound slot starts; all-day slots compare at midnight UTC.
    Raises RecurrenceError for rules dateutil cannot read.
    """
    try:
        yield from _slots(start, end, recurrence, after, before, limit)
    except RecurrenceError:
        raise
    except Exception as exc:  # odd dates (year 1 with a zone), naive/aware mixes: never escape raw
        raise RecurrenceError(f"cannot expand recurrence: {exc}") from exc


# Most days a month can have. A rule that can never match (Feb 30th) is refused up front, as it
# always was (the emulator refuses to store one); the others that never match end at the horizon
# (`_BoundedRule`) with no slot, which the planner reports as "recurrence has no occurrence".
_MONTH_DAYS = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30, 12: 31}


class _Exhausted(Exception):
    """A bounded rule went past its horizon or its budget of periods: it has no more slots."""


class _BoundedInfo(rrule._iterinfo):  # type: ignore[misc]
    """dateutil's per-period helper, counting the periods its expansion loop steps through.

    dateutil checks UNTIL only when a slot matches, so a rule whose filters never match (Feb
    30th, BYYEARDAY=366;BYMONTH=1, BYWEEKNO=53;BYMONTH=3) is searched period by period until year
    9999: seconds of CPU per rule. Its loop asks for each period's days here; past the horizon
    or the budget the expansion ends (`_Exhausted`) and the rule counts as having no more slots.
    """

    # No __slots__ of its own: dateutil's __init__ sets each name of `self.__slots__` to None,
    # which must stay its list.

    def __init__(self, rule: "_BoundedRule") -> None:
        super().__init__(rule)
        self._limit = rule.calsync_limit
        self._left = MAX_PERIODS

    def _step(self, year: int, month: int, day: int) -> None:
        self._left -= 1
        if self._left < 0 or (year, month, day) > self._limit:
            raise _Exhausted

    def ydayset(self, year: int, month: int, day: int) -> Any:
        self._step(year, 1, 1)
        return super().ydayset(year, month, day)

    def mdayset(self, year: int, month: int, day: int) -> Any:
        self._step(year, month, 1)
        return super().mdayset(year, month, day)

    def wdayset(self, year: int, month: int, day: int) -> Any:
        self._step(year, month, day)
        return super().wdayset(year, month, day)

    def ddayset(self, year: int, month: int, day: int) -> Any:
        self._step(year, month, day)
        return super().ddayset(year, month, day)


# dateutil's own expansion loop, unchanged, run with `_BoundedInfo` as its per-period helper (the
# loop finds `_iterinfo` among its globals). dateutil itself is not modified.
_dateutil_iter = types.FunctionType(
    rrule.rrule._iter.__code__, {**vars(rrule), "_iterinfo": _BoundedInfo}, "_iter"
)


class _BoundedRule(rrule.rrule):  # type: ignore[misc]
    """An rrule whose expansion stops after `calsync_limit` (a (year, month, day) in the rule's
    own frame) or MAX_PERIODS periods, whichever comes first."""

    calsync_limit: tuple[int, int, int]

    def _iter(self) -> Iterator[dt.datetime]:
        try:
            yield from _dateutil_iter(self)
        except _Exhausted:
            return


def _bounded(rule: rrule.rrule, limit: dt.datetime) -> rrule.rrule:
    bounded = rule.replace(until=limit)
    bounded.__class__ = _BoundedRule
    zone = rule._dtstart.tzinfo
    # The loop counts days in the rule's own zone: an UNTIL given in UTC may be a day earlier.
    local = limit.astimezone(zone) if zone is not None and limit.tzinfo is not None else limit
    bounded.calsync_limit = (local.year, local.month, local.day)
    return bounded


def _refuse_impossible(rules: rrule.rruleset) -> None:
    for rule in rules._rrule:
        months = rule._bymonth or ()
        days = [d for d in (rule._bymonthday or ()) if d > 0]
        if months and days and all(min(days) > _MONTH_DAYS[m] for m in months):
            raise RecurrenceError("the rule can never match a day (BYMONTH/BYMONTHDAY)")


def _bound(rules: rrule.rruleset, horizon: dt.datetime) -> None:
    """Cap every rule of the set at `horizon` (COUNT rules too: dateutil only warns), both as
    UNTIL and as a bound on the periods its expansion may search (`_BoundedRule`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        for name in ("_rrule", "_exrule"):
            bounded = []
            for rule in getattr(rules, name):
                until = rule._until
                if until is not None and until.tzinfo is None and horizon.tzinfo is not None:
                    until = until.replace(tzinfo=horizon.tzinfo)
                limit = min(until, horizon) if until is not None else horizon
                if limit.tzinfo is not None and rule._dtstart.tzinfo is None:
                    limit = limit.replace(tzinfo=None)
                bounded.append(_bounded(rule, limit))
            setattr(rules, name, bounded)


def _dates(lines: Sequence[str], name: str, dtstart: dt.datetime, zone: dt.tzinfo | None) -> list[dt.datetime]:
    """The dates of every `name` line (RDATE or EXDATE), in the form the rule set compares.

    RFC 5545 §3.8.5.1-2: a list of DATE-TIME values, floating, UTC (`Z`) or with `TZID=`, or of
    DATE values (`VALUE=DATE`). dateutil refuses `RDATE;TZID=` and cannot compare a floating
    value with a zoned series, so they are read here: floating values are in the series' zone;
    a date on a timed series means that day at the series' time; PERIOD values are skipped.
    """
    found: list[dt.datetime] = []
    all_day = dtstart.tzinfo is None and zone is None
    for line in lines:
        head, _, values = line.strip().partition(":")
        parts = head.split(";")
        if parts[0].strip().upper() != name:
            continue
        params = {k.strip().upper(): v.strip() for k, _, v in (p.partition("=") for p in parts[1:])}
        if params.get("VALUE", "").upper() == "PERIOD":
            continue
        where = ZoneInfo(params["TZID"]) if params.get("TZID") else zone
        for raw in values.split(","):
            raw = raw.strip()
            if not raw:
                continue
            if len(raw) == 8:
                day = dt.datetime.strptime(raw, "%Y%m%d")
                moment = day if all_day else day.replace(
                    hour=dtstart.hour, minute=dtstart.minute, second=dtstart.second, tzinfo=zone
                )
            else:
                utc = raw.upper().endswith("Z")
                moment = dt.datetime.strptime(raw.rstrip("Zz"), "%Y%m%dT%H%M%S")
                moment = moment.replace(tzinfo=dt.timezone.utc if utc else where)
                if all_day:
                    moment = dt.datetime.combine(moment.date(), dt.time())
                elif zone is not None and moment.tzinfo is not None:
                    moment = moment.astimezone(zone)
            found.append(moment)
    return found


def _start_is_first(rules: rrule.rruleset, dtstart: dt.datetime) -> None:
    """DTSTART is always the first instance, even where the rule does not match it.

    RFC 5545 §3.8.5.3: "The "DTSTART" property value always counts as the first occurrence",
    COUNT included; Google gives the master the first instance's start (reference A4). dateutil
    only yields dates the rule matches, so a Tuesday start with BYDAY=MO,WE would lose its first
    instance: add it as an RDATE and let a COUNT rule that does not match it count one less.
    """
    kept = []
    for rule in rules._rrule:
        count = rule._count
        if count is not None and next(iter(rule), None) != dtstart:
            if count <= 1:
                continue  # the start alone is the whole series
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                rule = rule.replace(count=count - 1)
        kept.append(rule)
    rules._rrule = kept
    rules.rdate(dtstart)


def _slots(
    start: EventTime,
    end: EventTime | None,
    recurrence: Sequence[str],
    after: dt.datetime | None,
    before: dt.datetime | None,
    limit: int,
) -> Iterator[tuple[EventTime, EventTime]]:
    all_day = start.date is not None
    dtstart = _dtstart(start)
    if end is not None and end.date is not None and all_day:
        length = dt.datetime.combine(end.date, dt.time()) - dtstart
    elif end is not None and end.date_time is not None and not all_day:
        # The exact duration, not the wall-clock one: an instance across a DST change lasts as
        # long as the master (RFC 5545 §3.8.5.3); aware datetimes of one zone subtract and add
        # in wall-clock time, so both ends go through UTC.
        length = end.date_time.astimezone(dt.timezone.utc) - start.date_time.astimezone(dt.timezone.utc)  # type: ignore[union-attr]
    else:
        length = dt.timedelta(days=1) if all_day else dt.timedelta(0)
    text = _normalise_lines(recurrence, all_day)
    try:
        zone = None if all_day else dtstart.tzinfo
        rdates = _dates(recurrence, "RDATE", dtstart, zone)
        exdates = _dates(recurrence, "EXDATE", dtstart, zone)
        if text:
            rules = rrule.rrulestr(text, dtstart=dtstart, forceset=True, unfold=True)
            _refuse_impossible(rules)
            _bound(rules, dtstart + HORIZON)
            _start_is_first(rules, dtstart)
        else:
            rules = rrule.rruleset()
            rules.rdate(dtstart)
        for moment in rdates:
            rules.rdate(moment)
        for moment in exdates:
            rules.exdate(moment)
    except Exception as exc:  # dateutil raises ValueError/TypeError/KeyError/Overflow...
        raise RecurrenceError(f"cannot read recurrence {list(recurrence)!r}: {exc}") from exc
    candidates: Iterator[dt.datetime] = iter(rules)
    count = 0
    while count < limit:
        try:
            slot = next(candidates)
        except StopIteration:
            return
        except Exception as exc:
            raise RecurrenceError(f"cannot expand recurrence: {exc}") from exc
        count += 1
        if all_day:
            instant = slot.replace(tzinfo=dt.timezone.utc)
        else:
            instant = slot
        if after is not None and instant < after:
            continue
        if before is not None and instant >= before:
            return
        if all_day:
            yield EventTime(date=slot.date()), EventTime(date=(slot + length).date())
        else:
            slot_end = (slot.astimezone(dt.timezone.utc) + length).astimezone(slot.tzinfo)
            yield (
                EventTime(date_time=slot, time_zone=start.time_zone),
                EventTime(date_time=slot_end, time_zone=start.time_zone),
            )


def instance_suffix(slot_start: EventTime) -> str:
    """The `<masterId>_<suffix>` Google uses for instance ids (reference A4, observed)."""
    if slot_start.date is not None:
        return slot_start.date.strftime("%Y%m%d")
    assert slot_start.date_time is not None
    return slot_start.date_time.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def same_slot(a: EventTime, b: EventTime) -> bool:
    """Whether two originalStartTime values name the same slot (compared as instants)."""
    if a.date is not None or b.date is not None:
        return a.date == b.date
    if a.date_time is None or b.date_time is None:
        return False
    return a.date_time == b.date_time
