"""The `eval` command's work: run the evaluation with a progress bar, print the table, write the JSON."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from api.eval_cases import load_cases
from api.eval_report import render_json, render_table
from api.eval_run import Progress, run_eval
from api.settings import Settings

__all__ = ["run_eval_command"]


def run_eval_command(
    settings: Settings,
    *,
    cases: Path | None,
    spoken: bool,
    bfcl: bool,
    limit: int | None,
    typed: bool,
    tenant: str | None,
    json_path: Path | None,
    **overrides: Any,
) -> str:
    """The table; the JSON goes to `json_path`. Bad cases fail before any model loads."""
    dialogues = load_cases(cases) if cases is not None else None
    bars: list[Any] = []

    def start(total: int) -> Progress:
        bar: Any = click.progressbar(
            length=total,
            label="eval",
            file=sys.stderr,
            show_pos=True,
            item_show_func=lambda item: None if item is None else str(item)[:60],
        )
        bar.__enter__()
        bars.append(bar)
        return lambda label: bar.update(1, label)

    try:
        run = asyncio.run(
            run_eval(
                settings,
                cases=dialogues,
                cases_source=str(cases or ""),
                spoken=spoken,
                bfcl=bfcl,
                limit=limit,
                typed=typed,
                tenant=tenant,
                start=start,
                **overrides,
            )
        )
    finally:
        for bar in bars:
            bar.__exit__(None, None, None)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(render_json(run), indent=2, ensure_ascii=False, default=str) + "\n")
    return render_table(run)
