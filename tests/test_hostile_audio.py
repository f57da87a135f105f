"""Hostile audio over HTTP: every container the decoder takes, malformed and as bombs (tests/hostile_audio.py).

Each file is a turn's upload to a real server (scripted planner, real VAD and recognizer).
A broken file answers 422 and a bomb 413, each with a message that says what is wrong;
nothing answers 5xx, and no case costs more memory than the decoded limit and a few copies
of the upload: the Python heap is traced per case and the process's peak RSS is watched.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from api.app import create_app
from api.compose import open_services
from api.settings import Settings
from model.audio import encode_wav
from model.testing import ScriptedPlanner
from tests.hostile_audio import Case, corpus
from tests.http_server import running_server
from tests.tally import rss_mb, tally

CASES = corpus()
HEAP_LIMIT = 64 * 2**20
"""Per case: the decoded limit (60 s as float32 is 3.8 MB) and copies of an upload of at most 3.6 MB."""
RSS_LIMIT_MB = 256
"""The process's peak RSS may rise this much over the whole corpus (a 1 Hz header once cost 750 MB)."""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, float]]:
    """The client, and the peak RSS once the server has answered one good upload (models loaded)."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("data"), speak=False, voices=False, web_search="off")
    app = create_app(settings, lambda s: open_services(s, planner=ScriptedPlanner(fallback="Fine.")))
    with running_server(app) as url, httpx.Client(base_url=url, timeout=120) as client:
        good = encode_wav(np.zeros(16000, dtype=np.float32), 16000)
        warm = client.post("/v1/sessions/warm/turns", files={"audio": ("a.wav", good, "audio/wav")})
        assert warm.status_code < 500, warm.text
        yield client, rss_mb()


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_audio_is_refused_with_a_message_in_bounded_memory(
    served: tuple[httpx.Client, float], case: Case
) -> None:
    client, baseline = served
    tracemalloc.start()
    try:
        response = client.post("/v1/sessions/hostile/turns", files={"audio": ("upload", case.data, "audio/x")})
        _, heap = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    growth = rss_mb() - baseline
    tally("audio over HTTP").record(response.status_code, heap_bytes=heap, rss_growth_mb=growth)

    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if case.refused:
        assert 400 <= response.status_code < 500, response.text
        detail = response.json()["detail"]
        assert isinstance(detail, str) and len(detail) > 10
    if case.too_long:
        assert response.status_code == 413, response.text
    assert case.says in response.json()["detail"]
    assert heap < HEAP_LIMIT, f"{case.name} took {heap / 2**20:.0f} MB of heap"
    assert growth < RSS_LIMIT_MB, f"peak RSS rose {growth:.0f} MB by {case.name}"
