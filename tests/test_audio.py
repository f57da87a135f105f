"""Audio in and out on the real path: Piper speaks, PyAV encodes, we decode, trim and transcribe.

The models load once for the module (Piper ~0.25 s, Whisper ~0.3 s, Silero ~0.1 s), so the
whole module runs in a few seconds on a 2-core CPU.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import wave
from collections.abc import Callable

import numpy as np
import pytest

from model.asr import WhisperASR
from model.audio import SAMPLE_RATE, decode_audio, duration_s, encode_wav, resample
from model.base import Transcript
from model.errors import AudioDecodeError, AudioTooLongError, InputError
from model.tts import PiperTTS, speakable, split_sentences
from model.vad import SileroVAD
from tests.audio_fixtures import FORMATS, encode, video_only_webm

PROMPT = "What time is it in Tokyo?"


@pytest.fixture(scope="module")
def tts() -> PiperTTS:
    return PiperTTS()


@pytest.fixture(scope="module")
def spoken(tts: PiperTTS) -> np.ndarray:
    """The prompt as Piper says it, at the voice's 22,050 Hz."""
    return np.concatenate(list(tts.synthesize(PROMPT)))


@pytest.fixture(scope="module")
def spoken_16k(spoken: np.ndarray, tts: PiperTTS) -> np.ndarray:
    return resample(spoken, tts.sample_rate, SAMPLE_RATE)


@pytest.fixture(scope="module")
def vad() -> SileroVAD:
    return SileroVAD()


@pytest.fixture(scope="module")
def asr() -> WhisperASR:
    return WhisperASR(cpu_threads=2)


# --- decoding -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_decodes_each_client_format_to_16k_mono(fmt: str, spoken: np.ndarray, tts: PiperTTS) -> None:
    data = encode(spoken, tts.sample_rate, FORMATS[fmt])
    audio = decode_audio(data)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert duration_s(audio) == pytest.approx(duration_s(spoken, tts.sample_rate), abs=0.08)
    assert 0.3 < float(np.abs(audio).max()) <= 1.5, "the speech survived at about its level"


def test_wav_round_trip_keeps_the_samples(spoken_16k: np.ndarray) -> None:
    data = encode_wav(spoken_16k, SAMPLE_RATE)
    with wave.open(io.BytesIO(data)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, SAMPLE_RATE)
    audio = decode_audio(data)
    assert len(audio) == len(spoken_16k)
    assert float(np.abs(audio - np.clip(spoken_16k, -1, 1)).max()) < 1e-3


def test_resample_keeps_duration(spoken: np.ndarray, tts: PiperTTS) -> None:
    out = resample(spoken, tts.sample_rate, SAMPLE_RATE)
    assert len(out) == pytest.approx(len(spoken) * SAMPLE_RATE / tts.sample_rate, abs=2)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64), "not audio"),
        (b"What time is it in Tokyo? Just some text, not a recording.", "not audio"),
        (bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8)), "not audio|corrupt"),
        (b"RIFF\x24\x00\x00\x00WAVEjunkjunkjunk", "corrupt"),
        (b"OggS" + bytes(range(256)) * 8, "corrupt"),
    ],
    ids=["empty", "png", "text", "random", "broken-wav", "broken-ogg"],
)
def test_bad_input_is_a_decode_error(data: bytes, reason: str) -> None:
    with pytest.raises(AudioDecodeError, match=reason) as caught:
        decode_audio(data)
    assert isinstance(caught.value, InputError)
    error = caught.value
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__), "no av traceback"


def _id3(size: int = 0) -> bytes:
    """An ID3v2.4 tag header announcing `size` bytes of frames (a syncsafe integer)."""
    syncsafe = bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))
    return b"ID3\x04\x00\x00" + syncsafe


def _wav_header(*, rate: int = SAMPLE_RATE, data_bytes: int, riff_bytes: int | None = None) -> bytes:
    """A 16-bit mono PCM WAV header whose sizes say whatever the test wants them to."""
    riff = 36 + data_bytes if riff_bytes is None else riff_bytes
    fields = (b"RIFF", riff, b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16, b"data", data_bytes)
    return struct.pack("<4sI4s4sIHHIIHH4sI", *fields)


def _peak_bytes(call: Callable[[], object]) -> int:
    """Python-heap peak while `call` runs (numpy buffers included), whatever it raises."""
    tracemalloc.start()
    try:
        call()
    except InputError:
        pass
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


def test_stacked_id3_tags_are_refused_in_bounded_memory() -> None:
    bomb = _id3() * 100_000  # 1 MB of empty tags: once a RecursionError after ~1 GB of copies
    with pytest.raises(AudioDecodeError, match="more than 16 ID3 tags"):
        decode_audio(bomb)
    assert _peak_bytes(lambda: decode_audio(bomb)) < 100_000


def test_a_few_id3_tags_before_mp3_still_decode(spoken: np.ndarray, tts: PiperTTS) -> None:
    mp3 = encode(spoken, tts.sample_rate, FORMATS["mp3"])
    audio = decode_audio(_id3(20) + bytes(20) + _id3() + mp3)
    assert duration_s(audio) == pytest.approx(duration_s(spoken, tts.sample_rate), abs=0.08)


def test_id3_tag_claiming_more_than_the_file_is_a_decode_error() -> None:
    with pytest.raises(AudioDecodeError):
        decode_audio(_id3(0x0FFFFFFF) + bytes(100))


@pytest.mark.parametrize(
    ("data", "samples"),
    [
        (_wav_header(data_bytes=3200)[:30], None),
        (_wav_header(data_bytes=3200), None),
        (_wav_header(data_bytes=0xFFFFFFF0, riff_bytes=0xFFFFFFFF) + bytes(3200), 1600),
    ],
    ids=["cut-in-header", "header-only", "claims-4-GB"],
)
def test_wav_whose_header_lies_costs_only_what_it_holds(data: bytes, samples: int | None) -> None:
    if samples is None:
        with pytest.raises(AudioDecodeError):
            decode_audio(data)
    else:
        assert len(decode_audio(data)) == samples
    assert _peak_bytes(lambda: decode_audio(data)) < 1_000_000


def test_wav_at_one_hertz_is_refused_before_it_is_resampled() -> None:
    """Resampled, each 1 Hz packet would grow 16,000 times before the duration limit saw it."""
    data = _wav_header(rate=1, data_bytes=400_000) + b"\x01\x00" * 200_000  # 55 hours at 1 Hz
    with pytest.raises(AudioDecodeError, match="sample rate is 1 Hz, outside the 4000-768000 Hz"):
        decode_audio(data, max_seconds=60)
    assert _peak_bytes(lambda: decode_audio(data, max_seconds=60)) < 1_000_000


def test_video_without_audio_says_so() -> None:
    with pytest.raises(AudioDecodeError, match="no audio stream"):
        decode_audio(video_only_webm())


def test_zero_length_audio_is_a_decode_error() -> None:
    empty_wav = encode_wav(np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(AudioDecodeError, match="no samples"):
        decode_audio(empty_wav)


def test_truncated_upload_keeps_what_decoded(spoken: np.ndarray, tts: PiperTTS) -> None:
    data = encode(spoken, tts.sample_rate, FORMATS["webm"])
    audio = decode_audio(data[: len(data) * 2 // 3])
    assert 0.3 < duration_s(audio) < duration_s(spoken, tts.sample_rate)


def test_too_long_stops_early(spoken: np.ndarray, tts: PiperTTS) -> None:
    data = encode(np.tile(spoken, 40), tts.sample_rate, FORMATS["mp3"])  # about a minute
    with pytest.raises(AudioTooLongError, match="more than 5 s"):
        decode_audio(data, max_seconds=5)
    assert duration_s(decode_audio(data, max_seconds=120)) > 60


# --- VAD, ASR, TTS ------------------------------------------------------------------------


@pytest.mark.real
def test_vad_trims_added_silence(vad: SileroVAD, spoken_16k: np.ndarray) -> None:
    silence = np.zeros(int(1.5 * SAMPLE_RATE), dtype=np.float32)
    padded = np.concatenate([silence, spoken_16k, silence])
    trimmed = vad.trim(padded)
    speech = duration_s(spoken_16k)
    assert speech - 0.2 < duration_s(trimmed) < speech + 2 * vad.pad_ms / 1000 + 0.1
    assert vad.has_speech(padded)
    assert not vad.has_speech(silence)
    assert len(vad.trim(silence)) == 0


@pytest.mark.real
def test_asr_hears_the_question(asr: WhisperASR, vad: SileroVAD, spoken: np.ndarray, tts: PiperTTS) -> None:
    audio = decode_audio(encode(spoken, tts.sample_rate, FORMATS["webm"]))
    text = asr.transcribe(vad.trim(audio))
    assert "tokyo" in text.lower()
    assert text == text.strip()
    assert asr.transcribe(np.zeros(0, dtype=np.float32)) == ""


@pytest.mark.real
@pytest.mark.parametrize(
    ("first", "second", "gap_s", "words"),
    [
        (
            "Let me look that up in your documents.",
            "The head chef at the Copper Kettle restaurant is Marta.",
            0.2,
            ("restaurant",),
        ),
        (
            "Let me look that up in your documents.",
            "Marta Lindqvist is the head chef at the Copper Kettle restaurant.",
            0.0,
            ("restaurant",),
        ),
        ("Let me check the time in Tokyo.", "It is 7:15 AM in Tokyo right now.", 0.0, ("right", "now")),
    ],
)
def test_asr_hears_both_of_two_sentences(
    asr: WhisperASR, tts: PiperTTS, first: str, second: str, gap_s: float, words: tuple[str, ...]
) -> None:
    """Whisper ended each of these (an agent's line, then its answer) after the first sentence,
    without timestamps every time and with them about half the time; a transcript with too
    few words for its recording is decoded again a sentence at a time, split at the pauses.
    Piper samples its delivery, so each run hears a new recording: the words checked are those
    of the second sentence that tiny.en hears in every delivery ("chef" is now and then "shaft")."""
    gap = np.zeros(int(tts.sample_rate * gap_s), dtype=np.float32)
    audio = np.concatenate([*tts.synthesize(first), gap, *tts.synthesize(second)])
    heard = asr.transcribe(resample(audio, tts.sample_rate, SAMPLE_RATE)).lower()
    assert first.split()[-1].strip(".").lower() in heard, heard
    assert all(word in heard for word in words), heard


def test_a_recording_is_split_in_the_middle_of_its_pauses() -> None:
    from model.asr import split_at_pauses

    rate = SAMPLE_RATE
    tone = (0.3 * np.sin(np.arange(rate) * 2 * np.pi * 220 / rate)).astype(np.float32)
    quiet = np.zeros(rate * 3 // 10, dtype=np.float32)
    blip = np.zeros(rate // 10, dtype=np.float32)  # a pause too short to split at
    audio = np.concatenate([quiet, tone, quiet, tone, blip, tone, quiet])
    pieces = split_at_pauses(audio)
    assert [len(p) / rate for p in pieces] == pytest.approx([1.45, 2.55], abs=0.03)  # not at the edges or the blip
    assert np.array_equal(np.concatenate(pieces), audio)
    assert len(split_at_pauses(tone)) == 1


@pytest.mark.parametrize(
    ("seconds", "frames"),
    [
        (0.5, 3000),
        (1.9, 3000),
        (2.0, 1000),
        (3.3, 1000),
        (5.0, 1000),
        (6.9, 1500),
        (9.6, 1500),
        (12.0, 2000),
        (40.0, 3000),
    ],
)
def test_a_recording_is_read_in_a_window_five_seconds_longer_and_at_least_ten_short_speech_in_thirty(
    seconds: float, frames: int
) -> None:
    from model.asr import window_frames

    assert window_frames(seconds) == frames


def test_the_window_pads_only_this_threads_reading() -> None:
    import threading

    import faster_whisper.transcribe as transcribe

    from model.asr import _window

    features = np.ones((80, 300), dtype=np.float32)
    elsewhere: list[tuple[int, ...]] = []
    with _window(1000):
        assert transcribe.pad_or_trim(features).shape == (80, 1000)
        assert transcribe.pad_or_trim(np.ones((80, 2400), dtype=np.float32)).shape == (80, 3000)  # too long: as before
        thread = threading.Thread(target=lambda: elsewhere.append(transcribe.pad_or_trim(features).shape))
        thread.start()
        thread.join()
    assert elsewhere == [(80, 3000)]
    assert transcribe.pad_or_trim(features).shape == (80, 3000)


@pytest.mark.parametrize(
    ("text", "repeated"),
    [
        ("Where can I find the travel policy? Where can I find the travel policy?", True),
        ("What time is it in Tokyo? What time is it in Tokyo?", True),
        ("And in Rome. And in Rome.", True),  # a sentence of three words
        ("It is very, very, very cold.", False),  # words, not a run of them
        ("No. No.", True),
        ("Is it in, is it out?", False),
        ("What time is it in Tokyo?", False),
    ],
)
def test_a_run_of_words_said_twice_is_a_repetition(text: str, repeated: bool) -> None:
    from model.asr import repeats

    assert repeats(text) is repeated


def test_a_repetition_is_read_again_in_the_full_window(asr: WhisperASR, monkeypatch: pytest.MonkeyPatch) -> None:
    windows: list[int] = []

    def decode_in(samples: np.ndarray, hint: str, *, timestamps: bool, frames: int) -> Transcript:
        windows.append(frames)
        return Transcript("what time is it " * (8 if frames < 3000 else 1), -0.2, 5)

    monkeypatch.setattr(asr, "_decode_in", decode_in)
    assert asr.transcribe(np.zeros(3 * SAMPLE_RATE, dtype=np.float32)).split() == ["what", "time", "is", "it"]
    assert windows == [1000, 3000]


@pytest.mark.real
def test_tts_speaks_sentence_by_sentence(tts: PiperTTS) -> None:
    chunks = list(tts.synthesize("It is nine in the morning in Tokyo. Dr. Tanaka says hello!"))
    assert tts.sample_rate == 22050
    assert len(chunks) >= 2
    assert all(chunk.dtype == np.float32 and chunk.ndim == 1 and chunk.size > 0 for chunk in chunks)


@pytest.mark.real
def test_tts_unknown_voice_falls_back_to_default(tts: PiperTTS, caplog: pytest.LogCaptureFixture) -> None:
    chunks = list(tts.synthesize("Hello.", voice="no-such-voice"))
    assert chunks and "no-such-voice" in caplog.text


# --- text for speech ----------------------------------------------------------------------


def test_speakable_drops_markdown_and_citations() -> None:
    text = "It is **sunny** in Tokyo [1], with `light` wind [2, 3]. See [the source](https://x.test)."
    spoken = speakable(text)
    assert spoken == "It is sunny in Tokyo, with light wind. See the source."
    assert speakable(spoken) == spoken


def test_speakable_turns_list_lines_into_sentences() -> None:
    assert speakable("## Weather\n- High: 25 °C\n- Low: 18 °C") == "Weather. High: 25 °C. Low: 18 °C."


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Pi is 3.14. Then it rains!", ["Pi is 3.14.", "Then it rains!"]),
        ("Ask Dr. Smith. He knows.", ["Ask Dr. Smith.", "He knows."]),
        ("Bring fruit, e.g. apples. Also bread.", ["Bring fruit, e.g. apples.", "Also bread."]),
        ("It opens at 9 a.m. Tomorrow too.", ["It opens at 9 a.m.", "Tomorrow too."]),
        ("The U.S. Army is big. Really? Yes.", ["The U.S. Army is big.", "Really?", "Yes."]),
        ("No final stop", ["No final stop"]),
        ("", []),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences
