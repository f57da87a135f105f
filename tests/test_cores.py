"""The planner leaves the speech models a core while they work (model/cores.py)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from model.cores import CORES, CoreShare, on_openmp_thread


def test_the_planner_gets_the_cores_nobody_else_is_using() -> None:
    share = CoreShare(cores=4)
    assert share.planner_threads() == 4
    with share.busy():
        assert share.planner_threads() == 3
        with share.busy(), share.busy(), share.busy():
            assert share.planner_threads() == 1  # never none
        assert share.planner_threads(most=2) == 2
    assert share.planner_threads() == 4
    assert share.planner_threads(most=2) == 2


def test_busy_is_counted_across_threads_and_released_on_error() -> None:
    share = CoreShare(cores=8)
    entered, release = threading.Barrier(5), threading.Event()

    def work() -> None:
        with share.busy():
            entered.wait()
            release.wait()

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    entered.wait()
    assert share.planner_threads() == 4
    release.set()
    for worker in workers:
        worker.join()
    with pytest.raises(RuntimeError), share.busy():
        raise RuntimeError("synthesis failed")
    assert share.planner_threads() == 8


@pytest.mark.real
def test_the_voice_runs_on_one_sleeping_thread_and_says_when_it_works() -> None:
    from model.tts import PiperTTS

    tts = PiperTTS()
    options = tts._voice.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    seen: list[int] = []
    original = tts._voice.synthesize

    def watched(*args: object, **kwargs: object) -> object:
        for chunk in original(*args, **kwargs):
            seen.append(CORES.planner_threads())
            yield chunk

    tts._voice.synthesize = watched
    chunks = list(tts.synthesize("One sentence. And another one."))
    assert len(chunks) == 2
    assert seen and all(threads == max(1, CORES.cores - 1) for threads in seen)
    assert CORES.planner_threads() == CORES.cores  # not while the caller holds the audio


def test_openmp_work_runs_on_one_thread_whoever_asks() -> None:
    with ThreadPoolExecutor(4) as pool:
        seen = set(pool.map(lambda _: on_openmp_thread(threading.get_ident), range(16)))
    assert len(seen) == 1 and threading.get_ident() not in seen
    assert on_openmp_thread(lambda: on_openmp_thread(threading.get_ident)) in seen  # from itself: at once
    with pytest.raises(ValueError, match="invalid literal"):
        on_openmp_thread(lambda: int("not a number"))


@pytest.mark.real
def test_the_speaker_encoder_computes_on_the_openmp_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from model.speaker import SpeakerEncoder

    encoder = SpeakerEncoder()
    model = encoder.load()
    ran_on: list[int] = []
    original = model.embed_utterance

    def watched(wav: object, **kwargs: object) -> object:
        ran_on.append(threading.get_ident())
        return original(wav, **kwargs)

    monkeypatch.setattr(model, "embed_utterance", watched)
    clip = np.random.default_rng(0).standard_normal(16_000).astype(np.float32) * 0.1
    vector = encoder.embed(clip, 16_000)
    assert vector.shape == (256,) and ran_on == [on_openmp_thread(threading.get_ident)]
