"""What the planner and the voice make of how the user spoke (model/paralinguistics.py).

A figure means little on its own: 180 Hz is high for one speaker and low for another, and
a recording's level is the microphone's as much as the voice's. So once a session has heard
its speaker, each turn is described against that speaker's own earlier turns ("faster and
louder than before"), and only the first falls back on broad absolute bands. Only what
stands out is said: an ordinary turn has no cue at all, so the planner's prompt changes
only when there is something to hear.

The cue is a line the planner reads after the user's words, in brackets. The reply's
delivery follows it within the session voice: a calmer, slower voice for a hurried or
agitated speaker, an unhurried one for a slow or hesitant speaker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

from model.paralinguistics import Paralinguistics

__all__ = ["Cue", "Delivery", "SpeakerBaseline", "describe", "public", "update_baseline", "with_cue", "without_cue"]

Level = Literal["high", "low"]

# Absolute bands, for a speaker not heard before: wide, since they ignore who is speaking.
# Ordinary speech, pauses left out, runs at 3-6 words a second with pitch moving over
# 5-12 semitones (Piper's own voice: 4-5.5 words/s, 88 Hz, 7-11 semitones).
_FAST_WPS, _SLOW_WPS = 6.5, 2.0
_LOUD_DB, _QUIET_DB = -10.0, -38.0
_HIGH_HZ, _LOW_HZ = 280.0, 70.0
# Against the speaker's own earlier turns.
_RATE_RATIO = 1.2
_LOUDNESS_DB = 5.0
_PITCH_ST = 2.0
_LIVELY_ST, _FLAT_ST = 15.0, 1.0
_HESITANT = 2
"""Pauses and hesitations (fillers, repeated words) that make a turn sound hesitant."""


class SpeakerBaseline(TypedDict):
    """The means of the session's earlier measured turns, kept with the session."""

    turns: int
    pitch_st: float | None
    """Semitones above 100 Hz (pitch is compared on a log scale)."""
    rate_wps: float | None
    loudness_dbfs: float | None


_UNHEARD = SpeakerBaseline(turns=0, pitch_st=None, rate_wps=None, loudness_dbfs=None)
"""The baseline of a speaker not heard before."""


@dataclass(frozen=True)
class Delivery:
    """Factors on the session voice's pitch and rate for this turn's reply."""

    pitch: float
    rate: float


@dataclass(frozen=True)
class Cue:
    text: str
    """"spoken fast and loud; pitch high, rising at the end"; "" when nothing stands out."""
    pace: Level | None = None
    """"high" is fast, "low" slow."""
    loudness: Level | None = None
    pitch: Level | None = None
    hesitant: bool = False

    @property
    def delivery(self) -> Delivery | None:
        """How the reply should sound: calmer and slower for a hurried or agitated speaker,
        unhurried for a slow or hesitant one; None: the session voice as it is."""
        if self.pace == "high" or (self.loudness == "high" and self.pitch == "high"):
            return Delivery(pitch=0.95, rate=0.88)
        if self.pace == "low" or self.hesitant:
            return Delivery(pitch=1.0, rate=0.9)
        return None


def _tones(hz: float) -> float:
    return 12 * math.log2(hz / 100.0)


def _band(
    value: float | None, earlier: float | None, step: float, high: float, low: float
) -> tuple[Level | None, bool]:
    """Whether `value` stands out, high or low, and whether against the speaker's `earlier`
    mean (by `step`) or the absolute bands."""
    if value is None:
        return None, False
    if earlier is not None:
        return ("high" if value >= earlier + step else "low" if value <= earlier - step else None), True
    return ("high" if value >= high else "low" if value <= low else None), False


def describe(heard: Paralinguistics, baseline: SpeakerBaseline | None) -> Cue:
    """The cue for a turn said as `heard`, against the speaker's `baseline` where there is one."""
    base = baseline or _UNHEARD
    rate = None if heard.rate_wps is None else math.log(heard.rate_wps)
    earlier_rate = None if base["rate_wps"] is None else math.log(base["rate_wps"])
    pace, pace_rel = _band(rate, earlier_rate, math.log(_RATE_RATIO), math.log(_FAST_WPS), math.log(_SLOW_WPS))
    loud, loud_rel = _band(heard.loudness_dbfs, base["loudness_dbfs"], _LOUDNESS_DB, _LOUD_DB, _QUIET_DB)
    tones = None if heard.pitch_hz is None else _tones(heard.pitch_hz)
    pitch, pitch_rel = _band(tones, base["pitch_st"], _PITCH_ST, _tones(_HIGH_HZ), _tones(_LOW_HZ))
    hesitant = heard.pauses + heard.hesitations >= _HESITANT

    spoken = [
        (_word(pace, pace_rel, ("fast", "slow"), ("faster", "slower")), pace_rel),
        (_word(loud, loud_rel, ("loud", "quietly"), ("louder", "more quietly")), loud_rel),
    ]
    compared = " and ".join(w for w, relative in spoken if w and relative)
    said = [f"{compared} than before"] if compared else []
    said += [w for w, relative in spoken if w and not relative]
    parts = []
    if said:
        parts.append("spoken " + " and ".join(said))
    contour = [_word(pitch, pitch_rel, ("high", "low"), ("higher than before", "lower than before"))]
    if heard.pitch_range_st is not None:
        contour.append(
            "lively" if heard.pitch_range_st >= _LIVELY_ST else "flat" if heard.pitch_range_st <= _FLAT_ST else ""
        )
    if heard.pitch_end == "rising":
        contour.append("rising at the end")
    if shown := [w for w in contour if w]:
        parts.append("pitch " + ", ".join(shown))
    if hesitant:
        parts.append("hesitant, with pauses")
    return Cue(text="; ".join(parts), pace=pace, loudness=loud, pitch=pitch, hesitant=hesitant)


def _word(level: Level | None, relative: bool, absolute_words: tuple[str, str], relative_words: tuple[str, str]) -> str:
    if level is None:
        return ""
    words = relative_words if relative else absolute_words
    return words[0] if level == "high" else words[1]


def update_baseline(baseline: SpeakerBaseline | None, heard: Paralinguistics) -> SpeakerBaseline:
    """The baseline with the turn `heard` averaged in (each figure over the turns that had it)."""
    base = baseline or _UNHEARD
    n = base["turns"]

    def mean(earlier: float | None, value: float | None) -> float | None:
        if value is None:
            return earlier
        return value if earlier is None else round((earlier * n + value) / (n + 1), 3)

    return SpeakerBaseline(
        turns=n + 1,
        pitch_st=mean(base["pitch_st"], None if heard.pitch_hz is None else _tones(heard.pitch_hz)),
        rate_wps=mean(base["rate_wps"], heard.rate_wps),
        loudness_dbfs=mean(base["loudness_dbfs"], heard.loudness_dbfs),
    )


def with_cue(transcript: str, cue: Cue) -> str:
    """The user message the planner reads: the words, then how they were said."""
    return f"{transcript}\n[{cue.text}]" if cue.text else transcript


def without_cue(message: str) -> str:
    """The words of a user message the planner read, without the cue `with_cue` added."""
    words, _, cue = message.rpartition("\n[")
    return words if words and cue.endswith("]") and "\n" not in cue else message


def public(heard: Paralinguistics, cue: Cue, adapted: bool) -> dict[str, Any]:
    """The turn result's `paralinguistics`: the figures, the cue, and the reply's delivery."""
    delivery = cue.delivery if adapted else None
    return {
        **heard.as_dict(),
        "cue": cue.text,
        "delivery": None if delivery is None else {"pitch": delivery.pitch, "rate": delivery.rate},
    }
