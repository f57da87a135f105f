"""`voicegraph bench hearing`: word error rate of VAD trimming + Whisper on a spoken set.

Trimming once cut the first word ("What time is it in Tokyo?" was heard "Time isn't
talking."), and a fix judged on one phrase could trade it for another, so this runs the
whole spoken set (api/hearing_set.py: every sentence in nine voices, with silence and
some noise) through each trimming configuration and prints, beside the old trim:

1. WER over the set and per voice, and how many utterances lost their first or last word;
2. ASR seconds per utterance (mean and p90) for the same audio, as ratios;
3. how often each trim cuts into the voice itself when the recording starts just before it.

The configurations run one after another on each utterance, so that load from other
processes falls on all of them alike: compare ratios from one run, not seconds between
runs. Identical audio is transcribed once. WER moves by about a point between runs of the
same audio: when greedy decoding looks poor, as it often does on formant voices,
faster-whisper falls back to sampling, which cannot be reseeded per call.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from api.hearing_set import SENTENCES, VOICES, hearing_set
from model.asr import WhisperASR
from model.audio import SAMPLE_RATE
from model.vad import SileroVAD
from model.wer import normalize_words, wer

__all__ = ["format_rows", "run_hearing_bench"]


@dataclass(frozen=True)
class _Config:
    """One way to get from the recording to the transcript."""

    name: str
    vad: SileroVAD | None
    short: str
    """The column heading in the per-voice table."""


@dataclass
class _Result:
    texts: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    vad_seconds: list[float] = field(default_factory=list)


def _trim_configs() -> list[_Config]:
    """Untrimmed, the old trim, the configurations weighed as the fix, and the one chosen (last)."""
    fixed = SileroVAD()
    return [
        _Config("untrimmed", None, "none"),
        _Config("old: pad 200, no join", SileroVAD(pad_ms=200, max_gap_ms=0), "old"),
        _Config("pad 500, no join", SileroVAD(pad_ms=500, max_gap_ms=0), "p500"),
        _Config("join 1 s, pad 200", SileroVAD(pad_ms=200), "j200"),
        _Config("join 1 s, pad 1000", SileroVAD(pad_ms=1000), "j1000"),
        _Config(f"now: {_describe(fixed)}", fixed, "now"),
    ]


def _describe(vad: SileroVAD) -> str:
    return f"join {vad.max_gap_ms / 1000:g} s, pad {vad.pad_ms}"


def run_hearing_bench(*, every: int = 1, threads: int | None = None, models_root: Path | None = None) -> str:
    """The figures as printable lines; `every` > 1 takes every n-th utterance, for a quick look.

    `threads` is the ASR's CPU threads (default: the cores this process may use, as the
    service gives them). With `models_root`, the recognizers are compared too
    (api/recognizer_bench.py; Whisper base is joined there on first use).
    """
    threads = threads or len(os.sched_getaffinity(0))
    started = time.perf_counter()
    utterances = hearing_set()[::every]
    synth_s = time.perf_counter() - started

    configs = _trim_configs()
    old, fixed = configs[1], configs[-1]
    asr = WhisperASR(cpu_threads=threads, beam_size=1, framing="", fallback=True)  # as the trims were chosen
    asr.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32))  # load and warm before timing
    results = {config.name: _Result() for config in configs}
    for utterance in utterances:
        done: dict[bytes, tuple[str, float]] = {}
        for config in configs:
            result = results[config.name]
            t0 = time.perf_counter()
            audio = utterance.audio if config.vad is None else config.vad.trim(utterance.audio)
            result.vad_seconds.append(time.perf_counter() - t0)
            key = audio.tobytes()
            if key not in done:
                t0 = time.perf_counter()
                done[key] = asr.transcribe(audio), time.perf_counter() - t0
            text, seconds = done[key]
            result.texts.append(text)
            result.seconds.append(seconds)

    refs = [u.text for u in utterances]
    noisy = sum(1 for u in utterances if u.noise)
    lines = [
        f"hearing set: {len(utterances)} utterances ({len(SENTENCES)} sentences, each in 9 of {len(VOICES)} voices"
        + (f"; every {every}th taken" if every > 1 else "")
        + f", {noisy} under noise), synthesized in {synth_s:.1f} s",
        f"ASR {asr.name} int8 on CPU, {threads} threads, beam {asr.beam_size}; ratios are against '{old.name}'",
        "",
        _table(configs, results, refs, old.name),
        "",
        "WER per voice (%):",
        _per_voice(configs, results, refs, [u.voice for u in utterances], [v.name for v in VOICES]),
        "",
        _onsets([c for c in configs if c.vad is not None], utterances),
    ]
    missed = _misheard(utterances, results[fixed.name].texts, results["untrimmed"].texts)
    if missed:
        lines += ["", f"'{fixed.name}' worse than untrimmed on:", *missed]
    if models_root is not None:
        from api.recognizer_bench import recognizer_table

        lines += ["", recognizer_table(models_root, threads, every)]
    return "\n".join(lines)


_LEADS_S = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25)


def _onsets(configs: Sequence[_Config], utterances: Sequence[Any]) -> str:
    """How often each trim cuts into the voice when it starts soon after the recording does.

    A recording often starts as the voice does (the button goes down as the user speaks),
    and whether Silero splits a soft onset off depends on where its 32 ms windows fall, so
    each utterance is also cut to start 0-0.25 s before its first audible sound. VAD only,
    no ASR: this counts the cause, which the WER of the set shows only now and then.
    """
    rows = [("trim (VAD only)", "cases", "first sound cut", "last sound cut", "utterances hit")]
    for config in configs:
        assert config.vad is not None
        cases = first_cut = last_cut = 0
        hit = set()
        for index, utterance in enumerate(utterances):
            first, last = (int(t * SAMPLE_RATE) for t in utterance.speech_s)
            for lead in _LEADS_S:
                offset = max(0, first - int(lead * SAMPLE_RATE))
                span = config.vad.speech_span(utterance.audio[offset:])
                cases += 1
                if span is None or span[0] > first - offset or span[1] < last - offset:
                    hit.add(index)
                    first_cut += span is None or span[0] > first - offset
                    last_cut += span is None or span[1] < last - offset
        rows.append((config.name, str(cases), str(first_cut), str(last_cut), str(len(hit))))
    return format_rows(rows)


def _lost(refs: Sequence[str], texts: Sequence[str]) -> tuple[int, int]:
    """Utterances whose first word, and whose last, is not among the first (last) two heard."""
    first = last = 0
    for ref, text in zip(refs, texts, strict=True):
        said, heard = normalize_words(ref), normalize_words(text)
        first += said[0] not in heard[:2]
        last += said[-1] not in heard[-2:]
    return first, last


def _table(configs: Sequence[_Config], results: dict[str, _Result], refs: Sequence[str], base: str) -> str:
    rows = [("configuration", "WER %", "vs base", "first lost", "last lost", "ASR mean ms", "p90 ms", "mean ratio")]
    base_wer = wer(zip(refs, results[base].texts, strict=True))
    base_mean = statistics.fmean(results[base].seconds)
    for config in configs:
        result = results[config.name]
        rate = wer(zip(refs, result.texts, strict=True))
        first, last = _lost(refs, result.texts)
        mean = statistics.fmean(result.seconds)
        p90 = float(np.percentile(result.seconds, 90))
        rows.append(
            (
                config.name,
                f"{100 * rate:.1f}",
                f"{rate / base_wer:.2f}" if base_wer else "-",
                str(first),
                str(last),
                f"{1000 * mean:.0f}",
                f"{1000 * p90:.0f}",
                f"{mean / base_mean:.2f}",
            )
        )
    vad_ms = [1000 * statistics.fmean(results[c.name].vad_seconds) for c in configs if c.vad is not None]
    out = format_rows(rows)
    if vad_ms and configs[0].vad is None:
        out += f"\n(VAD itself: {min(vad_ms):.0f}-{max(vad_ms):.0f} ms per utterance, not in the ASR time)"
    return out


def _per_voice(
    configs: Sequence[_Config],
    results: dict[str, _Result],
    refs: Sequence[str],
    voices: Sequence[str],
    order: list[str],
) -> str:
    rows = [("voice", *(c.short for c in configs))]
    for voice in [*order, "all"]:
        picked = [i for i, v in enumerate(voices) if voice in (v, "all")]
        if not picked:
            continue
        cells = [f"{100 * wer((refs[i], results[c.name].texts[i]) for i in picked):.1f}" for c in configs]
        rows.append((voice, *cells))
    return format_rows(rows)


def _misheard(utterances: Sequence[Any], fixed: Sequence[str], untrimmed: Sequence[str]) -> list[str]:
    out = []
    for utterance, a, b in zip(utterances, fixed, untrimmed, strict=True):
        if wer(utterance.text, a) > wer(utterance.text, b):
            out.append(f"  {utterance.voice}: {utterance.text!r} heard {a!r} (untrimmed {b!r})")
    return out


def format_rows(rows: Sequence[Sequence[str]]) -> str:
    """Rows as aligned columns: the first left-aligned, the figures after it right-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    )
