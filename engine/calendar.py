"""Business calendars: working hours, public holidays, closures, time zones and DST, as pure arithmetic.

A `BusinessCalendar` answers "when is N hours of open business time after this instant?" and "how much
open business time lies between these two instants?". Everything is computed interval by interval, day by
day (each local date's open intervals are built once and cached), never by stepping through minutes.

Semantics (the contract the SLA module and policy authors rely on)
-------------------------------------------------------------------
* **Business time is real elapsed time** inside open intervals. Open intervals are local wall-clock
  intervals ``[start, end)`` per weekday, turned into UTC instants for each local date.
* **24:00.** An interval end of ``time(0, 0)`` means midnight at the *end* of the day (24:00); specs may
  write ``"24:00"``. ``00:00-24:00`` is the whole day. An interval cannot cross midnight: write
  ``fri: 22:00-24:00`` and ``sat: 00:00-02:00`` instead.
* **DST.** A local wall time that does not exist (in a spring-forward gap) is moved forward to the first
  instant after the gap (the transition instant); an ambiguous wall time (in a fall-back overlap) means its
  *first* occurrence. So 09:00-17:00 is 8 business hours on every working day, DST-change days included,
  while 00:00-24:00 is 23 or 25 hours on those days, and 01:00-05:00 on a spring-forward day at 02:00 is
  3 hours. An interval runs continuously from its opening instant to its closing instant.
* **Holidays** come from the ``holidays`` library, public category only (observed days included), for the
  calendar's country and subdivision (e.g. AU/QLD includes the Royal Queensland Show). Part-day holidays
  the library files under other categories (QLD "Christmas Eve (from 6pm)") are *not* applied: add a
  partial `Closure` if a calendar's hours reach into them. A public holiday closes the whole local day.
* **Closures**: a `Closure` without times closes the whole local day; with times it closes ``[start, end)``
  of that local day (start omitted = from 00:00, end omitted or ``time(0, 0)`` = to 24:00).
* **Zero duration**: ``add_business_time(start, 0)`` is ``start`` itself (in the calendar's zone), open or
  not. For a positive duration the result is the earliest instant at which that much open, unpaused time
  has elapsed, so it always lies inside or at the end of an open interval (4h from 13:00 on a 9-17 day is
  17:00 that day, not 09:00 the next).
* **Pauses** ``(start, end)`` are removed from the open time; they may begin before the clock starts and
  may overlap. An open-ended pause ``(start, None)`` stops the clock from ``start`` on: if the duration is
  used up before the pause begins the due instant is returned as usual (the SLA was due before the pause),
  otherwise ``add_business_time`` returns ``None`` -- "clock paused, no due date".
* Every instant passed in must be timezone-aware (naive -> ``ValueError``); any zone is accepted and
  results are returned in the calendar's zone.
* A calendar must have some weekly hours (``ValueError`` at construction). A search that meets more than
  `MAX_CLOSED_DAYS` consecutive closed days (a calendar closed by holidays/closures for years) raises
  ``ValueError`` instead of looping.
* ``parse_duration``: a bare number is hours; ``"d"`` is **24 hours of business time**, not one business
  day (``"2d"`` on a 9-17 calendar is 48 open hours, i.e. six working days).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from math import isfinite
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "BusinessCalendar",
    "Closure",
    "WeeklyHours",
    "parse_weekly_hours",
    "parse_duration",
    "MAX_CLOSED_DAYS",
    "MAX_DURATION",
]

UTC = timezone.utc
MIDNIGHT = time(0, 0)
ONE_DAY = timedelta(days=1)
ZERO = timedelta(0)

#: The longest run of consecutive closed local days a search walks through before giving up.
MAX_CLOSED_DAYS = 3 * 366
#: The longest duration `parse_duration` and `add_business_time` accept.
MAX_DURATION = timedelta(days=3660)
#: Per-calendar cache size for per-date open intervals (cleared when full).
_CACHE_LIMIT = 20_000

DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

Interval = tuple[time, time]
UtcInterval = tuple[datetime, datetime]


# --------------------------------------------------------------------------------------------------------
# small helpers


def _fmt_time(t: time, is_end: bool = False) -> str:
    if is_end and t == MIDNIGHT:
        return "24:00"
    s = f"{t.hour:02d}:{t.minute:02d}"
    if t.second or t.microsecond:
        s += f":{t.second:02d}"
        if t.microsecond:
            s += f".{t.microsecond:06d}"
    return s


def _fmt_interval(iv: Interval) -> str:
    return f"{_fmt_time(iv[0])}-{_fmt_time(iv[1], is_end=True)}"


def _end_offset(t: time) -> timedelta:
    """Offset from local midnight of an interval end (time(0, 0) = 24:00)."""
    if t == MIDNIGHT:
        return ONE_DAY
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _start_offset(t: time) -> timedelta:
    return timedelta(hours=t.hour, minutes=t.minute, seconds=t.second, microseconds=t.microsecond)


def _require_aware(value: object, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value


def _require_time(value: object, what: str) -> time:
    if not isinstance(value, time):
        raise ValueError(f"{what} must be a datetime.time, got {value!r}")
    if value.tzinfo is not None:
        raise ValueError(f"{what} must be a local wall time without tzinfo, got {value.isoformat()}")
    return value


def _normalize_day_intervals(day_label: str, intervals: object) -> tuple[Interval, ...]:
    """Validate, sort and merge touching intervals of one weekday."""
    if not isinstance(intervals, (tuple, list)):
        raise ValueError(f"hours for {day_label} must be a sequence of (start, end) pairs, got {intervals!r}")
    items: list[Interval] = []
    for iv in intervals:
        if not isinstance(iv, (tuple, list)) or len(iv) != 2:
            raise ValueError(f"hours for {day_label}: expected a (start, end) pair, got {iv!r}")
        start = _require_time(iv[0], f"hours for {day_label}: start")
        end = _require_time(iv[1], f"hours for {day_label}: end")
        if _end_offset(end) <= _start_offset(start):
            raise ValueError(
                f"hours for {day_label}: interval {_fmt_interval((start, end))} ends before it starts "
                "(an interval cannot cross midnight; split it across two days, using 24:00 as the end)"
            )
        items.append((start, end))
    items.sort(key=lambda iv: (_start_offset(iv[0]), _end_offset(iv[1])))
    merged: list[Interval] = []
    for iv in items:
        if merged:
            prev = merged[-1]
            if _start_offset(iv[0]) < _end_offset(prev[1]):
                raise ValueError(
                    f"hours for {day_label}: intervals {_fmt_interval(prev)} and {_fmt_interval(iv)} overlap"
                )
            if _start_offset(iv[0]) == _end_offset(prev[1]):
                merged[-1] = (prev[0], iv[1])
                continue
        merged.append(iv)
    return tuple(merged)


class WeeklyHours(Mapping[int, tuple[Interval, ...]]):
    """Read-only, hashable weekday (0=Mon..6=Sun) -> sorted, merged open intervals. Closed days are absent."""

    __slots__ = ("_data", "_hash")

    def __init__(self, data: Mapping[int, tuple[Interval, ...]]):
        self._data = {k: data[k] for k in sorted(data) if data[k]}
        self._hash = hash(tuple(self._data.items()))

    def __getitem__(self, key: int) -> tuple[Interval, ...]:
        return self._data[key]

    def __iter__(self) -> Iterator[int]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        parts = ", ".join(
            f"{DAY_NAMES[k][:3]}: {' '.join(_fmt_interval(iv) for iv in v)}" for k, v in self._data.items()
        )
        return f"WeeklyHours({{{parts}}})"


# --------------------------------------------------------------------------------------------------------
# holidays


@lru_cache(maxsize=1024)
def _holiday_table(country: str, subdivision: str | None, year: int) -> Mapping[date, str]:
    import holidays  # imported lazily: it is a heavy import and only calendars with holidays need it

    table = holidays.country_holidays(country, subdiv=subdivision, years=year, categories=("public",))
    return MappingProxyType({d: name for d, name in table.items() if d.year == year})


@lru_cache(maxsize=256)
def _check_holiday_region(country: str, subdivision: str | None) -> None:
    import holidays

    supported = holidays.list_supported_countries()
    if country not in supported:
        raise ValueError(
            f"unknown holiday country {country!r}: expected an ISO 3166-1 alpha-2 code supported by the "
            "holidays library, such as 'AU', 'US' or 'GB'"
        )
    try:
        holidays.country_holidays(country, subdiv=subdivision, years=2000, categories=("public",))
    except (NotImplementedError, KeyError, ValueError) as exc:
        subs = supported.get(country) or []
        if subdivision is not None:
            choices = ", ".join(subs) if subs else "none (this country has no subdivisions)"
            raise ValueError(
                f"unknown holiday subdivision {subdivision!r} for country {country!r}: expected one of {choices}"
            ) from exc
        raise ValueError(f"holidays for country {country!r} are not available: {exc}") from exc


# --------------------------------------------------------------------------------------------------------
# model


@dataclass(frozen=True)
class Closure:
    """A custom closure of one local date: the whole day, or ``[start, end)`` local time of that day.

    ``start`` None = from 00:00; ``end`` None or ``time(0, 0)`` = to 24:00. No times at all = whole day.
    """

    day: date
    start: time | None = None
    end: time | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.day, date) or isinstance(self.day, datetime):
            raise ValueError(f"closure day must be a date, got {self.day!r}")
        if self.start is not None:
            _require_time(self.start, "closure start")
        if self.end is not None:
            _require_time(self.end, "closure end")
        if self.start is not None and self.end is not None:
            if _end_offset(self.end) <= _start_offset(self.start):
                raise ValueError(
                    f"closure on {self.day.isoformat()}: {_fmt_interval((self.start, self.end))} "
                    "ends before it starts"
                )
        if not isinstance(self.name, str):
            raise ValueError(f"closure name must be a string, got {self.name!r}")

    @property
    def whole_day(self) -> bool:
        return (self.start is None or self.start == MIDNIGHT) and (self.end is None or self.end == MIDNIGHT)

    def local_span(self) -> tuple[timedelta, timedelta]:
        """Closed span as offsets from local midnight of `day`."""
        start = ZERO if self.start is None else _start_offset(self.start)
        end = ONE_DAY if self.end is None else _end_offset(self.end)
        return start, end


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours in a time zone, minus public holidays and closures. See the module docstring."""

    id: str
    timezone: str
    weekly_hours: Mapping[int, tuple[tuple[time, time], ...]]
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    closures: tuple[Closure, ...] = ()

    _zone: ZoneInfo = field(default=None, init=False, repr=False, compare=False, hash=False)  # type: ignore[assignment]
    _closures_by_day: Mapping[date, tuple[Closure, ...]] = field(
        default=None, init=False, repr=False, compare=False, hash=False  # type: ignore[assignment]
    )
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    # -- construction ------------------------------------------------------------------------------------

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"calendar id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.timezone, str):
            raise ValueError(f"calendar {self.id!r}: time zone must be a string, got {self.timezone!r}")
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
            raise ValueError(
                f"calendar {self.id!r}: unknown time zone {self.timezone!r}: expected an IANA name such as "
                "'Australia/Brisbane' or 'America/New_York'"
            ) from exc
        set_(self, "_zone", zone)

        if not isinstance(self.weekly_hours, Mapping):
            raise ValueError(f"calendar {self.id!r}: weekly_hours must be a mapping of weekday -> intervals")
        hours: dict[int, tuple[Interval, ...]] = {}
        for wd, ivs in self.weekly_hours.items():
            if not isinstance(wd, int) or isinstance(wd, bool) or not 0 <= wd <= 6:
                raise ValueError(f"calendar {self.id!r}: weekday keys must be 0 (Monday) .. 6 (Sunday), got {wd!r}")
            hours[wd] = _normalize_day_intervals(f"calendar {self.id!r}, {DAY_NAMES[wd]}", ivs)
        normalized = WeeklyHours(hours)
        if not normalized:
            raise ValueError(f"calendar {self.id!r}: calendar has no working hours")
        set_(self, "weekly_hours", normalized)

        country, subdiv = self.holiday_country, self.holiday_subdivision
        if country is not None:
            if not isinstance(country, str) or not country.strip():
                raise ValueError(f"calendar {self.id!r}: holiday_country must be a country code, got {country!r}")
            country = country.strip().upper()
            set_(self, "holiday_country", country)
        if subdiv is not None:
            if country is None:
                raise ValueError(
                    f"calendar {self.id!r}: holiday_subdivision {subdiv!r} given without a holiday_country"
                )
            if not isinstance(subdiv, str) or not subdiv.strip():
                raise ValueError(f"calendar {self.id!r}: holiday_subdivision must be a string, got {subdiv!r}")
            subdiv = subdiv.strip()
            set_(self, "holiday_subdivision", subdiv)
        if country is not None:
            try:
                _check_holiday_region(country, subdiv)
            except ValueError as exc:
                raise ValueError(f"calendar {self.id!r}: {exc}") from None

        closures = tuple(self.closures)
        by_day: dict[date, list[Closure]] = {}
        for c in closures:
            if not isinstance(c, Closure):
                raise ValueError(f"calendar {self.id!r}: closures must be Closure objects, got {c!r}")
            by_day.setdefault(c.day, []).append(c)
        set_(self, "closures", closures)
        set_(self, "_closures_by_day", MappingProxyType({d: tuple(v) for d, v in by_day.items()}))

    @property
    def zone(self) -> ZoneInfo:
        return self._zone

    # -- per-date facts ----------------------------------------------------------------------------------

    def holiday_name(self, day: date) -> str | None:
        """The public holiday's name on this local date, else a whole-day closure's name, else None."""
        if isinstance(day, datetime):
            raise TypeError("holiday_name takes a local date, not a datetime")
        if self.holiday_country is not None:
            name = _holiday_table(self.holiday_country, self.holiday_subdivision, day.year).get(day)
            if name:
                return name
        for c in self._closures_by_day.get(day, ()):
            if c.whole_day:
                return c.name or "closure"
        return None

    def open_intervals(self, day: date) -> tuple[tuple[datetime, datetime], ...]:
        """Open intervals of this LOCAL date as aware UTC instants ``[start, end)``, in order (cached)."""
        cache = self._cache
        hit = cache.get(day)
        if hit is not None:
            return hit
        if isinstance(day, datetime):
            raise TypeError("open_intervals takes a local date, not a datetime")
        result = self._compute_intervals(day)
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[day] = result
        return result

    def _compute_intervals(self, day: date) -> tuple[UtcInterval, ...]:
        spans = self.weekly_hours.get(day.weekday())
        if not spans or self.holiday_name(day) is not None:
            return ()
        local = [(_start_offset(s), _end_offset(e)) for s, e in spans]
        for c in self._closures_by_day.get(day, ()):
            cs, ce = c.local_span()
            cut: list[tuple[timedelta, timedelta]] = []
            for s, e in local:
                if ce <= s or cs >= e:
                    cut.append((s, e))
                    continue
                if s < cs:
                    cut.append((s, cs))
                if ce < e:
                    cut.append((ce, e))
            local = cut
        midnight = datetime(day.year, day.month, day.day)
        out: list[UtcInterval] = []
        for s, e in local:
            a = self._local_to_utc(midnight + s)
            b = self._local_to_utc(midnight + e)
            if a < b:
                out.append((a, b))
        return tuple(out)

    def _local_to_utc(self, wall: datetime) -> datetime:
        """A naive local wall time -> aware UTC instant (gap: first instant after it; overlap: first)."""
        zone = self._zone
        utc = wall.replace(tzinfo=zone).astimezone(UTC)  # fold=0: first occurrence when ambiguous
        if utc.astimezone(zone).replace(tzinfo=None) == wall:
            return utc
        # `wall` lies in a gap. fold=0 used the offset before the transition (too late an instant), fold=1
        # the offset after it (too early): the transition instant lies in (early, utc]. Transitions fall on
        # whole seconds, so bisect on seconds for the first instant carrying the post-transition offset.
        early = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
        before = early.astimezone(zone).utcoffset()
        lo, hi = int(early.timestamp()), int(utc.timestamp())
        if datetime.fromtimestamp(hi, UTC).astimezone(zone).utcoffset() == before:  # pragma: no cover
            return utc
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, UTC).astimezone(zone).utcoffset() == before:
                lo = mid
            else:
                hi = mid
        return datetime.fromtimestamp(hi, UTC)

    # -- instants ----------------------------------------------------------------------------------------

    def _local_date(self, utc: datetime) -> date:
        return utc.astimezone(self._zone).date()

    def is_open(self, at: datetime) -> bool:
        """Whether `at` lies inside an open interval (holidays and closures excluded)."""
        u = _require_aware(at, "at").astimezone(UTC)
        d = self._local_date(u)
        for day in (d - ONE_DAY, d):
            for a, b in self.open_intervals(day):
                if a <= u < b:
                    return True
        return False

    def next_open(self, at: datetime) -> datetime:
        """`at` itself if open, else the start of the next open interval; in the calendar's zone."""
        u = _require_aware(at, "at").astimezone(UTC)
        for a, _b in self._segments(u, ()):
            return a.astimezone(self._zone)
        raise AssertionError("unreachable: _segments without pauses never ends")  # pragma: no cover

    def add_business_time(
        self,
        start: datetime,
        duration: timedelta,
        pauses: Sequence[tuple[datetime, datetime | None]] = (),
    ) -> datetime | None:
        """The instant when `duration` of open, unpaused business time has elapsed after `start`.

        Returned in the calendar's zone; ``start`` itself when `duration` is zero; ``None`` when an
        open-ended pause stops the clock before the duration is used up.
        """
        u = _require_aware(start, "start").astimezone(UTC)
        if not isinstance(duration, timedelta):
            raise TypeError(f"duration must be a timedelta, got {type(duration).__name__}")
        if duration < ZERO:
            raise ValueError(f"duration must not be negative, got {duration}")
        if duration > MAX_DURATION:
            raise ValueError(f"duration {duration} is longer than the maximum {MAX_DURATION.days} days")
        if not duration:
            return u.astimezone(self._zone)
        remaining = duration
        for a, b in self._segments(u, _normalize_pauses(pauses)):
            span = b - a
            if span >= remaining:
                return (a + remaining).astimezone(self._zone)
            remaining -= span
        return None  # an open-ended pause stopped the clock

    def business_time_between(
        self,
        start: datetime,
        end: datetime,
        pauses: Sequence[tuple[datetime, datetime | None]] = (),
    ) -> timedelta:
        """Open, unpaused business time in ``[start, end)``; negative when `end` is before `start`."""
        u = _require_aware(start, "start").astimezone(UTC)
        v = _require_aware(end, "end").astimezone(UTC)
        if v < u:
            return -self.business_time_between(end, start, pauses)
        total = ZERO
        if v == u:
            return total
        for a, b in self._segments(u, _normalize_pauses(pauses)):
            if a >= v:
                break
            if b >= v:
                total += v - a
                break
            total += b - a
        return total

    # -- the walk ----------------------------------------------------------------------------------------

    def _segments(
        self, start: datetime, pauses: list[tuple[datetime, datetime | None]]
    ) -> Iterator[UtcInterval]:
        """Open, unpaused UTC segments at or after `start`, in order.

        Ends when an open-ended pause begins; raises ValueError after MAX_CLOSED_DAYS closed days in a row.
        """
        intervals = self.open_intervals
        day = self._local_date(start) - ONE_DAY  # the previous local day may end after `start` (24:00, DST)
        pos = start
        n = len(pauses)
        i = 0
        closed_run = 0
        while True:
            ivs = intervals(day)
            if not ivs:
                closed_run += 1
                if closed_run > MAX_CLOSED_DAYS:
                    raise ValueError(
                        f"calendar {self.id!r} has no open business time in {MAX_CLOSED_DAYS} consecutive "
                        f"days up to {day.isoformat()}"
                    )
                day += ONE_DAY
                continue
            closed_run = 0
            jumped = False
            for a, b in ivs:
                if b <= pos:
                    continue
                if a < pos:
                    a = pos
                while True:
                    while i < n:
                        pe = pauses[i][1]
                        if pe is not None and pe <= a:
                            i += 1
                        else:
                            break
                    if i < n:
                        ps, pe = pauses[i]
                        if ps <= a:
                            if pe is None:
                                return
                            a = pe
                            if pe > pos:
                                pos = pe
                                jumped = True
                            if a >= b:
                                break
                            continue
                        if ps < b:
                            yield a, ps
                            a = ps
                            continue
                    yield a, b
                    break
                if b > pos:
                    pos = b
            if jumped:
                # a pause may run for days: jump straight to the local day it ends on
                day = max(day + ONE_DAY, self._local_date(pos) - ONE_DAY)
            else:
                day += ONE_DAY
            if day.year >= 9999:
                raise ValueError(f"calendar {self.id!r}: search ran past the year 9998")


def _normalize_pauses(
    pauses: Sequence[tuple[datetime, datetime | None]],
) -> list[tuple[datetime, datetime | None]]:
    """Validate pauses, convert to UTC, sort and merge overlapping/touching ones."""
    if not pauses:
        return []
    items: list[tuple[datetime, datetime | None]] = []
    for k, p in enumerate(pauses):
        if not isinstance(p, (tuple, list)) or len(p) != 2:
            raise ValueError(f"pause #{k + 1} must be a (start, end) pair, got {p!r}")
        ps = _require_aware(p[0], f"pause #{k + 1} start").astimezone(UTC)
        pe = None if p[1] is None else _require_aware(p[1], f"pause #{k + 1} end").astimezone(UTC)
        if pe is not None and pe < ps:
            raise ValueError(f"pause #{k + 1} ends ({p[1].isoformat()}) before it starts ({p[0].isoformat()})")
        if pe is not None and pe == ps:
            continue
        items.append((ps, pe))
    items.sort(key=lambda p: p[0])
    merged: list[tuple[datetime, datetime | None]] = []
    for ps, pe in items:
        if merged:
            qs, qe = merged[-1]
            if qe is None:
                break  # everything after an open-ended pause is paused anyway
            if ps <= qe:
                merged[-1] = (qs, None if pe is None else max(qe, pe))
                continue
        merged.append((ps, pe))
    return merged


# --------------------------------------------------------------------------------------------------------
# spec parsing

_DAY_ALIASES: dict[str, int] = {}
for _i, _n in enumerate(DAY_NAMES):
    _DAY_ALIASES[_n] = _i
    _DAY_ALIASES[_n[:3]] = _i
_DAY_ALIASES.update({"tues": 1, "wed": 2, "weds": 2, "thur": 3, "thurs": 3})
_DAY_GROUPS: dict[str, tuple[int, ...]] = {
    "daily": tuple(range(7)),
    "everyday": tuple(range(7)),
    "weekdays": tuple(range(5)),
    "weekends": (5, 6),
    "weekend": (5, 6),
}
_TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")
_RANGE_RE = re.compile(r"^\s*([^\s\-–]+)\s*[-–]\s*([^\s\-–]+)\s*$")


def _day_list(key: object) -> tuple[int, ...]:
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"day key {key!r} must be a day name such as 'mon', 'mon-fri' or 'daily'")
    out: list[int] = []
    for part in key.split(","):
        p = part.strip().lower()
        if p in _DAY_GROUPS:
            out.extend(_DAY_GROUPS[p])
            continue
        if p in _DAY_ALIASES:
            out.append(_DAY_ALIASES[p])
            continue
        m = _RANGE_RE.match(p)
        if m and m.group(1) in _DAY_ALIASES and m.group(2) in _DAY_ALIASES:
            a, b = _DAY_ALIASES[m.group(1)], _DAY_ALIASES[m.group(2)]
            out.extend((a + k) % 7 for k in range(((b - a) % 7) + 1))  # "sun-thu" wraps over the week end
            continue
        bad = [w for w in re.split(r"[\s\-–]+", p) if w and w not in _DAY_ALIASES]
        what = repr(bad[0]) if bad else repr(part.strip())
        raise ValueError(
            f"unknown day {what} in {key!r}: use mon, tue, wed, thu, fri, sat, sun (or full names), "
            "a range such as 'mon-fri', or 'daily', 'weekdays', 'weekends'"
        )
    return tuple(out)


def _parse_clock(text: str, where: str, is_end: bool) -> time:
    m = _TIME_RE.match(text.strip())
    if not m:
        raise ValueError(f"{where}: {text.strip()!r} is not a time of day; write HH:MM, e.g. '08:30'")
    h, mi = int(m.group(1)), int(m.group(2))
    if h == 24 and mi == 0:
        if not is_end:
            raise ValueError(f"{where}: 24:00 can only end an interval")
        return MIDNIGHT
    if h > 23 or mi > 59:
        raise ValueError(f"{where}: {text.strip()!r} is not a valid time of day (00:00 to 23:59, or 24:00 as an end)")
    return time(h, mi)


def _parse_interval(text: object, where: str) -> Interval:
    if not isinstance(text, str):
        raise ValueError(f"{where}: expected an interval such as '08:30-17:00', got {text!r}")
    parts = re.split(r"\s*[-–]\s*", text.strip())
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"{where}: {text!r} is not an interval; write 'HH:MM-HH:MM', e.g. '08:30-17:00'")
    start = _parse_clock(parts[0], where, is_end=False)
    end = _parse_clock(parts[1], where, is_end=True)
    if _end_offset(end) <= _start_offset(start):
        raise ValueError(
            f"{where}: {text.strip()!r} ends at or before it starts (an interval cannot cross midnight; "
            "split it across two days and use 24:00 as the end)"
        )
    return start, end


def parse_weekly_hours(spec: Mapping[str, str | list[str]]) -> dict[int, tuple[tuple[time, time], ...]]:
    """Parse authored weekly hours into weekday (0=Mon..6=Sun) -> sorted open intervals.

    Keys: day names ("mon", "monday"), ranges ("mon-fri", "sun-thu" wraps), comma lists ("mon, wed"),
    or "daily" / "weekdays" / "weekends". Values: "08:30-17:00", a list of such, a comma-separated string,
    or "closed" / [] for no hours. "24:00" may end an interval. Touching intervals are merged.
    Raises ValueError with a precise message on any problem. Days not mentioned are closed.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"weekly hours must be a mapping of day -> hours, got {type(spec).__name__}")
    seen: dict[int, str] = {}
    out: dict[int, tuple[Interval, ...]] = {}
    for key, value in spec.items():
        days = _day_list(key)
        where = f"hours for {key!r}"
        if isinstance(value, str):
            raw = value.strip()
            items: list[object] = [] if raw.lower() in ("closed", "") else [p for p in raw.split(",")]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise ValueError(f"{where}: expected '08:30-17:00', a list of such intervals or 'closed', got {value!r}")
        intervals = [_parse_interval(item, where) for item in items]
        normalized = _normalize_day_intervals(repr(key), intervals)
        for d in days:
            if d in seen:
                first = seen[d]
                if first == key:
                    raise ValueError(f"{DAY_NAMES[d]} appears twice in {key!r}")
                raise ValueError(f"{DAY_NAMES[d]} is given twice: in {first!r} and in {key!r}")
            seen[d] = key
            if normalized:
                out[d] = normalized
    return dict(sorted(out.items()))


_DURATION_RE = re.compile(
    r"^\s*(?:(?P<d>\d+(?:\.\d+)?)\s*(?:d|days?)\s*)?"
    r"(?:(?P<h>\d+(?:\.\d+)?)\s*(?:h|hrs?|hours?)\s*)?"
    r"(?:(?P<m>\d+(?:\.\d+)?)\s*(?:m|mins?|minutes?)\s*)?$",
    re.IGNORECASE,
)


def parse_duration(text: str | int | float) -> timedelta:
    """Parse an SLA duration of business time.

    A number (or numeric string) is hours. Strings combine units in the order d, h, m: "4h", "30m",
    "1h30m", "1.5h", "2d 4h". "d" is 24 hours of business time (NOT one business day). Raises ValueError.
    """
    if isinstance(text, bool):
        raise ValueError(f"duration must be a number of hours or a string such as '4h', got {text!r}")
    try:
        if isinstance(text, (int, float)):
            if not isfinite(text) or text < 0:
                raise ValueError(f"duration must be a non-negative number of hours, got {text!r}")
            result = timedelta(hours=text)
        elif isinstance(text, str):
            s = text.strip()
            try:
                hours = float(s) if re.fullmatch(r"\d+(?:\.\d+)?", s) else None
            except ValueError:  # pragma: no cover
                hours = None
            if hours is not None:
                result = timedelta(hours=hours)
            else:
                m = _DURATION_RE.match(s)
                if not s or not m or not any(m.group(g) for g in "dhm"):
                    raise ValueError(
                        f"invalid duration {text!r}: write a number of hours or units in the order d, h, m, "
                        "such as '4h', '30m', '1h30m' or '2d' (d = 24 business hours)"
                    )
                result = timedelta(
                    days=float(m.group("d") or 0), hours=float(m.group("h") or 0), minutes=float(m.group("m") or 0)
                )
        else:
            raise ValueError(f"duration must be a number of hours or a string such as '4h', got {text!r}")
    except OverflowError:  # e.g. 99999999999999d: beyond what a timedelta holds
        raise ValueError(f"duration {text!r} is longer than the maximum of {MAX_DURATION.days} days") from None
    if result > MAX_DURATION:
        raise ValueError(f"duration {text!r} is longer than the maximum of {MAX_DURATION.days} days")
    return result
