"""`voicegraph eval`'s figures: a table for the terminal and a JSON document, both from one run.

Each figure stands beside its goal, and a missed goal says by how much ("short 0.12"; for
the word error rate, a ceiling, "over 3.1 points"). The turns and BFCL cases that went
wrong follow the table, so that the reason for a shortfall can be read off.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from api.eval_bfcl import CATEGORIES, BfclResult
from api.eval_run import EvalRun
from api.eval_score import GOALS, Figure, SpokenScores, TurnOutcome, score_turns
from api.hearing_bench import format_rows

__all__ = ["bfcl_scores", "render_json", "render_table"]


def bfcl_scores(results: Sequence[BfclResult]) -> dict[str, Figure]:
    return {
        name: Figure(sum(r.valid for r in mine), len(mine))
        for name in CATEGORIES
        if (mine := [r for r in results if r.case.category == name])
    }


def _share(figure: Figure, goal: str | None = None) -> str:
    value = figure.value
    if value is None:
        return "-"
    text = f"{value:.2f}"
    if goal is not None and value < GOALS[goal] - 1e-9:
        text += f" (short {GOALS[goal] - value:.2f})"
    return text


def _goal_cell(goal: str | None) -> str:
    return f">= {GOALS[goal]:.2f}" if goal else "-"


def _spoken_table(scores: SpokenScores) -> list[str]:
    rows = [("tool", "turns", "precision", "recall", "type acc.", "parameter acc.")]
    for tool in scores.tools:
        rows.append(
            (
                tool.tool,
                str(tool.turns),
                _share(tool.precision, "precision"),
                _share(tool.recall, "recall"),
                _share(tool.type_accuracy),
                _share(tool.parameters, "parameters"),
            )
        )
    rows.append(("goal", "", _goal_cell("precision"), _goal_cell("recall"), "-", _goal_cell("parameters")))
    lines = [format_rows(rows), ""]
    other = [("figure", "n", "value", "goal")]
    other.append(("no-tool accuracy", str(scores.no_tool.of), _share(scores.no_tool, "no_tool"), _goal_cell("no_tool")))
    other.append(
        (
            "knowledge answers state the fact",
            str(scores.knowledge_answers.of),
            _share(scores.knowledge_answers, "knowledge_answers"),
            _goal_cell("knowledge_answers"),
        )
    )
    if scores.wer is not None:
        over = scores.wer - GOALS["wer"]
        cell = f"{100 * scores.wer:.1f}%" + (f" (over {100 * over:.1f} points)" if over > 1e-9 else "")
        other.append(("word error rate", str(scores.heard_turns), cell, f"<= {100 * GOALS['wer']:.0f}%"))
    other.append(("turns right in every respect", str(scores.all_right.of), _share(scores.all_right), "-"))
    return [*lines, format_rows(other)]


def _miss(outcome: TurnOutcome) -> str:
    exp = outcome.expected
    got = ", ".join(f"{name}({_args(args)})" for name, args in outcome.calls) or "no tool"
    want = f"{exp.tool}({_args(dict(exp.args))})" if exp.tool else "no tool"
    line = f"  {outcome.dialogue} [{outcome.voice}]: {exp.say!r}"
    if outcome.heard is not None and outcome.heard.strip() != exp.say:
        line += f" heard {outcome.heard!r}"
    line += f"; wanted {want}, got {got}"
    if outcome.error:
        line += f"; error: {outcome.error}"
    elif exp.answer:
        line += f"; answer {outcome.answer[:160]!r}"
    return line


def _args(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def render_table(run: EvalRun, *, misses: bool = True) -> str:
    lines = [f"planner: {run.planner}; recognizer: {run.asr}"]
    if run.spoken:
        heard = "typed" if all(o.heard is None for o in run.spoken) else "spoken in the hearing set's voices"
        dialogues = len({o.dialogue for o in run.spoken})
        lines += [
            "",
            f"tool calls ({run.spoken_source} set: {len(run.spoken)} turns in {dialogues} dialogues, {heard};"
            f" {run.seconds.get('dialogues', 0):.0f} s)",
            *_spoken_table(score_turns(run.spoken)),
        ]
        for skipped in run.skipped:
            lines.append(f"  not run: {skipped}")
    if run.bfcl:
        rows = [("BFCL non-live (AST)", "cases", "accuracy", "goal")]
        for name, figure in bfcl_scores(run.bfcl).items():
            goal = f"bfcl_{name}" if f"bfcl_{name}" in GOALS else None
            rows.append((name, str(figure.of), _share(figure, goal), _goal_cell(goal)))
        lines += ["", f"BFCL ({len(run.bfcl)} cases; {run.seconds.get('bfcl', 0):.0f} s)", format_rows(rows)]
    if misses:
        wrong = [o for o in run.spoken if not o.right]
        if wrong:
            lines += ["", f"turns not right ({len(wrong)}):", *(_miss(o) for o in wrong)]
        failed = [r for r in run.bfcl if not r.valid]
        if failed:
            lines += ["", f"BFCL cases not right ({len(failed)}):"]
            lines += [f"  {r.case.id}: called {r.calls!r:.160}; {r.error[:160]}" for r in failed]
    return "\n".join(lines)


def _figure(figure: Figure) -> dict[str, Any]:
    return {"value": figure.value, "right": figure.right, "of": figure.of}


def render_json(run: EvalRun) -> dict[str, Any]:
    out: dict[str, Any] = {"planner": run.planner, "asr": run.asr, "seconds": run.seconds, "goals": GOALS}
    if run.spoken:
        scores = score_turns(run.spoken)
        out["tool_calls"] = {
            "source": run.spoken_source,
            "tools": {
                t.tool: {
                    "turns": t.turns,
                    "precision": _figure(t.precision),
                    "recall": _figure(t.recall),
                    "type_accuracy": _figure(t.type_accuracy),
                    "parameter_accuracy": _figure(t.parameters),
                }
                for t in scores.tools
            },
            "no_tool_accuracy": _figure(scores.no_tool),
            "knowledge_answers": _figure(scores.knowledge_answers),
            "wer": scores.wer,
            "all_right": _figure(scores.all_right),
            "skipped": run.skipped,
            "turns": [{**dataclasses.asdict(o), "chosen": o.chosen, "right": o.right} for o in run.spoken],
        }
    if run.bfcl:
        out["bfcl"] = {
            "accuracy": {name: _figure(f) for name, f in bfcl_scores(run.bfcl).items()},
            "cases": [
                {"id": r.case.id, "category": r.case.category, "calls": r.calls, "valid": r.valid, "error": r.error}
                for r in run.bfcl
            ],
        }
    return out
