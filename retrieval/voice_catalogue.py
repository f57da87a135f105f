"""The built-in voices: a small catalogue of timbres, accents and styles, each described in words.

Descriptions are what text search matches, so each says the accent, the pitch, the pace
and the character in the words people ask with ("a deep, slow Scottish voice"). The list
is kept short (about twenty) because every entry is rendered and embedded on the first
start of a data dir.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BUILTIN_VOICES", "SAMPLE_TEXT", "BuiltinVoice"]

SAMPLE_TEXT = (
    "Hello there. This is how I sound when I read you the answer, one sentence after another, "
    "at my usual pace and pitch."
)
"""What every sample says: the same words, so samples differ only in the voice."""


@dataclass(frozen=True)
class BuiltinVoice:
    id: str
    """The voice id the synthesizer speaks (model/voices.py)."""
    name: str
    description: str


BUILTIN_VOICES: tuple[BuiltinVoice, ...] = (
    BuiltinVoice(
        "piper:joe", "Joe", "The default voice: a natural American English male voice, medium pitch, normal pace."
    ),
    BuiltinVoice("piper:joe:deep", "Joe, deep", "A natural American male voice, deep and low pitched, normal pace."),
    BuiltinVoice(
        "piper:joe:deep-slow", "Joe, deep and slow", "A natural American male voice, deep, low and slow, calm."
    ),
    BuiltinVoice("piper:joe:high", "Joe, high", "A natural American voice, high pitched and light, normal pace."),
    BuiltinVoice("piper:joe:slow", "Joe, slow", "A natural American male voice speaking slowly and clearly."),
    BuiltinVoice("piper:joe:fast", "Joe, fast", "A natural American male voice speaking fast, quick and brisk."),
    BuiltinVoice(
        "piper:joe:high-fast", "Joe, high and fast", "A natural American voice, high pitched, fast and lively."
    ),
    BuiltinVoice(
        "espeak:en-gb-scotland+m3", "Scottish", "A Scottish accent, male, robotic synthetic voice, medium pitch."
    ),
    BuiltinVoice(
        "espeak:en-gb-scotland+m3:deep-slow",
        "Scottish, deep and slow",
        "A Scottish accent, male, deep, low pitched and slow: a deep slow Scottish voice.",
    ),
    BuiltinVoice(
        "espeak:en-gb-scotland+f2",
        "Scottish woman",
        "A Scottish accent, female, robotic synthetic voice, higher pitch.",
    ),
    BuiltinVoice(
        "espeak:en-gb-x-rp+m1",
        "British RP",
        "A British accent, received pronunciation, English male, robotic synthetic voice, medium pitch.",
    ),
    BuiltinVoice(
        "espeak:en-gb-x-rp+m1:deep-slow",
        "British RP, deep and slow",
        "A British English accent, male, deep and slow, formal.",
    ),
    BuiltinVoice(
        "espeak:en-gb+f3", "British woman", "A British English accent, female, robotic synthetic voice, high pitch."
    ),
    BuiltinVoice("espeak:en-gb-x-gbclan+m2", "Lancashire", "A northern English accent (Lancaster), male, synthetic."),
    BuiltinVoice(
        "espeak:en-us+m4", "American robot", "An American accent, male, robotic synthetic voice, medium pitch."
    ),
    BuiltinVoice(
        "espeak:en-us+f2:high-fast", "American woman, fast", "An American accent, female, high pitched and fast."
    ),
    BuiltinVoice(
        "espeak:en-us+m7:deep", "American, very deep", "An American accent, male, very deep and low, synthetic."
    ),
    BuiltinVoice("espeak:en-029+m1", "Caribbean", "A Caribbean English accent, male, synthetic voice, medium pitch."),
    BuiltinVoice("espeak:en+whisper", "Whisper", "A whispering voice, quiet and breathy, English, no pitch."),
    BuiltinVoice("espeak:en+f5:slow", "Soft and slow", "A soft female voice speaking slowly, English, synthetic."),
)
