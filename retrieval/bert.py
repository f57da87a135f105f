"""A BERT sentence encoder in plain torch: all-MiniLM-L6-v2 without transformers.

sentence-transformers runs the packaged model through transformers, and importing the two
(with scipy and the rest they bring) took 18-25 s of a server's start-up on two cores and
~300 MB of memory, for a six-layer encoder that is forty lines of torch. This module reads
the same files (`model.safetensors`, `tokenizer.json`, `config.json`) and computes the same
vectors: token embeddings, the encoder, mean pooling over the real tokens, L2 normalised,
as sentence-transformers' `Transformer -> Pooling(mean) -> Normalize` modules do
(tests/test_embedder.py checks them against each other).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch.nn import functional

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

    def _w(self, name: str) -> torch.Tensor:
        return self.weights[name]

    def _linear(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return functional.linear(x, self._w(f"{name}.weight"), self._w(f"{name}.bias"))

    def _norm(self, x: torch.Tensor, name: str) -> torch.Tensor:
        return functional.layer_norm(x, (x.shape[-1],), self._w(f"{name}.weight"), self._w(f"{name}.bias"), self.eps)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """One unit vector per text, as rows of a float32 tensor."""
        batch = self.tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in batch])
        types = torch.tensor([e.type_ids for e in batch])
        mask = torch.tensor([e.attention_mask for e in batch], dtype=torch.bool)
        positions = torch.arange(ids.shape[1])
        x = (
            functional.embedding(ids, self._w("embeddings.word_embeddings.weight"))
            + functional.embedding(positions, self._w("embeddings.position_embeddings.weight"))
            + functional.embedding(types, self._w("embeddings.token_type_embeddings.weight"))
        )
        x = self._norm(x, "embeddings.LayerNorm")
        attend = mask[:, None, None, :]  # every token may look at the real tokens only
        for i in range(self.layers):
            x = self._layer(x, attend, f"encoder.layer.{i}")
        weights = mask.unsqueeze(-1).to(x.dtype)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return functional.normalize(pooled, dim=-1)

    def _layer(self, x: torch.Tensor, attend: torch.Tensor, name: str) -> torch.Tensor:
        batch, length, hidden = x.shape
        head = hidden // self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, head).transpose(1, 2)

        q, k, v = (split(self._linear(x, f"{name}.attention.self.{part}")) for part in ("query", "key", "value"))
        context = functional.scaled_dot_product_attention(q, k, v, attn_mask=attend, scale=1 / math.sqrt(head))
        context = context.transpose(1, 2).reshape(batch, length, hidden)
        x = self._norm(
            x + self._linear(context, f"{name}.attention.output.dense"), f"{name}.attention.output.LayerNorm"
        )
        inner = functional.gelu(self._linear(x, f"{name}.intermediate.dense"))
        return self._norm(x + self._linear(inner, f"{name}.output.dense"), f"{name}.output.LayerNorm")
