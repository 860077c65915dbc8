"""Source values -> lead values: numbers ("1,200"), booleans, bands ("201-500"), date-times (ISO, epoch ms,
date-only, naive in a declared zone). Each coercion raises CoerceError saying what it expected."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_PLAIN_NUMBER = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_BAND = re.compile(r"\s*(\d[\d,]*)\s*(?:-|–|to)\s*(\d[\d,]*)\s*")
_OPEN_BAND = re.compile(r"\s*(\d[\d,]*)\s*\+\s*")
_EPOCH = re.compile(r"-?\d{9,17}")
_TRUE = frozenset(("true", "t", "yes", "y", "1"))
_FALSE = frozenset(("false", "f", "no", "n", "0"))
EPOCH_MS_FROM = 10**11  # an epoch number at least this large is milliseconds (1973 in ms, year 5138 in seconds)
EPOCH_US_FROM = 10**14  # ... and at least this large, microseconds (GA4's event_timestamp; year 5138 in ms)


class CoerceError(ValueError):
    """A source value that cannot become the lead field's type; `expected` says what would have worked."""

    def __init__(self, expected: str):
        super().__init__(expected)
        self.expected = expected


@lru_cache(maxsize=64)
def zone(name: str) -> ZoneInfo:
    """An IANA zone (ValueError naming it when unknown)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{name}'") from None


def to_number(value: Any, integer: bool) -> int | float:
    """int/float/Decimal, or text such as "1200", "1,200", "1200.0", "3.5e2"; bool is refused."""
    if isinstance(value, bool):
        raise CoerceError("a number")
    if isinstance(value, (int, float, Decimal)):
        number: int | float = value if isinstance(value, int) else float(value)
    else:
        text = str(value).strip()
        if _THOUSANDS.fullmatch(text):
            text = text.replace(",", "")
        elif not _PLAIN_NUMBER.fullmatch(text):
            raise CoerceError("a whole number such as 1200 or 1,200" if integer else "a number such as 1200.5 or 1,200")
        number = int(text) if text.lstrip("+-").isdigit() else float(text)
    if isinstance(number, float):
        if number != number or number in (float("inf"), float("-inf")):
            raise CoerceError("a finite number")
        if integer or number.is_integer() and abs(number) < 2**53:
            if not number.is_integer():
                raise CoerceError("a whole number")
            number = int(number)
    return number


def to_band(value: Any, bound: str) -> int:
    """A band such as "201-500" (lower 201, upper 500) or "10,001+" (both 10001); a plain number passes."""
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return int(to_number(value, True))
    text = str(value)
    match = _BAND.fullmatch(text)
    if match:
        low, high = (int(g.replace(",", "")) for g in match.groups())
        return low if bound == "lower" else high
    match = _OPEN_BAND.fullmatch(text)
    if match:
        return int(match.group(1).replace(",", ""))
    try:
        return int(to_number(text, True))
    except CoerceError:
        raise CoerceError("a band such as 201-500 or 10,001+, or a whole number") from None


def to_bool(value: Any) -> bool:
    """true/false, yes/no, y/n, t/f, 1/0 in any case (JSON booleans and 0/1 numbers too)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise CoerceError("true or false (also yes/no, 1/0)")


def to_datetime(value: Any, zone_name: str) -> str:
    """An ISO 8601 date-time with an offset, from: an aware or naive datetime (naive = in `zone_name`), a date
    (midnight in `zone_name`), epoch seconds or milliseconds (HubSpot), ISO text with or without an offset
    ("2026-11-20T03:04:05.000+0000", "2026-11-20 14:03") or a date alone (Salesforce ActivityDate)."""
    if value.__class__ is str and value.isdigit() and 9 <= len(value) <= 14:  # the batch path: epoch (ms)
        return _epoch(float(value)).isoformat()
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        moment = _epoch(float(value))
    else:
        text = str(value).strip()
        if _EPOCH.fullmatch(text):
            moment = _epoch(float(text))
        else:
            if text.endswith(("Z", "z")):
                text = text[:-1] + "+00:00"
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise CoerceError("an ISO 8601 date-time (2026-11-20T09:30:00Z), a date (2026-11-20) "
                                  "or epoch milliseconds") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        moment = moment.replace(tzinfo=zone(zone_name))
    return moment.isoformat()


def _epoch(number: float) -> datetime:
    seconds = number / 1_000_000 if abs(number) >= EPOCH_US_FROM else number / 1000 if abs(number) >= EPOCH_MS_FROM \
        else number
    try:
        return datetime.fromtimestamp(seconds, timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise CoerceError("epoch seconds, milliseconds or microseconds within years 1970-9999") from None


def spelling(value: Any) -> str:
    """The text a value-map key is compared with: JSON true -> "true", 12.0 -> "12", text trimmed."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


__all__ = ["CoerceError", "EPOCH_MS_FROM", "spelling", "to_band", "to_bool", "to_datetime", "to_number", "zone"]
