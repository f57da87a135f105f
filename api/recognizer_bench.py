"""The recognizer half of `voicegraph bench hearing`: which Whisper, and how it decodes.

Every recognizer hears the same trimmed audio, one after another per utterance so that
load from other processes falls on all alike (compare the ratios of one run):

- the spoken set (api/hearing_set.py: Piper at four rates, espeak-ng voices and accents,
  some under noise);
- names only the user's documents know: the questions of the eval's knowledge base
  (api/eval_data) in the same voices, heard with and without the names the documents use
  as the hint, as the agent hears them;
- short follow-ups ("And in Rome?", "Thanks a lot!"), each in three of the voices.

Figures: word error rate overall, on Piper, on espeak-ng, on the names and on the short
follow-ups; ASR time per utterance of the set.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.vocabulary import hearing_hint
from api.eval_cases import KB_DIR, shipped_dialogues
from api.hearing_bench import format_rows
from api.hearing_set import FOLLOW_UPS, VOICES, Utterance, hearing_set, speak
from api.settings import Settings
from model.asr import packaged_recognizer
from model.base import SpeechRecognizer
from model.vad import SileroVAD
from model.wer import wer
from retrieval.vocabulary import salient_terms
from tools.base import Vocabulary

__all__ = ["recognizer_table"]

_NAME_VOICES = ("piper-1.0", "espeak-en-us", "espeak-en-gb", "espeak-en-us+f2", "espeak-scotland+m3", "espeak-en-029")


@dataclass
class _Heard:
    texts: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


def _knowledge_questions() -> tuple[list[str], str]:
    """The eval's questions about its knowledge base, and the hint the agent would give with it."""
    questions = [t.say for d in shipped_dialogues() for t in d.turns if t.tool == "knowledge_search"]
    names: list[str] = []
    for doc in sorted(KB_DIR.iterdir(), key=lambda d: d.name):
        names += salient_terms(doc.read_text("utf-8"))
    return questions, hearing_hint(Vocabulary(words=tuple(dict.fromkeys(names))), None)


def recognizer_table(root: Path, threads: int, every: int = 1) -> str:
    """The comparison as printable lines; Whisper base is joined under `root` on first use."""

    def make(name: str, fit: bool) -> Callable[[], SpeechRecognizer]:
        return lambda: packaged_recognizer(name, root, threads=threads, fit_window=fit)

    default_model = Settings().asr_model

    def label(name: str, fit: bool) -> str:
        default = " (default)" if (name, fit) == (default_model, True) else ""
        return f"{name}, beam 5, framed, {'fitted' if fit else '30 s'} window{default}"

    singles = [(name, fit) for name in ("tiny.en", "base") for fit in (False, True)]
    recognizers = [(label(name, fit), make(name, fit)) for name, fit in [*singles, ("tiny.en+base", True)]]
    vad = SileroVAD()
    spoken = list(hearing_set()[::every])
    questions, hint = _knowledge_questions()
    voices = [v for v in VOICES if v.name in _NAME_VOICES]
    named = [(q, v.name, vad.trim(speak(q, v))) for i, q in enumerate(questions) for v in voices[i % 2 :: 2]]
    short = [(p, vad.trim(speak(p, v))) for i, p in enumerate(FOLLOW_UPS) for v in VOICES[i % 3 :: 3]]
    trimmed = [vad.trim(u.audio) for u in spoken]
    built = [(name, make()) for name, make in recognizers]
    results = {name: {"set": _Heard(), "names": _Heard(), "hinted": _Heard(), "short": _Heard()} for name, _ in built}
    for audio in trimmed:
        for name, asr in built:
            _hear(asr, audio, "", results[name]["set"])
    for _q, _v, audio in named:
        for name, asr in built:
            _hear(asr, audio, "", results[name]["names"])
            _hear(asr, audio, hint, results[name]["hinted"])
    for _p, audio in short:
        for name, asr in built:
            _hear(asr, audio, "", results[name]["short"])
    return "\n".join(_rows(built, results, spoken, [q for q, _, _ in named], [p for p, _ in short], hint))


def _hear(asr: SpeechRecognizer, audio: np.ndarray, hint: str, into: _Heard) -> None:
    started = time.perf_counter()
    into.texts.append(asr.transcribe(audio, hint))
    into.seconds.append(time.perf_counter() - started)


def _rows(
    built: Sequence[tuple[str, SpeechRecognizer]],
    results: dict[str, dict[str, _Heard]],
    spoken: Sequence[Utterance],
    named: Sequence[str],
    short: Sequence[str],
    hint: str,
) -> list[str]:
    refs = [u.text for u in spoken]

    def rate(texts: Sequence[str], pick: Callable[[Utterance], bool]) -> str:
        pairs = [(r, t) for r, t, u in zip(refs, texts, spoken, strict=True) if pick(u)]
        return f"{100 * wer(pairs):.1f}"

    base_s = statistics.fmean(results[built[0][0]]["set"].seconds)
    rows = [("recognizer", "WER %", "Piper", "espeak-ng", "names", "names, hinted", "short", "ASR ms", "ratio")]
    for name, _ in built:
        heard = results[name]
        mean = statistics.fmean(heard["set"].seconds)
        rows.append(
            (
                name,
                rate(heard["set"].texts, lambda u: True),
                rate(heard["set"].texts, lambda u: u.voice.startswith("piper")),
                rate(heard["set"].texts, lambda u: u.voice.startswith("espeak")),
                f"{100 * wer(zip(named, heard['names'].texts, strict=True)):.1f}",
                f"{100 * wer(zip(named, heard['hinted'].texts, strict=True)):.1f}",
                f"{100 * wer(zip(short, heard['short'].texts, strict=True)):.1f}",
                f"{1000 * mean:.0f}",
                f"{mean / base_s:.2f}",
            )
        )
    return [
        f"recognizers on the same trimmed audio: {len(spoken)} utterances of the set, {len(named)} questions "
        f"about names only the documents know, heard without and with the hint, and {len(short)} short follow-ups:",
        f"  {hint}",
        "",
        format_rows(rows),
    ]
