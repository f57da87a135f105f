"""The issue's "done when" for custom tools and web search, with the real planner (slow on CPU).

An HTTP tool registered at run time on a loopback server (allow-listed) is called with the
right arguments and its result is in the answer; a tool of a real MCP server (stdio,
started by the service from settings) is called; a web search against a loopback
SearxNG-style server is cited; with no network, web search fails cleanly; a weather question
is answered from a loopback Open-Meteo.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from api.app import create_app
from api.settings import Settings
from tests.http_server import running_server
from tests.tool_fixtures import order_status_tool

pytestmark = pytest.mark.real

MCP_SCRIPT = str(Path(__file__).parent / "mcp_server.py")


PARIS = {"name": "Paris", "latitude": 48.85, "longitude": 2.35, "admin1": "Île-de-France", "country": "France"}
GEOCODED: list[str] = []


def _fake_web(received: list[dict[str, Any]]) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/search")
    async def geocode(name: str) -> dict[str, Any]:
        GEOCODED.append(name)
        return {"results": [PARIS]} if "paris" in name.lower() else {}

    @app.get("/v1/forecast")
    async def forecast(latitude: float, forecast_days: int) -> dict[str, Any]:
        days: dict[str, list[Any]] = {"time": ["2026-06-02", "2026-06-03"], "weather_code": [1, 61]}
        days |= {"temperature_2m_max": [27.2, 19.1], "temperature_2m_min": [16.1, 11.3]}
        days["precipitation_probability_max"] = [10, 90]
        daily = {key: values[:forecast_days] for key, values in days.items()}
        return {"timezone": "Europe/Paris", "current": {"temperature_2m": 23.4, "weather_code": 2}, "daily": daily}

    @app.post("/order-status")
    async def order_status(request: Request) -> dict[str, Any]:
        received.append(await request.json())
        return {"order": "A-1042", "status": "shipped on Tuesday, arriving Friday"}

    @app.get("/search")
    async def search(q: str, format: str) -> dict[str, Any]:
        return {
            "results": [
                {
                    "title": "Copper Kettle named best bistro of 2025",
                    "url": "https://news.example/kettle-award",
                    "content": "The Copper Kettle was named best bistro of 2025 by the city food guide.",
                }
            ]
        }

    return app


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    with running_server(_fake_web(received)) as web_url:
        settings = Settings(
            data_dir=tmp_path_factory.mktemp("data"),
            model_dir=data_dir,
            speak=False,
            web_search="searxng",
            searxng_url=web_url,  # type: ignore[arg-type]
            weather_geocoding_url=web_url,  # type: ignore[arg-type]
            weather_forecast_url=web_url,  # type: ignore[arg-type]
            tool_allow_private_hosts="127.0.0.1",
            mcp_servers=[{"name": "inventory", "command": sys.executable, "args": [MCP_SCRIPT]}],  # type: ignore[list-item]
        )
        with running_server(create_app(settings)) as url:
            definition = order_status_tool(web_url)
            assert httpx.post(f"{url}/v1/tools", json=definition).status_code == 201
            yield url, received


def _turn(url: str, session: str, text: str) -> dict[str, Any]:
    response = httpx.post(f"{url}/v1/sessions/{session}/turns", json={"text": text}, timeout=900)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_http_tool_registered_at_run_time(service: tuple[str, list[dict[str, Any]]]) -> None:
    url, received = service
    body = _turn(url, "order", "Where is my order A-1042?")
    assert [c["name"] for c in body["tool_calls"]][:1] == ["order_status"], body["tool_calls"]
    assert received and received[0].get("order_id") == "A-1042", received
    assert "friday" in body["answer"].lower() or "shipped" in body["answer"].lower(), body["answer"]


def test_tool_of_a_real_mcp_server(service: tuple[str, list[dict[str, Any]]]) -> None:
    url, _ = service
    body = _turn(url, "stock", "How many apples are in stock?")
    assert [c["name"] for c in body["tool_calls"]][:1] == ["inventory_stock_level"], body["tool_calls"]
    assert "12" in body["answer"], body["answer"]


def test_web_search_is_cited(service: tuple[str, list[dict[str, Any]]]) -> None:
    url, _ = service
    body = _turn(url, "web", "Search the web: which award did the Copper Kettle bistro win?")
    assert [c["name"] for c in body["tool_calls"]][:1] == ["web_search"], body["tool_calls"]
    assert body["citations"] and body["citations"][0]["url"] == "https://news.example/kettle-award"
    assert "best bistro" in body["answer"].lower(), body["answer"]


def test_weather_question_is_answered_from_open_meteo(service: tuple[str, list[dict[str, Any]]]) -> None:
    url, _ = service
    body = _turn(url, "weather", "What's the weather like in Paris today?")
    [call] = body["tool_calls"][:1]
    assert call["name"] == "get_weather" and "paris" in call["arguments"]["location"].lower(), body["tool_calls"]
    assert any("paris" in name.lower() for name in GEOCODED), GEOCODED
    assert body["citations"] and body["citations"][0]["source"] == "Open-Meteo"
    assert any(today in body["answer"] for today in ("23", "27", "16")), body["answer"]  # now, high or low
