"""A spoken set for word error rate: what users say to the agent, in voices unlike each other.

Silence trimming once cut the first word of "What time is it in Tokyo?" (espeak-ng's soft
"Wh" is a burst too short for the VAD, separated from the rest by a gap), and one phrase
in one voice would not have shown how often that happens. So the set crosses sentences that
start softly ("What", "Where", "Hello", "Who", "Will", "How") or end softly, of the kinds the
agent serves (time and date in a city, knowledge-base questions, chit-chat, web search),
with Piper at four speaking rates and espeak-ng formant voices in several accents and
speeds, each with 0.3-1.0 s of silence around it, some of them under low seeded noise.

Everything is synthesized offline on first use (10-20 s on 2 cores) and kept in memory
for the process. `voicegraph bench hearing` and tests/test_hearing.py use it.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np

from model.audio import SAMPLE_RATE, decode_audio, resample
from model.tts import PiperTTS

__all__ = [
    "FOLLOW_UPS",
    "SENTENCES",
    "VOICES",
    "Utterance",
    "Voice",
    "hearing_set",
    "noise",
    "render",
    "speak",
    "voices_of",
]

SENTENCES: tuple[str, ...] = (
    "What time is it in Tokyo?",
    "What is the date today in Sydney?",
    "Where can I find the travel expense policy?",
    "Hello, how are you today?",
    "Who is the manager of the Berlin office?",
    "Will it rain in London tomorrow?",
    "Search the web for the latest news about electric cars.",
    "How many vacation days do new employees get?",
    "Tell me a joke about computers.",
    "What day of the week is it in New York?",
    "Look up the opening hours of the science museum in Chicago.",
    "Thank you, that was very helpful.",
    "When does the office in Paris open?",
    "Hi there, can you help me book a meeting room?",
)
"""What is said: each kind of request, half of them opening with a soft sound."""

FOLLOW_UPS: tuple[str, ...] = (
    "And in Rome?",
    "Thanks a lot!",
    "What about Paris?",
    "And tomorrow?",
    "Say that again.",
    "Who made it?",
    "Good morning!",
    "How about Oslo?",
)
"""What is said after an answer, in a second or so: Whisper hears short speech worst."""


@dataclass(frozen=True)
class Voice:
    """One way of saying the sentences: Piper at a rate, or an espeak-ng voice at a speed."""

    name: str
    engine: str
    """"piper" or "espeak"."""
    length_scale: float = 1.0
    """Piper only: > 1 speaks slower."""
    espeak_voice: str = "en-us"
    speed: int = 150
    """espeak-ng only: words per minute."""


VOICES: tuple[Voice, ...] = (
    Voice("piper-0.85", "piper", length_scale=0.85),
    Voice("piper-1.0", "piper", length_scale=1.0),
    Voice("piper-1.15", "piper", length_scale=1.15),
    Voice("piper-1.3", "piper", length_scale=1.3),
    Voice("espeak-en-us", "espeak"),
    Voice("espeak-en-gb", "espeak", espeak_voice="en-gb"),
    Voice("espeak-en-us+f2", "espeak", espeak_voice="en-us+f2"),
    Voice("espeak-scotland+m3", "espeak", espeak_voice="en-gb-scotland+m3"),
    Voice("espeak-en-us-120", "espeak", speed=120),
    Voice("espeak-en-us-190", "espeak", speed=190),
    Voice("espeak-en-029", "espeak", espeak_voice="en-029"),
)


@dataclass(frozen=True, eq=False)
class Utterance:
    """One sentence in one voice, as the service receives it: 16 kHz mono float32."""

    text: str
    voice: str
    audio: np.ndarray
    noise: str
    """"" for a clean recording, else the colour and SNR of the noise added ("pink 20 dB")."""
    speech_s: tuple[float, float]
    """Where the voice is audible, in seconds from the start: the first and last 10 ms whose
    level in the clean recording is within 45 dB of its loudest. A trim must keep all of it."""


def speak(text: str, voice: Voice) -> np.ndarray:
    """`text` in `voice` at 16 kHz, as the engine makes it (with its own short edges of silence)."""
    if voice.engine == "piper":
        tts = _piper()
        chunks = list(tts.synthesize(text, length_scale=voice.length_scale))
        return resample(np.concatenate(chunks), tts.sample_rate, SAMPLE_RATE)
    binary = shutil.which("espeak-ng")
    assert binary, "espeak-ng is missing: run deploy/bootstrap.sh"
    args = [binary, "-v", voice.espeak_voice, "-s", str(voice.speed), "--stdout", text]
    wav = subprocess.run(args, capture_output=True, check=True).stdout
    return decode_audio(wav)


def noise(n: int, colour: str, rng: np.random.Generator) -> np.ndarray:
    """`n` samples of unit-RMS white or pink (1/f power) noise."""
    white = rng.standard_normal(n)
    if colour == "white":
        out = white
    elif colour == "pink":
        spectrum = np.fft.rfft(white)
        freqs = np.fft.rfftfreq(n)
        spectrum[1:] /= np.sqrt(freqs[1:] / freqs[1])
        spectrum[0] = 0
        out = np.fft.irfft(spectrum, n)
    else:
        raise ValueError(f"unknown noise colour {colour!r}")
    return (out / np.sqrt(np.mean(out**2))).astype(np.float32)


def voices_of(sentence: int) -> list[Voice]:
    """The voices that say sentence number `sentence`: every espeak-ng voice and two Piper rates.

    Piper is the slow part of making the set and the voice Whisper hears best, so each
    sentence gets two of its four rates, in turn; nine voices say each sentence.
    """
    piper = [v for v in VOICES if v.engine == "piper"]
    return [piper[sentence % 4], piper[(sentence + 2) % 4], *(v for v in VOICES if v.engine == "espeak")]


@functools.cache
def hearing_set(seed: int = 7) -> tuple[Utterance, ...]:
    """Each sentence in each of its voices, with silence around it; every third one under noise.

    The voice's level is set to a peak between 0.3 and 0.9 (people hold microphones at
    different distances), the noise to an SNR of 15-25 dB against the speech's RMS. The
    same seed gives the same samples in every run, so that figures can be compared.
    """
    out: list[Utterance] = []
    for s_index, text in enumerate(SENTENCES):
        for v_index, voice in enumerate(voices_of(s_index)):
            rng = np.random.default_rng([seed, s_index, v_index])  # one utterance's change moves no other
            out.append(render(text, voice, rng, noisy=(v_index + s_index) % 3 == 0))
    return tuple(out)


def render(text: str, voice: Voice, rng: np.random.Generator, *, noisy: bool) -> Utterance:
    """`text` in `voice` as a microphone might send it: at a level between 0.3 and 0.9 of full
    scale, with 0.3-1.0 s of silence around it, and when `noisy` white or pink noise at an SNR
    of 15-25 dB against the speech's RMS, all drawn from `rng`."""
    speech = speak(text, voice)
    speech *= rng.uniform(0.3, 0.9) / max(float(np.abs(speech).max()), 1e-6)
    lead, trail = rng.uniform(0.3, 1.0, size=2)
    first, last = _audible(speech)
    audio = np.concatenate([_silence(lead), speech, _silence(trail)])
    label = ""
    if noisy:
        colour = "white" if rng.random() < 0.5 else "pink"
        snr_db = float(rng.uniform(15.0, 25.0))
        level = np.sqrt(np.mean(speech**2)) / 10 ** (snr_db / 20)
        audio = audio + level * noise(len(audio), colour, rng)
        label = f"{colour} {snr_db:.0f} dB"
    audio = np.clip(audio, -1.0, 1.0).astype(np.float32)
    audio.flags.writeable = False  # shared by every caller in the process
    span = (round(lead + first, 3), round(lead + last, 3))
    return Utterance(text, voice.name, audio, label, span)


@functools.cache
def _piper() -> PiperTTS:
    """Piper without its sampling noise: with it, every run spoke (and was heard) differently."""
    return PiperTTS(noise_scale=0.0, noise_w_scale=0.0)


def _audible(speech: np.ndarray) -> tuple[float, float]:
    """Seconds from the start of `speech` to its first audible 10 ms, and to the end of its last."""
    hop = SAMPLE_RATE // 100
    frames = speech[: len(speech) // hop * hop].reshape(-1, hop)
    level = np.sqrt(np.mean(frames**2, axis=1))
    loud = np.flatnonzero(level > level.max() * 10 ** (-45 / 20))
    return float(loud[0] * hop / SAMPLE_RATE), float((loud[-1] + 1) * hop / SAMPLE_RATE)


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)
