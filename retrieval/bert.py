"""A BERT sentence encoder in plain numpy: all-MiniLM-L6-v2 without transformers or torch.

sentence-transformers runs the packaged model through transformers, and importing the two
(with scipy and the rest they bring) took 18-25 s of a server's start-up on two cores and
~300 MB of memory, for a six-layer encoder that is forty lines of array code; importing torch
alone holds another ~480 MB of a CPU server's memory. This module reads the same files
(`model.safetensors`, `tokenizer.json`, `config.json`) and computes the same vectors: token
embeddings, the encoder, mean pooling over the real tokens, L2 normalised, as
sentence-transformers' `Transformer -> Pooling(mean) -> Normalize` modules do
(tests/test_embedder.py checks them against each other).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

__all__ = ["BertEncoder"]


class BertEncoder:
    """A BERT model directory (sentence-transformers layout) as an embedding function."""

    def __init__(self, path: Path, *, max_tokens: int = 256) -> None:
        config = json.loads((path / "config.json").read_text())
        sbert = path / "sentence_bert_config.json"
        if sbert.is_file():
            max_tokens = json.loads(sbert.read_text()).get("max_seq_length", max_tokens)
        self.heads: int = config["num_attention_heads"]
        self.layers: int = config["num_hidden_layers"]
        self.eps: float = config["layer_norm_eps"]
        if (
            config.get("hidden_act", "gelu") != "gelu"
            or config.get("position_embedding_type", "absolute") != "absolute"
        ):
            raise ValueError(f"{path} is not a plain BERT model")
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_tokens)
        self.tokenizer.enable_padding(pad_id=config.get("pad_token_id", 0))
        self.weights = load_file(str(path / "model.safetensors"))

    def _w(self, name: str) -> np.ndarray:
        return self.weights[name]

    def _linear(self, x: np.ndarray, name: str) -> np.ndarray:
        # One 2-D product: numpy hands 2-D products to BLAS, but not a stack times a transpose.
        rows = x.reshape(-1, x.shape[-1]) @ self._w(f"{name}.weight").T + self._w(f"{name}.bias")
        return rows.reshape(*x.shape[:-1], -1)

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self._w(f"{name}.weight") + self._w(f"{name}.bias")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One unit vector per text, as rows of a float32 array."""
        batch = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in batch], dtype=np.int64)
        types = np.array([e.type_ids for e in batch], dtype=np.int64)
        mask = np.array([e.attention_mask for e in batch], dtype=bool)
        x = (
            self._w("embeddings.word_embeddings.weight")[ids]
            + self._w("embeddings.position_embeddings.weight")[: ids.shape[1]]
            + self._w("embeddings.token_type_embeddings.weight")[types]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        hidden = np.where(mask[:, None, None, :], 0.0, -np.inf).astype(np.float32)  # attend to real tokens only
        for i in range(self.layers):
            x = self._layer(x, hidden, f"encoder.layer.{i}")
        weights = mask[..., None].astype(x.dtype)
        pooled = (x * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)
        return (pooled / norms).astype(np.float32)

    def _layer(self, x: np.ndarray, hidden: np.ndarray, name: str) -> np.ndarray:
        batch, length, width = x.shape
        head = width // self.heads

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, length, self.heads, head).transpose(0, 2, 1, 3)

        q, k, v = (split(self._linear(x, f"{name}.attention.self.{part}")) for part in ("query", "key", "value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.float32(math.sqrt(head)) + hidden
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        context = (scores / scores.sum(-1, keepdims=True)) @ v
        context = context.transpose(0, 2, 1, 3).reshape(batch, length, width)
        x = self._norm(
            x + self._linear(context, f"{name}.attention.output.dense"), f"{name}.attention.output.LayerNorm"
        )
        inner = _gelu(self._linear(x, f"{name}.intermediate.dense"))
        return self._norm(x + self._linear(inner, f"{name}.output.dense"), f"{name}.output.LayerNorm")


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * P(X <= x), with erf to within 1.5e-7 (Abramowitz and Stegun 7.1.26)."""
    z = np.abs(x) / np.float32(math.sqrt(2.0))
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return (0.5 * x * (1.0 + erf)).astype(x.dtype)
