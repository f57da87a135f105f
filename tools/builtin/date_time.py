"""The `get_date_time` tool: the current date and time somewhere, resolved from what people say.

Speech models ask for "Tokyo", "New York", "sao paulo" or "Japan" far more often than for
"Asia/Tokyo", so the resolver accepts IANA names, the cities the tz database is named
after, a few big cities and countries it does not name, and "City, Country". It only
needs the tz database (the `tzdata` package or the system's), never the network.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from tools.base import Tool, ToolContext, ToolError, ToolResult, ToolSpec

__all__ = ["NAME", "date_time_tool", "resolve_timezone"]

NAME = "get_date_time"
_DESCRIPTION = "Current date and time in a timezone. Accepts an IANA name such as Asia/Tokyo or a city such as Tokyo."
_PARAMETERS = {
    "type": "object",
    "properties": {
        "timezone": {"type": "string", "description": "IANA timezone (Asia/Tokyo), city (Tokyo) or country."}
    },
    "required": ["timezone"],
    "additionalProperties": False,
}
_UNKNOWN = (
    "Unknown timezone or place {place!r}. Call get_date_time again with an IANA timezone name "
    "(for example Europe/Paris or America/Chicago) or the nearest large city."
)
_ANSWER = "It is {h12} on {weekday}, {day} {month} in {where}."
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = tuple("January February March April May June July August September October November December".split())
_OFFSET = re.compile(r"(?:utc|gmt)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?")
_REGIONS = {"africa", "america", "antarctica", "arctic", "asia", "atlantic", "australia", "europe", "indian", "pacific"}

_ALIASES: dict[str, tuple[str, str]] = {
    # Big cities the tz database does not name, and common short forms.
    "san francisco": ("America/Los_Angeles", "San Francisco"),
    "la": ("America/Los_Angeles", "Los Angeles"),
    "seattle": ("America/Los_Angeles", "Seattle"),
    "washington": ("America/New_York", "Washington"),
    "washington dc": ("America/New_York", "Washington"),
    "boston": ("America/New_York", "Boston"),
    "nyc": ("America/New_York", "New York"),
    "new york city": ("America/New_York", "New York"),
    "miami": ("America/New_York", "Miami"),
    "atlanta": ("America/New_York", "Atlanta"),
    "houston": ("America/Chicago", "Houston"),
    "dallas": ("America/Chicago", "Dallas"),
    "beijing": ("Asia/Shanghai", "Beijing"),
    "shenzhen": ("Asia/Shanghai", "Shenzhen"),
    "guangzhou": ("Asia/Shanghai", "Guangzhou"),
    "hong kong": ("Asia/Hong_Kong", "Hong Kong"),
    "mumbai": ("Asia/Kolkata", "Mumbai"),
    "bombay": ("Asia/Kolkata", "Mumbai"),
    "delhi": ("Asia/Kolkata", "Delhi"),
    "new delhi": ("Asia/Kolkata", "New Delhi"),
    "bangalore": ("Asia/Kolkata", "Bangalore"),
    "bengaluru": ("Asia/Kolkata", "Bengaluru"),
    "osaka": ("Asia/Tokyo", "Osaka"),
    "kyoto": ("Asia/Tokyo", "Kyoto"),
    "istanbul": ("Europe/Istanbul", "Istanbul"),
    "munich": ("Europe/Berlin", "Munich"),
    "frankfurt": ("Europe/Berlin", "Frankfurt"),
    "hamburg": ("Europe/Berlin", "Hamburg"),
    "barcelona": ("Europe/Madrid", "Barcelona"),
    "milan": ("Europe/Rome", "Milan"),
    "geneva": ("Europe/Zurich", "Geneva"),
    "st petersburg": ("Europe/Moscow", "St Petersburg"),
    "saint petersburg": ("Europe/Moscow", "Saint Petersburg"),
    "utc": ("UTC", "UTC"),
    "gmt": ("UTC", "UTC"),
    "z": ("UTC", "UTC"),
    # Countries with one timezone (legacy tz names such as "Japan" resolve here first).
    "japan": ("Asia/Tokyo", "Japan"),
    "germany": ("Europe/Berlin", "Germany"),
    "france": ("Europe/Paris", "France"),
    "uk": ("Europe/London", "the United Kingdom"),
    "united kingdom": ("Europe/London", "the United Kingdom"),
    "great britain": ("Europe/London", "the United Kingdom"),
    "britain": ("Europe/London", "the United Kingdom"),
    "england": ("Europe/London", "England"),
    "scotland": ("Europe/London", "Scotland"),
    "ireland": ("Europe/Dublin", "Ireland"),
    "india": ("Asia/Kolkata", "India"),
    "china": ("Asia/Shanghai", "China"),
    "korea": ("Asia/Seoul", "South Korea"),
    "south korea": ("Asia/Seoul", "South Korea"),
    "italy": ("Europe/Rome", "Italy"),
    "spain": ("Europe/Madrid", "Spain"),
    "netherlands": ("Europe/Amsterdam", "the Netherlands"),
    "switzerland": ("Europe/Zurich", "Switzerland"),
    "poland": ("Europe/Warsaw", "Poland"),
    "sweden": ("Europe/Stockholm", "Sweden"),
    "greece": ("Europe/Athens", "Greece"),
    "turkey": ("Europe/Istanbul", "Turkey"),
    "egypt": ("Africa/Cairo", "Egypt"),
    "israel": ("Asia/Jerusalem", "Israel"),
    "singapore": ("Asia/Singapore", "Singapore"),
    "thailand": ("Asia/Bangkok", "Thailand"),
    "vietnam": ("Asia/Ho_Chi_Minh", "Vietnam"),
    "philippines": ("Asia/Manila", "the Philippines"),
    "taiwan": ("Asia/Taipei", "Taiwan"),
    "new zealand": ("Pacific/Auckland", "New Zealand"),
    "uae": ("Asia/Dubai", "the United Arab Emirates"),
    "united arab emirates": ("Asia/Dubai", "the United Arab Emirates"),
    "nigeria": ("Africa/Lagos", "Nigeria"),
    "kenya": ("Africa/Nairobi", "Kenya"),
    "south africa": ("Africa/Johannesburg", "South Africa"),
    "argentina": ("America/Argentina/Buenos_Aires", "Argentina"),
}


def _normalize(text: str) -> str:
    """Lower case, no accents, underscores and runs of spaces as one space, no trailing 'time'."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[\s_]+", " ", text.replace(".", "")).strip().lower()
    return re.sub(r"\s+(?:time|timezone|time zone)$", "", text)


@cache
def _zone_index() -> tuple[dict[str, str], dict[str, str]]:
    """IANA names by normalized name (so "america/new york" works), and by city (the last component).

    Zones under the continental regions win over legacy and Etc names for a city, and
    the alphabetically first wins among those, so every lookup is deterministic.
    """
    zones = sorted(available_timezones() - {"localtime", "Factory"})
    exact = {_normalize(zone): zone for zone in zones}
    cities: dict[str, str] = {}
    for zone in sorted(zones, key=lambda z: (z.split("/")[0].lower() not in _REGIONS, z)):
        if "/" in zone and not zone.startswith(("Etc/", "SystemV/", "US/", "Canada/", "Brazil/", "Mexico/")):
            cities.setdefault(_normalize(zone.rsplit("/", 1)[1]), zone)
    return exact, cities


def _place_of(zone: str) -> str:
    return zone.rsplit("/", 1)[-1].replace("_", " ")


def _lookup(text: str) -> tuple[tzinfo, str, str] | None:
    """(tzinfo, place said back, zone name) for one phrase, or None."""
    key = _normalize(text)
    exact, cities = _zone_index()
    if key in _ALIASES:
        zone, place = _ALIASES[key]
        return ZoneInfo(zone), place, zone
    if key in exact:
        zone = exact[key]
        return ZoneInfo(zone), _place_of(zone), zone
    if key in cities:
        zone = cities[key]
        return ZoneInfo(zone), _place_of(zone), zone
    offset = _OFFSET.fullmatch(key)
    if offset:
        sign, hours, minutes = offset.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
        if delta <= timedelta(hours=14):
            fixed = timezone(-delta if sign == "-" else delta)
            label = f"UTC{_format_offset(delta if sign == '+' else -delta)}"
            return fixed, label, label
    return None


def resolve_timezone(text: str) -> tuple[tzinfo, str, str]:
    """(tzinfo, place to say, zone name) for an IANA name, city, country, "City, Country" or
    "Country/City" (written as if it were an IANA name: "Canada/Toronto").

    Raises ToolError with a message the model can act on when nothing matches.
    """
    found = _lookup(text)
    # "Paris, France" from its first part on; "Canada/Toronto", an IANA-like name that is none, from its last
    parts = text.split(",") if "," in text else text.split("/")[::-1]
    if found is None and len(parts) > 1:
        for part in parts:
            found = _lookup(part)
            if found is not None:
                break
    if found is None:
        raise ToolError(_UNKNOWN.format(place=text))
    return found


def _format_offset(delta: timedelta | None) -> str:
    total = int((delta or timedelta()).total_seconds()) // 60
    sign = "-" if total < 0 else "+"
    return f"{sign}{abs(total) // 60:02d}:{abs(total) % 60:02d}"


def _describe(moment: datetime, place: str) -> str:
    """The spoken answer: the 12-hour clock, weekday and date in English words, and the place.
    Only one clock: given both ("22:15 (10:15 PM)") the model read both out, a longer answer
    and an odd one. No zone name or offset after the place: "in Tokyo (Asia/Tokyo, UTC+09:00)"
    was read out too, and its 12 tokens were a fifth of what the answer's step read first. No
    year either, as people say the date ("Sunday, 6 December"): answers read it out ("... 6
    December 2026"), five more tokens to read and five to write (each digit is a token), and
    the planner's system prompt says the year."""
    h12 = f"{(moment.hour % 12) or 12}:{moment.minute:02d} {'AM' if moment.hour < 12 else 'PM'}"
    return _ANSWER.format(
        h12=h12,
        weekday=_WEEKDAYS[moment.weekday()],
        day=moment.day,
        month=_MONTHS[moment.month - 1],
        where=place,
    )


def date_time_tool(now: Callable[[], datetime] | None = None) -> Tool:
    """The tool; `now` (an aware datetime, naive means UTC) is injectable for tests."""
    clock = now or (lambda: datetime.now(UTC))

    async def handler(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        zone, place, _name = resolve_timezone(str(arguments["timezone"]))
        current = clock()
        if current.tzinfo is None:
            current = current.replace(tzinfo=UTC)
        return ToolResult(content=_describe(current.astimezone(zone), place))

    spec = ToolSpec(
        name=NAME,
        description=_DESCRIPTION,
        parameters=_PARAMETERS,
        timeout_s=5.0,
        announce=_announce,
        announce_early="Let me check the time.",  # as soon as the tool is chosen; the place comes in the answer
    )
    return Tool(spec=spec, handler=handler)


def _announce(arguments: Mapping[str, Any]) -> str:
    """ "Let me check the time in Tokyo.", naming the place as the resolver understood it."""
    try:
        _zone, place, _name = resolve_timezone(str(arguments.get("timezone", "")))
    except ToolError:
        return "Let me check the time."
    if "/" in place or any(c.isdigit() for c in place):  # no name worth saying, only an offset
        return "Let me check the time."
    return f"Let me check the time in {place}."
