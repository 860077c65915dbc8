"""Time zone names: a hint that suggests what the author meant when a name is not an IANA zone.

Authors write the city they mean (`America/San_Francisco`); IANA names one city per zone region
(`America/Los_Angeles`). Spelling similarity alone suggests nonsense there (San_Francisco -> Caracas), so the
hint looks up the city in a short table of common business cities first, then offers the zones of the
calendar's holiday country (from the system's `zone.tab`, when the platform ships one), and only then a
close spelling (a typo such as `Australia/Sidney`). Every hint ends with how to list the valid names.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from pathlib import Path
from zoneinfo import TZPATH, available_timezones

LIST_COMMAND = "python3 -c \"import zoneinfo; print(*sorted(zoneinfo.available_timezones()), sep='\\n')\""

# Common business cities that are not IANA zone names -> the zone whose clock they keep.
CITY_ZONES = {
    "sanfrancisco": "America/Los_Angeles", "seattle": "America/Los_Angeles", "sandiego": "America/Los_Angeles",
    "sanjose": "America/Los_Angeles", "paloalto": "America/Los_Angeles", "portland": "America/Los_Angeles",
    "lasvegas": "America/Los_Angeles", "saltlakecity": "America/Denver", "albuquerque": "America/Denver",
    "dallas": "America/Chicago", "houston": "America/Chicago", "austin": "America/Chicago",
    "minneapolis": "America/Chicago", "stlouis": "America/Chicago", "kansascity": "America/Chicago",
    "boston": "America/New_York", "washington": "America/New_York", "washingtondc": "America/New_York",
    "philadelphia": "America/New_York", "atlanta": "America/New_York", "miami": "America/New_York",
    "charlotte": "America/New_York", "pittsburgh": "America/New_York", "newyorkcity": "America/New_York",
    "nyc": "America/New_York", "montreal": "America/Toronto", "ottawa": "America/Toronto",
    "calgary": "America/Edmonton", "riodejaneiro": "America/Sao_Paulo", "brasilia": "America/Sao_Paulo",
    "canberra": "Australia/Sydney", "goldcoast": "Australia/Brisbane", "newcastle": "Australia/Sydney",
    "wellington": "Pacific/Auckland", "christchurch": "Pacific/Auckland",
    "manchester": "Europe/London", "edinburgh": "Europe/London", "glasgow": "Europe/London",
    "birmingham": "Europe/London", "cardiff": "Europe/London", "belfast": "Europe/London",
    "munich": "Europe/Berlin", "frankfurt": "Europe/Berlin", "hamburg": "Europe/Berlin", "cologne": "Europe/Berlin",
    "barcelona": "Europe/Madrid", "milan": "Europe/Rome", "geneva": "Europe/Zurich", "lyon": "Europe/Paris",
    "rotterdam": "Europe/Amsterdam", "antwerp": "Europe/Brussels", "cork": "Europe/Dublin",
    "mumbai": "Asia/Kolkata", "bombay": "Asia/Kolkata", "delhi": "Asia/Kolkata", "newdelhi": "Asia/Kolkata",
    "bangalore": "Asia/Kolkata", "bengaluru": "Asia/Kolkata", "chennai": "Asia/Kolkata", "hyderabad": "Asia/Kolkata",
    "beijing": "Asia/Shanghai", "shenzhen": "Asia/Shanghai", "guangzhou": "Asia/Shanghai",
    "osaka": "Asia/Tokyo", "kyoto": "Asia/Tokyo", "busan": "Asia/Seoul", "hanoi": "Asia/Ho_Chi_Minh",
    "saigon": "Asia/Ho_Chi_Minh", "abudhabi": "Asia/Dubai", "telaviv": "Asia/Jerusalem",
    "capetown": "Africa/Johannesburg", "durban": "Africa/Johannesburg", "abuja": "Africa/Lagos",
}


def _city_key(name: str) -> str:
    return re.sub(r"[^a-z]", "", name.rsplit("/", 1)[-1].lower())


@lru_cache(maxsize=1)
def _country_zones() -> dict[str, tuple[str, ...]]:
    """ISO country code -> its zones, from the system's zone.tab (empty where the platform has none)."""
    for base in TZPATH:
        tab = Path(base) / "zone.tab"
        try:
            text = tab.read_text(encoding="utf-8")
        except OSError:
            continue
        out: dict[str, list[str]] = {}
        for line in text.splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and not line.startswith("#"):
                out.setdefault(parts[0], []).append(parts[2])
        return {code: tuple(zones) for code, zones in out.items()}
    return {}


# Zones most people of a multi-zone country mean: listed first when a country's zones are suggested.
MAIN_ZONES = frozenset(CITY_ZONES.values()) | {
    "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix", "America/Los_Angeles",
    "America/Anchorage", "Pacific/Honolulu", "America/Halifax", "America/Winnipeg", "America/Vancouver",
    "Australia/Perth", "Australia/Adelaide", "Australia/Darwin", "Australia/Melbourne", "Australia/Brisbane",
    "America/Mexico_City", "Europe/Madrid", "Asia/Jakarta",
}


def country_zones(country: str) -> tuple[str, ...]:
    """The IANA zones of an ISO 3166 country, main zones first (empty when unknown or the platform ships no
    zone.tab)."""
    zones = _country_zones().get(country.upper(), ())
    return tuple(sorted(zones, key=lambda z: (z not in MAIN_ZONES, zones.index(z))))


def is_zone(name: str) -> bool:
    return name in available_timezones()


def zone_hint(zone: str, country: str | None = None) -> str:
    """The hint for a zone name that is not an IANA zone, suggesting by meaning (see the module docstring)."""
    city = CITY_ZONES.get(_city_key(zone))
    if city:
        suggestion = f"did you mean '{city}'? "
    else:
        in_country = country_zones(country or "")
        close = difflib.get_close_matches(zone, sorted(available_timezones()), n=1, cutoff=0.8)
        if close:
            suggestion = f"did you mean '{close[0]}'? "
        elif in_country:
            shown = ", ".join(in_country[:8]) + (", …" if len(in_country) > 8 else "")
            suggestion = f"zones of {(country or '').upper()}: {shown}; "
        else:
            suggestion = ""
    return (suggestion + "IANA names a zone after one city in it (America/Los_Angeles is also San Francisco's "
            f"time); list every valid name with: {LIST_COMMAND}")
