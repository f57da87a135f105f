"""The voice library on the real path: real Chroma, real resemblyzer, real Piper and espeak-ng.

The built-ins are rendered once for the module (a few seconds); each test then asks one
thing of them: text search, search by example, adding a voice from a clip, the
audio_search tool (and the names of the tenant's voices it gives the recognizer), and the
synthesizer's voice ids.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from agent.context import AgentDeps
from agent.memory import InMemoryBackend
from agent.runner import TurnRunner
from api.settings import Settings
from api.voicing import open_voice_library
from model.audio import encode_wav
from model.speaker import SpeakerEncoder, estimate_pitch
from model.testing import ScriptedPlanner
from model.voices import DEFAULT_VOICE_ID, EspeakTTS, VoiceSynthesizer, parse_voice_id
from retrieval.errors import InvalidNameError
from retrieval.registrations import LocalRegistrations
from retrieval.voice_catalogue import BUILTIN_VOICES
from retrieval.voices import VoiceLibrary, VoiceSampleError
from tools.base import ToolContext
from tools.builtin.audio_search import audio_search_tool
from tools.registry import ToolRegistry

pytestmark = pytest.mark.anyio

SCOTTISH_DEEP_SLOW = "espeak:en-gb-scotland+m3:deep-slow"
OTHER_WORDS = "Some other words, spoken here for a test of the search by example, and a little more."


@pytest.fixture(scope="module")
def tts() -> VoiceSynthesizer:
    return VoiceSynthesizer.default()


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("voices-data"))


@pytest.fixture(scope="module")
def library(settings: Settings, tts: VoiceSynthesizer) -> VoiceLibrary:
    return open_voice_library(settings, tts, registrations=LocalRegistrations())


def _speak(tts: VoiceSynthesizer, text: str, voice: str | None) -> np.ndarray:
    return np.concatenate(list(tts.synthesize(text, voice)))


def test_voice_ids_parse_to_engine_voice_pitch_and_rate() -> None:
    style = parse_voice_id(SCOTTISH_DEEP_SLOW)
    assert (style.engine, style.voice) == ("espeak", "en-gb-scotland+m3")
    assert style.pitch < 1 and style.rate < 1
    assert parse_voice_id("piper:joe:p1.10-r0.90").id == "piper:joe:p1.10-r0.90"
    assert parse_voice_id(DEFAULT_VOICE_ID).id == DEFAULT_VOICE_ID
    for bad in ("joe", "piper:mary", "espeak:en us", "espeak:en:loud", "festival:kal"):
        with pytest.raises(ValueError):
            parse_voice_id(bad)


def test_piper_variants_change_pitch_and_length(tts: VoiceSynthesizer) -> None:
    plain = _speak(tts, OTHER_WORDS, None)
    deep_slow = _speak(tts, OTHER_WORDS, "piper:joe:deep-slow")
    assert estimate_pitch(deep_slow, tts.sample_rate) < 0.92 * estimate_pitch(plain, tts.sample_rate)
    assert deep_slow.size > 1.15 * plain.size


def test_unknown_voice_falls_back_to_the_default(tts: VoiceSynthesizer, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        fallback = _speak(tts, "Hello there.", "festival:kal")
    assert "festival:kal" in caplog.text
    assert fallback.size and tts.style("festival:kal").id == DEFAULT_VOICE_ID
    assert not tts.accepts("festival:kal") and tts.accepts(SCOTTISH_DEEP_SLOW)


@pytest.mark.parametrize("option", ["-f{path}", "--path={path}", "-w{path}.wav"])
def test_espeak_speaks_text_that_looks_like_an_option(tmp_path: Path, option: str) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("This file must never be read aloud. " * 40)
    text = option.format(path=secret)
    espeak = EspeakTTS()
    style = parse_voice_id("espeak:en-us")
    heard = espeak.speak(text, style)
    as_words = espeak.speak("say " + text, style)  # not at the start, so never an option
    assert 0.3 * len(as_words) < len(heard) < len(as_words), "the option was spoken as words"
    assert not Path(f"{secret}.wav").exists()


def test_builtins_are_rendered_once_per_data_dir(library: VoiceLibrary, settings: Settings) -> None:
    voices = library.list_voices("local")
    assert [v.id for v in voices] == [entry.id for entry in BUILTIN_VOICES]
    assert all(Path(v.sample_path).is_file() and v.builtin for v in voices)
    assert library.ensure_builtins() == 0  # a restart finds them in Chroma and on disk
    assert library.sample_wav(DEFAULT_VOICE_ID) and library.sample_wav("espeak:xx") is None


def test_search_by_description(library: VoiceLibrary) -> None:
    assert library.search("local", "a deep, slow voice with a Scottish accent")[0].voice.id == SCOTTISH_DEEP_SLOW
    assert library.search("local", "whisper")[0].voice.id == "espeak:en+whisper"
    assert "en-gb" in library.search("local", "a woman with a British accent")[0].voice.id


def test_search_by_example_finds_the_speaker(library: VoiceLibrary, tts: VoiceSynthesizer) -> None:
    piper = library.search_by_example("local", _speak(tts, OTHER_WORDS, None), tts.sample_rate)
    assert piper[0].voice.engine == "piper"
    scottish = library.search_by_example("local", _speak(tts, OTHER_WORDS, SCOTTISH_DEEP_SLOW), tts.sample_rate)
    assert scottish[0].voice.engine == "espeak"
    with pytest.raises(VoiceSampleError):
        library.search_by_example("local", np.zeros(1000, dtype=np.float32), tts.sample_rate)


def test_added_voice_matches_the_sample_pitch_and_stays_with_its_tenant(
    library: VoiceLibrary, tts: VoiceSynthesizer
) -> None:
    clip = _speak(tts, OTHER_WORDS, "espeak:en-us+f2:p1.10")
    voice = library.add("acme", description="my own bright voice", clip=encode_wav(clip, tts.sample_rate))
    assert not voice.builtin and voice.name == "my own bright voice" and tts.accepts(voice.id)
    wanted = estimate_pitch(clip, tts.sample_rate)
    assert abs(voice.pitch_hz - wanted) < 0.2 * wanted  # the rendered sample speaks at the clip's pitch
    assert voice.id in [v.id for v in library.list_voices("acme")]
    assert voice.id not in [v.id for v in library.list_voices("local") if not v.builtin]
    assert library.sample_wav(voice.id) and library.sample_wav(voice.id, "acme")
    assert library.sample_wav(voice.id, "globex") is None and library.sample_wav(DEFAULT_VOICE_ID, "globex")
    assert library.search("acme", "my own bright voice")[0].voice.id == voice.id
    with pytest.raises(VoiceSampleError):
        library.add("acme", description="too short", clip=encode_wav(clip[:2000], tts.sample_rate))


async def test_audio_search_tool_sets_the_session_voice(library: VoiceLibrary) -> None:
    tool = audio_search_tool(library)
    result = await tool.handler({"description": "deep slow Scottish accent"}, ToolContext("local", "s1"))
    assert result.state == {"voice": SCOTTISH_DEEP_SLOW}
    assert "Scottish" in result.content


async def test_the_recognizer_is_told_the_names_of_the_tenants_own_voices(
    library: VoiceLibrary, tts: VoiceSynthesizer
) -> None:
    tool = audio_search_tool(library)
    assert tool.vocabulary is not None
    assert tool.vocabulary(ToolContext("hintco", "s")).words == ()  # the built-ins' names are not said
    clip = encode_wav(_speak(tts, OTHER_WORDS, "espeak:en-us+f2:p1.10"), tts.sample_rate)
    library.add("hintco", description="a warm, bright voice from Lyon", clip=clip, name="Marguerite")
    vocabulary = tool.vocabulary(ToolContext("hintco", "s"))
    assert vocabulary.words == ("Marguerite",) and vocabulary.note == ""
    runner = TurnRunner(AgentDeps(planner=ScriptedPlanner(), registry=ToolRegistry([tool])), InMemoryBackend())
    assert await runner.hint_for("hintco", "s") == "Names: Marguerite."
    assert await runner.hint_for("globex", "s") == ""


def test_replies_in_a_voice_sound_like_its_sample(library: VoiceLibrary, tts: VoiceSynthesizer) -> None:
    """What the end-to-end test checks on the reply audio, on known audio: nearer to the voice than to the default."""
    encoder = SpeakerEncoder()
    reply = encoder.embed(_speak(tts, OTHER_WORDS, SCOTTISH_DEEP_SLOW), tts.sample_rate)
    voices = {v.id: v for v in library.list_voices("local")}
    chosen = encoder.embed(*_read(voices[SCOTTISH_DEEP_SLOW].sample_path))
    default = encoder.embed(*_read(voices[DEFAULT_VOICE_ID].sample_path))
    assert float(reply @ chosen) > float(reply @ default)


def _read(path: str) -> tuple[np.ndarray, int]:
    import soundfile

    audio, rate = soundfile.read(path, dtype="float32")
    return audio, int(rate)


def test_no_tenant_can_be_named_like_the_built_in_voices(library: VoiceLibrary) -> None:
    with pytest.raises(InvalidNameError, match="reserved"):
        library.list_voices("builtin")
    with pytest.raises(InvalidNameError, match="reserved"):
        library.sample_wav(DEFAULT_VOICE_ID, "builtin")
    for options in ({"api_keys": "key-1:acme,key-2:builtin"}, {"tenant": "builtin"}):
        with pytest.raises(ValidationError, match="reserved") as refused:
            Settings(**options)  # type: ignore[arg-type]
        assert "key-2" not in str(refused.value)
