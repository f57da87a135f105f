"""The transformers engine on CUDA (bf16) with the packaged planner; skipped without a GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

pytestmark = [
    pytest.mark.real,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine"),
]


def test_the_engine_runs_on_cuda_in_bf16(data_dir: Path) -> None:
    from model.assets import prepare_planner_model
    from model.llm import TransformersEngine

    engine = TransformersEngine(prepare_planner_model(data_dir), device="cuda", name="cuda-test")
    assert next(engine.model.parameters()).dtype == torch.bfloat16 and engine.model.device.type == "cuda"
    completion = engine.generate([{"role": "user", "content": "Say hello in one word."}], max_new_tokens=8)
    assert completion.text.strip() and completion.completion_tokens > 0
