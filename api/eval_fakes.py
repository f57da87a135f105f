"""The web and the weather on loopback, for `voicegraph eval`: no network, the same answers every run.

The eval scores which tool the planner chooses and with what arguments; the results only
have to be plausible for the answer that follows. So one small server answers as a SearxNG
instance (`/search?format=json`) and as Open-Meteo's geocoding and forecast APIs
(`/v1/search`, `/v1/forecast`), and the real `web_search` and `get_weather` tools are
pointed at it through their settings: their code runs as in service. Every place is found
(a misheard city still gets a forecast), with figures derived from its name.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["fake_web_and_weather"]


def _seed(text: str) -> int:
    return zlib.crc32(text.casefold().encode())


def _results(query: str) -> dict[str, Any]:
    slug = "-".join(query.lower().split())[:60]
    rows = [
        {
            "title": f"{query}: the latest",
            "url": f"https://news.example.org/{slug}",
            "content": f"Reports and updates on {query}, gathered from several sources this week.",
        },
        {
            "title": f"{query} explained",
            "url": f"https://guide.example.com/{slug}",
            "content": f"A short guide to {query}, with answers to common questions.",
        },
    ]
    return {"query": query, "results": rows}


def _places(name: str) -> dict[str, Any]:
    seed = _seed(name)
    place = {
        "name": name.strip().title(),
        "latitude": round((seed % 12000) / 100 - 60, 2),
        "longitude": round((seed // 12000 % 36000) / 100 - 180, 2),
        "country": "Examplia",
        "timezone": "UTC",
    }
    return {"results": [place]}


def _forecast(latitude: str, days: int) -> dict[str, Any]:
    seed = _seed(latitude)
    dates = [f"2026-06-{day:02d}" for day in range(1, days + 1)]
    return {
        "timezone": "UTC",
        "current": {
            "time": "2026-06-01T12:00",
            "temperature_2m": 10 + seed % 15,
            "weather_code": (0, 2, 3, 61)[seed % 4],
        },
        "daily": {
            "time": dates,
            "weather_code": [(0, 2, 61, 3)[(seed + i) % 4] for i in range(days)],
            "temperature_2m_max": [14 + (seed + i) % 12 for i in range(days)],
            "temperature_2m_min": [4 + (seed + i) % 8 for i in range(days)],
            "precipitation_probability_max": [(seed * (i + 1)) % 90 for i in range(days)],
        },
    }


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        body: dict[str, Any] | None = None
        if url.path == "/search":
            body = _results(query.get("q", ""))
        elif url.path == "/v1/search":
            body = _places(query.get("name", ""))
        elif url.path == "/v1/forecast":
            body = _forecast(query.get("latitude", ""), max(1, min(16, int(query.get("forecast_days", "2")))))
        data = json.dumps(body if body is not None else {"error": "not found"}).encode()
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the eval's own table is the output."""


@contextmanager
def fake_web_and_weather() -> Iterator[str]:
    """Serve on a loopback port the OS chooses; yields the base URL for both tools' settings."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
