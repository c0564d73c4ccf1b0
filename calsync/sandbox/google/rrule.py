"""The Google emulator's own RFC 5545 recurrence expander (singleEvents=true, reference A4).

Job: turn a series master's `start`/`end` and its `recurrence` lines (RRULE, RDATE, EXDATE) into
the slots Google lists as instances, and name each slot's instance id. It is written apart from
`calsync.rules.recurrence` (which uses dateutil) and uses neither, so that a misreading in calsync's
expansion shows up as a disagreement between the two instead of being copied into the emulator.

Readings chosen (RFC 5545, Google where it says more):
- The master's start (DTSTART) is always the first instance and counts toward COUNT, even when the
  BYxxx parts do not match it. §3.8.5.3: "The DTSTART property defines the first instance in the
  recurrence set" (it also calls a set whose DTSTART is "not synchronized with the recurrence
  rule" undefined); §3.3.10 COUNT: "The DTSTART property value always counts as the first
  occurrence"; Google shows such a first instance. EXDATE can still remove it. A start after
  UNTIL stays an instance.
- COUNT counts the rule's slots before EXDATE removes any (§3.8.5.3: the set is gathered from
  RRULE and RDATE, "and then excluding any start DATE-TIME values specified by EXDATE"); RDATE
  slots come on top of COUNT. A cancelled exception is the emulator's business: its slot is
  still generated here, so it still uses up its place in COUNT.
- Slots are expanded in wall-clock time of `start.timeZone`, for every FREQ (HOURLY and finer
  included, as dateutil does). A local time in a spring-forward gap takes the UTC offset from
  before the gap, so 02:30 becomes 03:30 summer time; an ambiguous autumn time is its first
  occurrence (§3.3.5, applied to instances by §3.3.10). Google is observed to do the same.
- Each instance lasts exactly as long as the master (§3.8.5.3: with DTEND "the same exact
  duration will apply"), so a slot's end is start + duration as an instant.
- UNTIL is inclusive. A UTC date-time bounds instants; a floating one is read in the series' zone.
  A DATE bounds dates: for an all-day series the last date, for a timed one the whole local day.
  For an all-day series a date-time UNTIL (Google accepts `UNTIL=20260106T000000Z`) bounds by the
  date written in it. COUNT and UNTIL together (forbidden by §3.3.10) end at whichever comes first.
- BYDAY ordinals (1MO, -1FR) count within the month for MONTHLY, within the month for YEARLY with
  BYMONTH and within the year otherwise (§3.3.10); for other frequencies the ordinal is ignored.
  Day parts missing from the rule come from DTSTART only when the rule has none (BYWEEKNO,
  BYYEARDAY, BYMONTHDAY, BYDAY): WEEKLY takes its weekday, MONTHLY its day of the month, YEARLY
  its month and day. A BYMONTHDAY (or DTSTART day) the month lacks skips that month (§3.3.10:
  invalid dates "MUST be ignored"), so a Feb 29 yearly series lands on leap years only.
- EXDATE/RDATE values: `TZID=` local times, UTC `Z`, floating (series zone), `VALUE=DATE` and comma
  lists; a `VALUE=PERIOD` RDATE counts by its start. On a timed series a DATE EXDATE removes every
  slot of that local day and a DATE RDATE adds that day at the start's time (unconfirmed: Google
  documents neither). EXRULE, deprecated by RFC 5545 (Appendix A.3), is ignored, as is any line
  that is not RRULE/EXRULE/RDATE/EXDATE.
- An all-day series repeating more often than daily (FREQ=HOURLY, BYHOUR) gives each date once.
- Bounds, so that no hostile rule can hang the emulator: no slot later than HORIZON after the
  start, at most MAX_PERIODS periods (FREQ intervals) examined per rule, at most `limit` slots.
  A sub-daily rule that matches rarely (FREQ=SECONDLY;BYHOUR=3) is thereby cut short.
"""

from __future__ import annotations

import calendar
import datetime as dt
import heapq
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from calsync.core.model import EventTime

UTC = dt.timezone.utc
# Callers never want more slots than this from one series.
MAX_SLOTS = 5000
# No slot later than this after the series' start (an impossible rule such as BYMONTH=2;
# BYMONTHDAY=30 would otherwise be searched for ever).
HORIZON = dt.timedelta(days=366 * 5)
# Periods (one FREQ interval each) examined per rule: bounds the CPU of rules that match rarely,
# such as FREQ=SECONDLY;BYSECOND=0 (60 periods per slot).
MAX_PERIODS = 20_000

FREQUENCIES = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY", "MINUTELY", "SECONDLY")
_CLOCK_STEPS = {"HOURLY": 3600, "MINUTELY": 60, "SECONDLY": 1}
WEEKDAYS = {"MO": 0, "TU": 1, "WE": 2, "TH": 3, "FR": 4, "SA": 5, "SU": 6}
# Allowed ranges of the numeric BYxxx parts (§3.3.10), and whether they may count from the end.
_NUMBER_PARTS = {
    "BYSECOND": (0, 60, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
_RULE_PARTS = frozenset(_NUMBER_PARTS) | {"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "WKST"}
_VALUE_RE = re.compile(r"(\d{4})(\d{2})(\d{2})(?:T(\d{2})(\d{2})(\d{2})(Z?))?\Z")
_BYDAY_RE = re.compile(r"([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)\Z")

# A value in an RDATE/EXDATE/UNTIL: a date, an aware date-time (UTC or TZID) or a floating one.
Moment = dt.date | dt.datetime


class RuleError(ValueError):
    """The recurrence lines or the master's start cannot be expanded."""


# -- reading the lines ----------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One RRULE (§3.3.10). Weekdays are 0 = Monday; `by_day` holds (ordinal or 0, weekday)."""

    freq: str
    interval: int = 1
    count: int | None = None
    until: Moment | None = None
    by_second: frozenset[int] = frozenset()
    by_minute: frozenset[int] = frozenset()
    by_hour: frozenset[int] = frozenset()
    by_day: tuple[tuple[int, int], ...] = ()
    by_month_day: frozenset[int] = frozenset()
    by_year_day: frozenset[int] = frozenset()
    by_week_no: frozenset[int] = frozenset()
    by_month: frozenset[int] = frozenset()
    by_set_pos: frozenset[int] = frozenset()
    week_start: int = 0


@dataclass(frozen=True)
class Recurrence:
    """What a master's `recurrence` lines say: its rules, added and removed dates."""

    rules: tuple[Rule, ...]
    rdates: tuple[Moment, ...]
    exdates: tuple[Moment, ...]


def parse(lines: Sequence[str]) -> Recurrence:
    """Read Google `recurrence` lines (no DTSTART, reference A4); RuleError if one is unreadable."""
    rules: list[Rule] = []
    rdates: list[Moment] = []
    exdates: list[Moment] = []
    for line in lines:
        name, params, value = _split_line(str(line))
        if name == "RRULE":
            rules.append(parse_rule(value))
        elif name == "RDATE":
            rdates.extend(_parse_dates(params, value))
        elif name == "EXDATE":
            exdates.extend(_parse_dates(params, value))
        # EXRULE and anything else: ignored (see the module docstring).
    return Recurrence(tuple(rules), tuple(rdates), tuple(exdates))


def _split_line(line: str) -> tuple[str, dict[str, str], str]:
    """`NAME;PARAM=V;...:VALUE` → (NAME, {PARAM: V}, VALUE) (§3.1 content lines)."""
    head, _, value = line.strip().partition(":")
    name, *raw_params = head.split(";")
    params = {}
    for raw in raw_params:
        key, _, param = raw.partition("=")
        params[key.strip().upper()] = param.strip().strip('"')
    return name.strip().upper(), params, value.strip()


def parse_rule(value: str) -> Rule:
    """Read an RRULE value such as `FREQ=WEEKLY;BYDAY=MO,WE;COUNT=4`."""
    parts: dict[str, str] = {}
    for part in value.split(";"):
        if not part.strip():
            continue  # a trailing ';' is harmless
        key, sep, raw = part.partition("=")
        key = key.strip().upper()
        if not sep or not raw.strip():
            raise RuleError(f"bad rule part {part!r}")
        if key not in _RULE_PARTS:
            raise RuleError(f"unknown rule part {key!r}")
        if key in parts:
            raise RuleError(f"{key} given twice")  # §3.3.10: each part at most once
        parts[key] = raw.strip().upper()
    freq = parts.get("FREQ")
    if freq not in FREQUENCIES:
        raise RuleError(f"FREQ must be one of {', '.join(FREQUENCIES)}, not {freq!r}")
    numbers = {
        key: _numbers(key, parts[key], *_NUMBER_PARTS[key]) for key in _NUMBER_PARTS if key in parts
    }
    return Rule(
        freq=freq,
        interval=_positive(parts, "INTERVAL") or 1,
        count=_positive(parts, "COUNT"),
        until=parse_value(parts["UNTIL"]) if "UNTIL" in parts else None,
        by_second=numbers.get("BYSECOND", frozenset()),
        by_minute=numbers.get("BYMINUTE", frozenset()),
        by_hour=numbers.get("BYHOUR", frozenset()),
        by_day=_weekdays(parts["BYDAY"]) if "BYDAY" in parts else (),
        by_month_day=numbers.get("BYMONTHDAY", frozenset()),
        by_year_day=numbers.get("BYYEARDAY", frozenset()),
        by_week_no=numbers.get("BYWEEKNO", frozenset()),
        by_month=numbers.get("BYMONTH", frozenset()),
        by_set_pos=numbers.get("BYSETPOS", frozenset()),
        week_start=_weekday(parts.get("WKST", "MO")),
    )


def _positive(parts: dict[str, str], key: str) -> int | None:
    if key not in parts:
        return None
    raw = parts[key]
    if not raw.isdigit() or int(raw) < 1:
        raise RuleError(f"{key} must be a positive integer, not {raw!r}")
    return int(raw)


def _numbers(key: str, raw: str, low: int, high: int, signed: bool) -> frozenset[int]:
    out = set()
    for item in raw.split(","):
        try:
            number = int(item)
        except ValueError:
            raise RuleError(f"{key} takes numbers, not {item!r}") from None
        if not (low <= abs(number) <= high) or (number < 0 and not signed):
            raise RuleError(f"{key} value {number} is out of range")
        out.add(number)
    return frozenset(out)


def _weekday(raw: str) -> int:
    if raw not in WEEKDAYS:
        raise RuleError(f"not a weekday: {raw!r}")
    return WEEKDAYS[raw]


def _weekdays(raw: str) -> tuple[tuple[int, int], ...]:
    out = []
    for item in raw.split(","):
        match = _BYDAY_RE.match(item.strip())
        ordinal = int(match.group(1)) if match and match.group(1) else 0
        if match is None or not (0 <= abs(ordinal) <= 53) or (match.group(1) and ordinal == 0):
            raise RuleError(f"bad BYDAY value {item!r}")
        out.append((ordinal, WEEKDAYS[match.group(2)]))
    return tuple(out)


def parse_value(text: str, zone: dt.tzinfo | None = None) -> Moment:
    """A DATE (`20260105`) or DATE-TIME (`20260105T160000`, `Z` for UTC) value (§3.3.4, §3.3.5).

    A floating date-time takes `zone` when one is given (a TZID parameter), else stays naive.
    """
    match = _VALUE_RE.match(text.strip().upper())
    if match is None:
        raise RuleError(f"not a DATE or DATE-TIME: {text!r}")
    year, month, day, hour, minute, second, utc = match.groups()
    try:
        if hour is None:
            return dt.date(int(year), int(month), int(day))
        # Second 60 (a leap second, §3.3.12) is read as the next instant's 59.
        moment = dt.datetime(
            int(year), int(month), int(day), int(hour), int(minute), min(int(second), 59)
        )
    except ValueError as exc:
        raise RuleError(f"not a valid date: {text!r}") from exc
    if utc:
        return moment.replace(tzinfo=UTC)
    return moment.replace(tzinfo=zone) if zone is not None else moment


def _parse_dates(params: dict[str, str], value: str) -> list[Moment]:
    """An RDATE/EXDATE value list: comma separated, with TZID and VALUE parameters (§3.8.5)."""
    zone = _zone_named(params["TZID"]) if params.get("TZID") else None
    out = []
    for item in value.split(","):
        if not item.strip():
            continue
        text = item.split("/", 1)[0]  # VALUE=PERIOD: the period's start is the slot (§3.3.9)
        moment = parse_value(text, zone)
        if params.get("VALUE", "").upper() == "DATE" and isinstance(moment, dt.datetime):
            raise RuleError(f"VALUE=DATE but {item!r} has a time")
        out.append(moment)
    return out


def _zone_named(name: str) -> dt.tzinfo:
    try:
        return ZoneInfo(name)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError on odd names
        raise RuleError(f"unknown time zone {name!r}") from exc


# -- the series ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """The master's start seen as the rule sees it: a naive local DTSTART in the series' zone."""

    first: dt.datetime  # naive wall-clock time (midnight for an all-day series)
    zone: dt.tzinfo  # UTC for an all-day series (its slots compare at midnight UTC)
    time_zone: str | None  # start.timeZone, carried into every slot
    length: dt.timedelta
    all_day: bool

    @classmethod
    def of(cls, start: EventTime, end: EventTime | None) -> Series:
        if start.date is not None:
            days = (end.date - start.date).days if end is not None and end.date else 1
            first = dt.datetime.combine(start.date, dt.time())
            return cls(first, UTC, start.time_zone, dt.timedelta(days=days), True)
        if start.date_time is None or start.date_time.tzinfo is None:
            raise RuleError("series master has no aware start")
        zone = _zone_named(start.time_zone) if start.time_zone else start.date_time.tzinfo
        first = start.date_time.astimezone(zone).replace(tzinfo=None)
        length = dt.timedelta(0)
        if end is not None and end.date_time is not None:
            length = end.date_time - start.date_time
        return cls(first, zone, start.time_zone, length, False)

    def instant(self, local: dt.datetime) -> dt.datetime:
        """When a local slot happens. `fold` is kept: replace() with fold=0 gives a gap time the
        offset from before the gap, an ambiguous time its first occurrence (§3.3.5)."""
        return local.replace(tzinfo=self.zone).astimezone(UTC)

    def local(self, moment: Moment) -> dt.datetime:
        """An RDATE as a local slot of this series."""
        if self.all_day:
            day = moment.date() if isinstance(moment, dt.datetime) else moment  # as written
            return dt.datetime.combine(day, dt.time())
        if not isinstance(moment, dt.datetime):
            return dt.datetime.combine(moment, self.first.time())
        if moment.tzinfo is None:
            return moment  # floating: the series' own wall clock
        return moment.astimezone(self.zone).replace(tzinfo=None)  # keeps fold on autumn repeats

    def event_times(self, local: dt.datetime) -> tuple[EventTime, EventTime]:
        if self.all_day:
            return EventTime(date=local.date()), EventTime(date=local.date() + self.length)
        begin = self.instant(local)
        return (
            EventTime(date_time=begin.astimezone(self.zone), time_zone=self.time_zone),
            EventTime(date_time=(begin + self.length).astimezone(self.zone),
                      time_zone=self.time_zone),
        )


def _removal_test(series: Series, exdates: Iterable[Moment]) -> Callable[[dt.datetime], bool]:
    """Whether EXDATE removes a local slot: same instant, or same date for DATE values."""
    days, instants = set(), set()
    for moment in exdates:
        if isinstance(moment, dt.datetime) and not series.all_day:
            local = moment if moment.tzinfo is not None else moment.replace(tzinfo=series.zone)
            instants.add(local.astimezone(UTC))
        else:
            days.add(moment.date() if isinstance(moment, dt.datetime) else moment)
    return lambda local: local.date() in days or (
        not series.all_day and series.instant(local) in instants
    )


# -- expansion -------------------------------------------------------------------------------


def slots(
    start: EventTime,
    end: EventTime | None,
    recurrence: Sequence[str],
    *,
    after: dt.datetime | None = None,
    before: dt.datetime | None = None,
    limit: int = MAX_SLOTS,
) -> Iterator[tuple[EventTime, EventTime]]:
    """Yield (start, end) of each slot of the series in order, as Google lists its instances.

    `after`/`before` (aware) bound slot starts, after inclusive and before exclusive; all-day
    slots compare at midnight UTC. At most `limit` slots. RuleError for unreadable input.
    """
    try:
        series = Series.of(start, end)
        lines = parse(recurrence)
        yield from _bounded(series, lines, after, before, limit)
    except RuleError:
        raise
    except (ArithmeticError, ValueError) as exc:  # dates beyond year 1..9999 near the edges
        raise RuleError(f"cannot expand recurrence: {exc}") from exc


def _bounded(
    series: Series,
    lines: Recurrence,
    after: dt.datetime | None,
    before: dt.datetime | None,
    limit: int,
) -> Iterator[tuple[EventTime, EventTime]]:
    removed = _removal_test(series, lines.exdates)
    given = 0
    for local in _merged(series, lines):
        if removed(local):
            continue
        moment = series.instant(local)
        if after is not None and moment < after:
            continue
        if before is not None and moment >= before:
            return
        if given >= limit:
            return
        given += 1
        yield series.event_times(local)


def _merged(series: Series, lines: Recurrence) -> Iterator[dt.datetime]:
    """Local slots of every rule and RDATE, in order, each instant once (§3.8.5.3: a set)."""
    horizon = _horizon(series.first)
    streams: list[Iterable[dt.datetime]] = [
        rule_slots(rule, series, horizon) for rule in lines.rules
    ]
    streams.append([series.first])  # DTSTART, even with only RDATEs or no rule at all
    streams.append(sorted(series.local(moment) for moment in lines.rdates))
    last: dt.datetime | dt.date | None = None
    for local in heapq.merge(*streams):
        if series.all_day:
            local = dt.datetime.combine(local.date(), dt.time())  # a BYHOUR is no time here
        # Identity of a slot: its date for all-day series, else its instant. Wall-clock steps
        # through a spring-forward gap can map two local times to one instant: keep the first.
        key = local.date() if series.all_day else series.instant(local)
        if last is not None and key <= last:  # type: ignore[operator]
            continue
        last = key
        yield local


def _horizon(first: dt.datetime) -> dt.datetime:
    try:
        return first + HORIZON
    except OverflowError:
        return dt.datetime.max


def rule_slots(rule: Rule, series: Series, horizon: dt.datetime) -> Iterator[dt.datetime]:
    """The local slots one RRULE gives: DTSTART first, then the rule's own slots after it, until
    COUNT (DTSTART included) or UNTIL; never past `horizon`."""
    within_until = _until_test(rule, series)
    yield series.first
    produced = 1
    for local in _candidates(rule, series.first, horizon):
        if rule.count is not None and produced >= rule.count:
            return
        if local <= series.first:
            continue  # the period holding DTSTART starts before it (§3.3.10: never before DTSTART)
        if not within_until(local):
            return
        produced += 1
        yield local


def _until_test(rule: Rule, series: Series) -> Callable[[dt.datetime], bool]:
    until = rule.until
    if until is None:
        return lambda local: True
    if isinstance(until, dt.datetime) and not series.all_day:
        bound = until if until.tzinfo is not None else until.replace(tzinfo=series.zone)
        return lambda local: series.instant(local) <= bound
    last_day = until.date() if isinstance(until, dt.datetime) else until
    return lambda local: local.date() <= last_day


def _candidates(rule: Rule, first: dt.datetime, horizon: dt.datetime) -> Iterator[dt.datetime]:
    """Every local time the rule's periods give, in order, from the period holding `first`."""
    if rule.freq in _CLOCK_STEPS:
        return _clock_candidates(rule, first, horizon)
    return _day_candidates(rule, first, horizon)


def _day_candidates(rule: Rule, first: dt.datetime, horizon: dt.datetime) -> Iterator[dt.datetime]:
    """DAILY, WEEKLY, MONTHLY, YEARLY: each period's matching days × times of day (§3.3.10)."""
    days_match = DayFilter.of(rule, first)
    times = [
        dt.time(hour, minute, second)
        for hour in sorted(rule.by_hour or {first.hour})
        for minute in sorted(rule.by_minute or {first.minute})
        for second in sorted(rule.by_second or {first.second})
        if second < 60  # BYSECOND=60 (leap second) never happens in zoneinfo time
    ]
    for index in range(MAX_PERIODS):
        try:
            days = _period_days(rule, first.date(), index)
        except (OverflowError, ValueError):
            return  # past year 9999
        if days[0] > horizon.date():
            return
        found = [dt.datetime.combine(day, at) for day in days if days_match(day) for at in times]
        for local in _set_positions(found, rule.by_set_pos):
            if local > horizon:
                return
            yield local


def _period_days(rule: Rule, first: dt.date, index: int) -> list[dt.date]:
    """The days of the `index`th period: the year, month, week (from WKST) or day holding
    `first`, stepped by INTERVAL periods."""
    step = index * rule.interval
    if rule.freq == "YEARLY":
        year = first.year + step
        return _days(dt.date(year, 1, 1), 366 if calendar.isleap(year) else 365)
    if rule.freq == "MONTHLY":
        months = first.year * 12 + first.month - 1 + step
        year, month = divmod(months, 12)
        return _days(dt.date(year, month + 1, 1), calendar.monthrange(year, month + 1)[1])
    if rule.freq == "WEEKLY":
        week = first - dt.timedelta(days=(first.weekday() - rule.week_start) % 7)
        return _days(week + dt.timedelta(weeks=step), 7)
    return [first + dt.timedelta(days=step)]


def _days(begin: dt.date, count: int) -> list[dt.date]:
    return [begin + dt.timedelta(days=n) for n in range(count)]


def _clock_candidates(
    rule: Rule, first: dt.datetime, horizon: dt.datetime
) -> Iterator[dt.datetime]:
    """HOURLY, MINUTELY, SECONDLY: periods stepped in wall-clock time; a period whose day, hour
    or minute the rule excludes jumps to the first period of the next day/hour/minute, so a rule
    that never matches (BYMONTH=2;BYMONTHDAY=-30) costs one step per day, not per second."""
    size = _CLOCK_STEPS[rule.freq]
    step = dt.timedelta(seconds=size * rule.interval)
    origin = first.replace(microsecond=0)
    if size >= 60:
        origin = origin.replace(second=0)
    if size >= 3600:
        origin = origin.replace(minute=0)
    days_match = DayFilter.of(rule, first)
    minutes: list[int | None] = [None]
    if size == 3600:
        minutes = list(sorted(rule.by_minute or {first.minute}))
    seconds: list[int | None] = [None]
    if size >= 60:
        seconds = [s for s in sorted(rule.by_second or {first.second}) if s < 60]
    index = 0
    for _ in range(MAX_PERIODS):
        try:
            period = origin + index * step
        except OverflowError:
            return
        if period > horizon:
            return
        resume = _next_possible(rule, days_match, period)
        if resume is not None:
            # The smallest index whose period starts at or after `resume`.
            index = max(index + 1, -((origin - resume) // step))
            continue
        found = [
            period.replace(
                minute=period.minute if minute is None else minute,
                second=period.second if second is None else second,
            )
            for minute in minutes
            for second in seconds
        ]
        for local in _set_positions(found, rule.by_set_pos):
            if local > horizon:
                return
            yield local
        index += 1


def _next_possible(
    rule: Rule, days_match: Callable[[dt.date], bool], period: dt.datetime
) -> dt.datetime | None:
    """None if the rule's limits let `period` through, else the earliest time that could match."""
    if not days_match(period.date()):
        return dt.datetime.combine(period.date() + dt.timedelta(days=1), dt.time())
    hour = period.replace(minute=0, second=0)
    if rule.by_hour and period.hour not in rule.by_hour:
        return hour + dt.timedelta(hours=1)
    minute = period.replace(second=0)
    if rule.freq != "HOURLY" and rule.by_minute and period.minute not in rule.by_minute:
        return minute + dt.timedelta(minutes=1)
    if rule.freq == "SECONDLY" and rule.by_second and period.second not in rule.by_second:
        return period + dt.timedelta(seconds=1)
    return None


def _set_positions(found: list[dt.datetime], positions: frozenset[int]) -> list[dt.datetime]:
    """BYSETPOS: the n-th (or n-th from last) of the period's sorted slots (§3.3.10)."""
    found = sorted(set(found))
    if not positions:
        return found
    size = len(found)
    chosen = {found[p - 1] if p > 0 else found[p] for p in positions if abs(p) <= size}
    return sorted(chosen)


@dataclass(frozen=True)
class DayFilter:
    """Which days a rule's day parts allow (BYMONTH, BYWEEKNO, BYYEARDAY, BYMONTHDAY, BYDAY).

    Expanding the period by a part and limiting it by the part give the same days, so every
    part is a test on a day of the period; only the defaults from DTSTART differ by FREQ.
    """

    months: frozenset[int]
    week_numbers: frozenset[int]
    year_days: frozenset[int]
    month_days: frozenset[int]
    weekdays: tuple[tuple[int, int], ...]
    week_start: int
    ordinal_scope: str | None  # "month", "year" or None (ordinals ignored)

    @classmethod
    def of(cls, rule: Rule, first: dt.datetime) -> DayFilter:
        months, month_days, weekdays = rule.by_month, rule.by_month_day, rule.by_day
        if not (rule.by_week_no or rule.by_year_day or rule.by_month_day or rule.by_day):
            # §3.3.10: what the rule leaves out comes from DTSTART.
            if rule.freq == "YEARLY":
                months = months or frozenset({first.month})
                month_days = frozenset({first.day})
            elif rule.freq == "MONTHLY":
                month_days = frozenset({first.day})
            elif rule.freq == "WEEKLY":
                weekdays = ((0, first.weekday()),)
        scope = None
        if rule.freq == "MONTHLY" or (rule.freq == "YEARLY" and rule.by_month):
            scope = "month"
        elif rule.freq == "YEARLY":
            scope = "year"
        return cls(
            months, rule.by_week_no, rule.by_year_day, month_days, weekdays, rule.week_start, scope
        )

    def __call__(self, day: dt.date) -> bool:
        if self.months and day.month not in self.months:
            return False
        if self.month_days:
            size = calendar.monthrange(day.year, day.month)[1]
            if not _counted(day.day, size, self.month_days):
                return False
        if self.year_days:
            size = 366 if calendar.isleap(day.year) else 365
            if not _counted(day.timetuple().tm_yday, size, self.year_days):
                return False
        if self.week_numbers:
            number, size = _week_number(day, self.week_start)
            if not _counted(number, size, self.week_numbers):
                return False
        return not self.weekdays or any(self._weekday(day, n, wd) for n, wd in self.weekdays)

    def _weekday(self, day: dt.date, ordinal: int, weekday: int) -> bool:
        if day.weekday() != weekday:
            return False
        if ordinal == 0 or self.ordinal_scope is None:
            return True
        if self.ordinal_scope == "month":
            size, position = calendar.monthrange(day.year, day.month)[1], day.day
        else:
            size = 366 if calendar.isleap(day.year) else 365
            position = day.timetuple().tm_yday
        # The n-th such weekday from the start, or from the end for a negative n.
        return ordinal == (position - 1) // 7 + 1 or ordinal == -((size - position) // 7 + 1)


def _counted(position: int, size: int, wanted: frozenset[int]) -> bool:
    """Whether position (1-based, of `size`) is wanted, counting negatives from the end."""
    return position in wanted or position - size - 1 in wanted


def _week_number(day: dt.date, week_start: int) -> tuple[int, int]:
    """(week number, weeks in its year) per §3.3.10 BYWEEKNO: weeks start on WKST and week 1 is
    the first with at least four days in the year, i.e. the one holding 4 January."""
    begin = day - dt.timedelta(days=(day.weekday() - week_start) % 7)
    year = (begin + dt.timedelta(days=3)).year  # the year holding most of the week

    def week_one(of_year: int) -> dt.date:
        fourth = dt.date(of_year, 1, 4)
        return fourth - dt.timedelta(days=(fourth.weekday() - week_start) % 7)

    return (begin - week_one(year)).days // 7 + 1, (week_one(year + 1) - week_one(year)).days // 7


def instance_suffix(slot_start: EventTime) -> str:
    """The `<masterId>_<suffix>` Google uses for instance ids (reference A4, observed)."""
    if slot_start.date is not None:
        return slot_start.date.strftime("%Y%m%d")
    assert slot_start.date_time is not None
    return slot_start.date_time.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
