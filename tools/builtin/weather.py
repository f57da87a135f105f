"""The `get_weather` tool: current conditions and a short daily forecast from Open-Meteo.

Open-Meteo needs no API key: its geocoder turns what people say ("Paris", "Paris, France")
into coordinates, and its forecast API gives the weather there in the place's own timezone.
The answer is a few short lines the model can read out: the temperature now in °C, the
conditions in words (from the WMO weather code), and each day's high, low and chance of
precipitation, today and tomorrow at least. Answers are cached per (place, days) for a
while: a conversation asks the same thing again, and the weather does not change by the
minute.

When Open-Meteo cannot be reached (offline, refused, a timeout, a 5xx) the tool says so as
a tool error telling the model to say the weather is unavailable, never a guess. Place
names come from the geocoder, so they are untrusted text: flattened and stripped of
chat-template and tool-call markers as web results are.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

from tools.base import Citation, Tool, ToolContext, ToolError, ToolResult, ToolSpec, TransientToolError
from tools.builtin.common import TtlCache, flatten_untrusted

__all__ = [
    "FORECAST_URL",
    "GEOCODING_URL",
    "MAX_DAYS",
    "MIN_DAYS",
    "NAME",
    "OpenMeteo",
    "Place",
    "WeatherUnavailable",
    "describe_code",
    "format_weather",
    "weather_tool",
]

NAME = "get_weather"
GEOCODING_URL = "https://geocoding-api.open-meteo.com"
FORECAST_URL = "https://api.open-meteo.com"
MAX_DAYS = 7
MIN_DAYS = 2
"""Today and tomorrow are always given: asked about tomorrow, the 1.5B planner asks for 1 day."""
_ANNOUNCE = "Let me check the weather in {location}."
_ANNOUNCE_EARLY = "Let me check the weather."
"""Said as soon as the tool is chosen; the place is named in the answer a moment later."""
_DESCRIPTION = (
    "Current weather and the forecast for a city or place: temperature, conditions, "
    "high and low, and the chance of rain."
)
_PARAMETERS = {
    "type": "object",
    "properties": {
        "location": {"type": "string", "description": "A city or place, like Paris or Paris, France."},
        "days": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_DAYS,
            "description": "Days to forecast, counting today (today and tomorrow are always given); 7 for the week.",
        },
    },
    "required": ["location"],
    "additionalProperties": False,
}
UNAVAILABLE = (
    "the weather service is unavailable right now ({reason}). Tell the user you cannot get the weather "
    "at the moment; do not guess the weather."
)
_NOT_FOUND = (
    'No place called "{location}" was found by the weather service. Tell the user, and ask which place '
    "they mean (a nearby city works)."
)
_SOURCE = "Open-Meteo"
_PLACE_CHARS = 60
_QUALIFIED_CANDIDATES = 10
_CURRENT = "temperature_2m,weather_code"
_DAILY = "weather_code,temperature_2m_max,temperature_2m_min,precipitation_probability_max"
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_WMO: dict[int, str] = {
    # WMO weather interpretation codes, as Open-Meteo documents them.
    0: "clear sky",
    1: "mainly clear",
    2: "partly cloudy",
    3: "overcast",
    45: "fog",
    48: "freezing fog",
    51: "light drizzle",
    53: "drizzle",
    55: "dense drizzle",
    56: "light freezing drizzle",
    57: "freezing drizzle",
    61: "light rain",
    63: "rain",
    65: "heavy rain",
    66: "light freezing rain",
    67: "freezing rain",
    71: "light snow",
    73: "snow",
    75: "heavy snow",
    77: "snow grains",
    80: "light rain showers",
    81: "rain showers",
    82: "violent rain showers",
    85: "light snow showers",
    86: "heavy snow showers",
    95: "thunderstorms",
    96: "thunderstorms with light hail",
    99: "thunderstorms with heavy hail",
}


class WeatherUnavailable(TransientToolError):
    """Open-Meteo could not be reached or failed: the model says the weather is unavailable."""


@dataclass(frozen=True)
class Place:
    name: str
    """How to say it: "Paris, Île-de-France, France" (flattened untrusted text)."""
    latitude: float
    longitude: float


def _number(value: Any) -> float | None:
    """A finite number from the JSON, or None (missing, null, or not a number)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def describe_code(code: Any) -> str | None:
    """The WMO weather code in words ("partly cloudy"), or None when it is missing or unknown."""
    number = _number(code)
    return None if number is None else _WMO.get(int(number))


def _place(row: Mapping[str, Any]) -> Place:
    parts: list[str] = []
    for key in ("name", "admin1", "country"):
        part = flatten_untrusted(str(row.get(key) or ""), _PLACE_CHARS)
        if part and part not in parts:
            parts.append(part)
    return Place(", ".join(parts) or "the place asked for", float(row["latitude"]), float(row["longitude"]))


def _matches(row: Mapping[str, Any], qualifier: str) -> bool:
    """Whether "France", "FR" or "Texas" (after the comma in "Paris, France") names this row's country or region."""
    names = (str(row.get(key) or "").casefold() for key in ("country", "country_code", "admin1"))
    return any(name and (name == qualifier or name.startswith(qualifier)) for name in names)


class OpenMeteo:
    """The two Open-Meteo APIs the tool reads; base URLs are injectable (a self-hosted
    instance, or a loopback fake in tests)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        geocoding_url: str = GEOCODING_URL,
        forecast_url: str = FORECAST_URL,
        timeout_s: float = 8.0,
    ) -> None:
        self._client = client
        self._search_url = geocoding_url.rstrip("/") + "/v1/search"
        self._forecast_url = forecast_url.rstrip("/") + "/v1/forecast"
        self._timeout = timeout_s

    async def _get(self, url: str, params: dict[str, str | int | float]) -> tuple[dict[str, Any], str]:
        """The JSON object at `url` and the URL asked; WeatherUnavailable when it cannot be had."""
        try:
            response = await self._client.get(url, params=params, timeout=self._timeout, follow_redirects=False)
            response.raise_for_status()
            body = response.json()
        except httpx.HTTPStatusError as error:
            status = error.response.status_code
            reason = UNAVAILABLE.format(reason=f"open-meteo: HTTP {status}")
            if status >= 500 or status == 429:
                raise WeatherUnavailable(reason) from error
            raise ToolError(reason) from error  # a 4xx will not pass by trying again
        except httpx.HTTPError as error:
            raise WeatherUnavailable(UNAVAILABLE.format(reason=f"open-meteo: {type(error).__name__}")) from error
        except ValueError as error:
            raise ToolError(UNAVAILABLE.format(reason="open-meteo: the reply was not JSON")) from error
        if not isinstance(body, dict):
            raise ToolError(UNAVAILABLE.format(reason="open-meteo: an unexpected reply"))
        return body, str(response.url)

    async def find(self, location: str) -> Place | None:
        """The best match for "Paris" or "Paris, France" (the part after the comma picks among
        same-named places), or None when the geocoder knows no such place."""
        name, _, qualifier = (part.strip() for part in location.partition(","))
        count = _QUALIFIED_CANDIDATES if qualifier else 1
        body, _ = await self._get(
            self._search_url, {"name": name or location, "count": count, "language": "en", "format": "json"}
        )
        rows = [row for row in body.get("results") or [] if isinstance(row, dict) and "latitude" in row]
        if not rows:
            return None
        wanted = qualifier.casefold()
        chosen = next((row for row in rows if _matches(row, wanted)), rows[0]) if wanted else rows[0]
        try:
            return _place(chosen)
        except (KeyError, TypeError, ValueError) as error:
            raise ToolError(UNAVAILABLE.format(reason="open-meteo: a place without coordinates")) from error

    async def forecast(self, place: Place, days: int) -> tuple[dict[str, Any], str]:
        """Open-Meteo's forecast (current and daily blocks) for `days` days, and its URL."""
        params: dict[str, str | int | float] = {
            "latitude": place.latitude,
            "longitude": place.longitude,
            "current": _CURRENT,
            "daily": _DAILY,
            "timezone": "auto",
            "forecast_days": days,
        }
        return await self._get(self._forecast_url, params)


def _degrees(value: Any) -> str | None:
    number = _number(value)
    return None if number is None else f"{round(number)}°C"


def _day_label(index: int, day: Any) -> str:
    if index == 0:
        return "Today"
    if index == 1:
        return "Tomorrow"
    try:
        return _WEEKDAYS[date.fromisoformat(str(day)).weekday()]
    except ValueError:
        return flatten_untrusted(str(day), 20) or f"Day {index + 1}"


def _column(daily: Mapping[str, Any], key: str, index: int) -> Any:
    values = daily.get(key)
    return values[index] if isinstance(values, list) and index < len(values) else None


def _day_line(daily: Mapping[str, Any], index: int) -> str:
    """ "Today: partly cloudy, high 21°C, low 12°C, 40% chance of precipitation." """
    parts = [describe_code(_column(daily, "weather_code", index))]
    high, low = (
        _degrees(_column(daily, "temperature_2m_max", index)),
        _degrees(_column(daily, "temperature_2m_min", index)),
    )
    parts += [f"high {high}" if high else None, f"low {low}" if low else None]
    chance = _number(_column(daily, "precipitation_probability_max", index))
    parts.append(None if chance is None else f"{round(chance)}% chance of precipitation")
    said = [part for part in parts if part]
    label = _day_label(index, _column(daily, "time", index))
    return f"{label}: {', '.join(said)}." if said else f"{label}: no forecast."


def format_weather(place: Place, forecast: Mapping[str, Any], url: str, days: int) -> ToolResult:
    """The lines the model reads, and the citation of Open-Meteo's forecast."""
    lines = [f"Weather in {place.name}, from {_SOURCE}:"]
    current = forecast.get("current")
    if isinstance(current, dict):
        now = [_degrees(current.get("temperature_2m")), describe_code(current.get("weather_code"))]
        if any(now):
            lines.append(f"Now: {', '.join(part for part in now if part)}.")
    daily = forecast.get("daily")
    if isinstance(daily, dict):
        count = min(days, len(daily.get("time") or []))
        lines.extend(_day_line(daily, index) for index in range(count))
    if len(lines) == 1:
        raise ToolError(UNAVAILABLE.format(reason="open-meteo: a forecast without data"))
    citation = Citation(
        id="1", source=_SOURCE, title=f"Weather forecast for {place.name}", snippet=" ".join(lines[1:3]), url=url
    )
    return ToolResult("\n".join(lines), citations=[citation])


def weather_tool(
    open_meteo: OpenMeteo, *, cache_ttl_s: float = 600.0, clock: Callable[[], float] = time.monotonic
) -> Tool:
    """The tool over `open_meteo`, caching each (place, days) answer for `cache_ttl_s` seconds."""
    cache: TtlCache[tuple[str, int], ToolResult] = TtlCache(cache_ttl_s, clock)

    async def handler(arguments: dict[str, Any], context: ToolContext) -> ToolResult:
        location = " ".join(str(arguments["location"]).split())
        days = max(MIN_DAYS, min(int(arguments.get("days") or 1), MAX_DAYS))
        key = (location.casefold(), days)
        result = cache.get(key)
        if result is None:
            place = await open_meteo.find(location)
            if place is None:
                result = ToolResult(_NOT_FOUND.format(location=flatten_untrusted(location, _PLACE_CHARS)))
            else:
                forecast, url = await open_meteo.forecast(place, days)
                result = format_weather(place, forecast, url, days)
            cache.put(key, result)
        return result

    spec = ToolSpec(
        name=NAME,
        description=_DESCRIPTION,
        parameters=_PARAMETERS,
        timeout_s=20.0,
        announce=_ANNOUNCE,
        announce_early=_ANNOUNCE_EARLY,
        read_only=True,
    )
    return Tool(spec=spec, handler=handler)
