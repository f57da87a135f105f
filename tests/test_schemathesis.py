"""Schemathesis over the app's OpenAPI document: every operation, no 5xx, answers as documented.

The app is the real one on a loopback server, with the scripted planner and a text-only
recognizer (no models to load for turns); tools that reach the network are off or pinned to
loopback. Bodies the routes read by hand (chat completions, documents, voices, turns) are
described in the document too, so they are generated like the rest. The realtime WebSocket
is not in the OpenAPI document (test_realtime.py covers it).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.testing import ScriptedPlanner, TextOnlyASR
from tests.http_server import running_server
from tests.tally import tally

EXAMPLES = 15
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _app(data_dir: Path) -> FastAPI:
    settings_ = Settings(data_dir=data_dir, web_search="off", tool_allow_private_hosts="127.0.0.1")
    planner = ScriptedPlanner(fallback="Fine.")
    return create_app(settings_, lambda s: open_services(s, planner=planner, asr=TextOnlyASR()))


# The document only: building the app opens nothing until it starts.
schema = schemathesis.openapi.from_dict(_app(Path(tempfile.mkdtemp())).openapi())


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_server(_app(tmp_path_factory.mktemp("data"))) as url:
        yield url


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api(case: schemathesis.Case, base_url: str) -> None:
    response = case.call(base_url=base_url, timeout=60)
    tally("schemathesis").record(response.status_code)
    case.validate_response(response, checks=CHECKS)


HAND_READ = {
    ("/v1/chat/completions", "application/json"),
    ("/v1/knowledge-bases/{kb}/documents", "application/json"),
    ("/v1/knowledge-bases/{kb}/documents", "multipart/form-data"),
    ("/v1/sessions/{session_id}/turns", "application/json"),
    ("/v1/sessions/{session_id}/turns", "multipart/form-data"),
    ("/v1/voices", "multipart/form-data"),
    ("/v1/voices/search", "multipart/form-data"),
}
"""Bodies the routes read by hand (under the body limits), which FastAPI alone would not document."""


def test_bodies_read_by_hand_are_described_so_they_are_fuzzed_too() -> None:
    paths = _app(Path(tempfile.mkdtemp())).openapi()["paths"]
    described = {(path, kind) for path, _ in HAND_READ for kind in paths[path]["post"]["requestBody"]["content"]}
    assert described == HAND_READ
    chat = paths["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert chat["required"] == ["messages"] and "$ref" not in str(chat), "inlined: no $defs to resolve"
    form = paths["/v1/voices"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["sample"] == {"type": "string", "format": "binary"}


def test_errors_are_documented_in_the_shape_they_have() -> None:
    """FastAPI documents its own 422 shape (a list of errors); the service answers `{"detail": str}`."""
    document = _app(Path(tempfile.mkdtemp())).openapi()
    answers = document["paths"]["/v1/sessions/{session_id}"]["delete"]["responses"]
    assert answers["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "HTTPValidationError" not in document["components"]["schemas"]
    chat = document["paths"]["/v1/chat/completions"]["post"]["responses"]["422"]["content"]["application/json"]
    assert {"$ref": "#/components/schemas/ChatError"} in chat["schema"]["anyOf"]
