"""Reusing the KV cache of a prompt's system block across generations.

Every planning step starts with the same system block (persona, rules and, in a
tool-choice step, the tool declarations): on a 2-core CPU its ~400 tokens take about
2.5 s to process, every step. The block only changes with the date or the tool set, so we
keep the KV cache of the last few distinct blocks and let generation start after them.
The cache is keyed by token ids and used only when the prompt's own tokens begin with
exactly those ids, so a different tokenization can never reuse the wrong entry.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

__all__ = ["PrefixCache"]


class PrefixCache:
    """KV caches of prompt prefixes that end at `boundary` (e.g. the end of the system turn).

    Not thread-safe: the engine calls it under its generation lock, inside inference mode.
    """

    def __init__(self, model: Any, tokenizer: Any, *, boundary: str, capacity: int = 4) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.boundary = boundary
        self.capacity = capacity
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    def lookup(self, prompt: str, input_ids: Any) -> Any | None:
        """A private copy of the cache for the prompt's prefix, computing it on first use.

        None when the prompt has no boundary, or its tokens do not begin with the prefix's.
        """
        import torch

        cut = prompt.find(self.boundary)
        if cut < 0:
            return None
        prefix = self.tokenizer(prompt[: cut + len(self.boundary)], add_special_tokens=False)["input_ids"]
        n = len(prefix)
        if n >= input_ids.shape[1] or input_ids[0, :n].tolist() != prefix:
            return None
        key = tuple(prefix)
        cache = self._entries.get(key)
        if cache is None:
            self.misses += 1
            cache = self._compute(torch.tensor([prefix], device=input_ids.device))
            self._entries[key] = cache
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        else:
            self.hits += 1
            self._entries.move_to_end(key)
        return copy.deepcopy(cache)

    def _compute(self, prefix_ids: Any) -> Any:
        from transformers import DynamicCache

        cache = DynamicCache()
        self.model(input_ids=prefix_ids, cache=cache, use_cache=True)
        return cache
