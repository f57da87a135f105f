"""Greedy decoding under a grammar, at little more than the cost of greedy decoding.

llama.cpp's grammar sampler checks every token of the vocabulary (152k for Qwen) against
the grammar at every step, which on two cores cost about a third of the decoding speed.
A grammar rarely disagrees with the model's own best token, so we check that one token
first and look at the whole vocabulary only when the grammar refuses it, as llama.cpp's
own `common_sampler` does.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from model.errors import PlannerError

__all__ = ["GreedySampler"]


class GreedySampler:
    """The most likely token the grammar allows (any token without a grammar)."""

    def __init__(self, llama_cpp: Any, vocab: Any, n_vocab: int, grammar: str | None) -> None:
        self._c = llama_cpp
        self._n_vocab = n_vocab
        self._grammar: Any = None
        if grammar is not None:
            self._grammar = llama_cpp.llama_sampler_init_grammar(vocab, grammar.encode("utf-8"), b"root")
            if not self._grammar:
                raise PlannerError("the grammar for this step does not parse")
        self._one = (llama_cpp.llama_token_data * 1)()
        self._one_array = llama_cpp.llama_token_data_array(
            data=ctypes.cast(self._one, llama_cpp.llama_token_data_p), size=1, selected=-1, sorted=False
        )
        self._all: np.ndarray[Any, Any] | None = None
        self.seen: dict[int, float] = {}
        """The logits, before any bias, of the tokens the last `sample` was told to `watch` and of
        the token it chose."""

    def sample(
        self, ctx: Any, index: int = -1, *, bias: Mapping[int, float] | None = None, watch: Collection[int] = ()
    ) -> int:
        """The token after the batch's `index`-th (its last by default); the grammar takes it.
        `bias`: added to these tokens' logits first. `watch`: tokens whose logits `seen` keeps."""
        logits = np.ctypeslib.as_array(self._c.llama_get_logits_ith(ctx, index), shape=(self._n_vocab,))
        raw = logits
        if bias:
            logits = logits.copy()
            for biased, extra in bias.items():
                logits[biased] += extra
        token = int(logits.argmax())
        if self._grammar is not None:
            if not self._allows(token, float(logits[token])):
                token = self._best_allowed(logits)
            self._c.llama_sampler_accept(self._grammar, token)
        if watch:
            self.seen = {seen: float(raw[seen]) for seen in (*watch, token)}
        return token

    def force(self, tokens: list[int]) -> int:
        """Move the grammar past `tokens` as if they had been sampled; how many it allowed (it
        stops at the first it refuses: accepting that one would abort inside llama.cpp)."""
        if self._grammar is None:
            return len(tokens)
        for count, token in enumerate(tokens):
            if not self._allows(token, 0.0):
                return count
            self._c.llama_sampler_accept(self._grammar, token)
        return len(tokens)

    def _allows(self, token: int, logit: float) -> bool:
        self._one[0].id, self._one[0].logit, self._one[0].p = token, logit, 0.0
        self._one_array.size, self._one_array.selected, self._one_array.sorted = 1, -1, False
        self._c.llama_sampler_apply(self._grammar, ctypes.byref(self._one_array))
        return not math.isinf(self._one[0].logit)

    def _best_allowed(self, logits: np.ndarray[Any, Any]) -> int:
        if self._all is None:
            fields = [("id", np.intc), ("logit", np.single), ("p", np.single)]
            self._all = np.zeros(self._n_vocab, dtype=np.dtype(fields, align=True))
        candidates = self._all
        candidates["id"] = np.arange(self._n_vocab, dtype=np.intc)
        candidates["logit"] = logits
        candidates["p"] = 0.0
        array = self._c.llama_token_data_array(
            data=candidates.ctypes.data_as(self._c.llama_token_data_p), size=self._n_vocab, selected=-1, sorted=False
        )
        self._c.llama_sampler_apply(self._grammar, ctypes.byref(array))
        return int(candidates["id"][int(candidates["logit"].argmax())])

    def close(self) -> None:
        if self._grammar is not None:
            self._c.llama_sampler_free(self._grammar)
            self._grammar = None
