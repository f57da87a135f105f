"""A local chat LLM run with transformers: the text engine behind the cascade planner.

One model copy serves the whole process (`load_engine` caches it), and the server calls
it from worker threads via `asyncio.to_thread`; a lock makes those calls take turns, since
one forward pass already uses every core and interleaving would only thrash the cache.
The caller may force the start of the answer (`prefix`), which is how the cascade makes a
1.5B model pick a tool reliably.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from model.errors import ModelAssetError, PlannerError
from model.prefix_cache import PrefixCache

__all__ = [
    "ChatEngine",
    "Completion",
    "Step",
    "SteppingEngine",
    "TextStream",
    "TransformersEngine",
    "default_threads",
    "load_engine",
]

TOOL_CALL_END = "</tool_call>"
_END_OF_TURN = "<|im_end|>"
"""Ends the system block in Qwen's chat format: the prompt prefix worth caching."""


@dataclass(frozen=True)
class Completion:
    text: str
    """What the model wrote after the prompt and the forced `prefix` (the prefix excluded)."""
    prompt_tokens: int
    completion_tokens: int
    duration_ms: float
    reused_tokens: int = 0
    """Prompt tokens whose KV state was already there (not prefilled again)."""
    queue_ms: float = 0.0
    """How long the generation waited for the model (other sessions' steps)."""


class ChatEngine(Protocol):
    """What the cascade planner needs from an LLM; fakes in tests implement this too."""

    name: str

    def generate(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        prefix: str = "",
        max_new_tokens: int = 256,
    ) -> Completion: ...


class Step(Protocol):
    """One planning step on a local model that holds its KV cache (see model/llama_engine.py)."""

    completion: Completion | None
    """What the step read and wrote; set when the step ends."""

    def append(self, text: str) -> None:
        """Literal text that follows; prefilled, not decoded."""

    def prefill(self, *, keep_on_disk: bool = False) -> None:
        """Read what was appended now, rather than at the next `sample`; `keep_on_disk`, at the
        start of a conversation: load it as an earlier process read it, or save it for the next."""

    def mark(self) -> Any:
        """Where the step stands now, to `rewind` to."""

    def rewind(self, mark: Any) -> None:
        """Forget what was appended and written since `mark` (the step goes on from there)."""

    def sample(
        self,
        *,
        grammar: str | None = None,
        max_tokens: int = 256,
        forced: str = "",
        bias: Mapping[str, float] | None = None,
    ) -> Generator[str, None, None]:
        """Greedy text as it is written, within `grammar` (GBNF); stop reading whenever you like.

        `forced` is text the grammar leaves no choice in: it is given first, prefilled instead
        of decoded (as far as the grammar allows it), and the sampling goes on after it.
        `bias` is added to the logit of each text's first token when the first token is chosen."""

    def lead(self, text: str) -> float:
        """How far the first token the last `sample` wrote led `text`'s first token there (one of
        its `bias` texts), in logits before the bias: by how much a greater bias would not have
        changed the choice."""


@runtime_checkable
class SteppingEngine(Protocol):
    """An engine that runs a step in pieces, each constrained by a grammar (llama.cpp)."""

    name: str

    def step(
        self, messages: Sequence[Mapping[str, Any]], *, tools: Sequence[Mapping[str, Any]] | None = None
    ) -> AbstractContextManager[Step]: ...

    def read_ahead(
        self, messages: Sequence[Mapping[str, Any]], *, tools: Sequence[Mapping[str, Any]] | None = None
    ) -> bool:
        """While no step needs the model, read what the next step on this conversation begins
        with (`messages`, then the opening of the user's next message); whether it read any."""


def default_threads() -> int:
    """The cores this process may use; torch's own default can count hyper-threads."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class TextStream:
    """Text chunks as the model writes them; `completion` is set once the stream ends.

    Closing the stream early (a barge-in) stops generation at the next token.
    """

    def __init__(self, chunks: Iterator[str], cancel: threading.Event) -> None:
        self._chunks = chunks
        self._cancel = cancel
        self.completion: Completion | None = None

    def __iter__(self) -> Iterator[str]:
        return self._chunks

    def close(self) -> None:
        self._cancel.set()


class TransformersEngine:
    """A causal LM loaded from a local directory (no hub), greedy decoding, bf16."""

    def __init__(
        self,
        model_dir: Path,
        *,
        device: str | None = None,
        threads: int | None = None,
        name: str | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").exists():
            raise ModelAssetError(f"no model at {model_dir}: run prepare_planner_model first")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if self.device == "cpu":
            torch.set_num_threads(threads or default_threads())
        self.name = name or model_dir.name
        # Typed loosely: transformers' stubs disagree with its own chat-template and .to() usage.
        self.tokenizer: Any = AutoTokenizer.from_pretrained(model_dir)
        model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
        self.model: Any = model.to(self.device).eval()
        self._lock = threading.Lock()
        self.prefix_cache: PrefixCache | None = PrefixCache(self.model, self.tokenizer, boundary=_END_OF_TURN)
        """Set to None to process every prompt whole (e.g. to measure what the cache saves)."""
        self._eos = self._token_ids("<|im_end|>", "<|endoftext|>") or [self.tokenizer.eos_token_id]

    def _token_ids(self, *tokens: str) -> list[int]:
        unk = self.tokenizer.unk_token_id
        ids = [self.tokenizer.convert_tokens_to_ids(t) for t in tokens]
        return [i for i in ids if isinstance(i, int) and i != unk]

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        prefix: str = "",
    ) -> str:
        """The exact prompt text the model sees, forced prefix included."""
        prompt = self.tokenizer.apply_chat_template(
            list(messages), tools=list(tools) if tools else None, add_generation_prompt=True, tokenize=False
        )
        return str(prompt) + prefix

    def _inputs(self, prompt: str) -> Any:
        return self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)

    def _generate_kwargs(self, inputs: Any, max_new_tokens: int, stopping: Any = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=self._eos,
            pad_token_id=self._eos[0],
            stop_strings=[TOOL_CALL_END],
            tokenizer=self.tokenizer,
        )
        if stopping is not None:
            kwargs["stopping_criteria"] = stopping
        return kwargs

    def generate(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        prefix: str = "",
        max_new_tokens: int = 256,
    ) -> Completion:
        """Greedy completion; stops at end of turn or after a closed `</tool_call>`."""
        stream = self.stream(messages, tools=tools, prefix=prefix, max_new_tokens=max_new_tokens)
        for _ in stream:
            pass
        assert stream.completion is not None  # set once the stream is drained without error
        return stream.completion

    def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        prefix: str = "",
        max_new_tokens: int = 256,
    ) -> TextStream:
        """Like `generate`, but yields text as it comes, so speech can start sooner."""
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        cancel = threading.Event()

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                import torch

                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

        prompt = self.render(messages, tools=tools, prefix=prefix)
        inputs = self._inputs(prompt)
        n_prompt = int(inputs["input_ids"].shape[1])
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = self._generate_kwargs(inputs, max_new_tokens, StoppingCriteriaList([_Cancelled()]))
        result: dict[str, Any] = {}

        def run() -> None:
            import torch

            with self._lock, torch.inference_mode():
                start = time.perf_counter()
                try:
                    cached = self.prefix_cache.lookup(prompt, inputs["input_ids"]) if self.prefix_cache else None
                    if cached is not None:
                        kwargs["cache"] = cached
                    out = self.model.generate(**kwargs, streamer=streamer)
                    result["tokens"] = int(out.shape[1]) - n_prompt
                except BaseException as exc:  # surfaced to the reader below
                    result["error"] = exc
                    streamer.end()
                result["ms"] = (time.perf_counter() - start) * 1000

        worker = threading.Thread(target=run, name="llm-stream", daemon=True)

        def chunks() -> Iterator[str]:
            worker.start()
            parts: list[str] = []
            try:
                for piece in streamer:
                    if piece:
                        parts.append(piece)
                        yield piece
                worker.join()
                if "error" in result:
                    raise PlannerError(f"generation failed: {result['error']}") from result["error"]
                stream.completion = Completion(
                    text="".join(parts),
                    prompt_tokens=n_prompt,
                    completion_tokens=result.get("tokens", 0),
                    duration_ms=result.get("ms", 0.0),
                )
            finally:
                cancel.set()

        stream = TextStream(chunks(), cancel)
        return stream


@functools.cache
def _cached_engine(model_dir: str, device: str | None) -> TransformersEngine:
    return TransformersEngine(Path(model_dir), device=device)


def load_engine(model_dir: Path, device: str | None = None) -> TransformersEngine:
    """The process-wide engine for `model_dir`: loaded on first call, shared after."""
    return _cached_engine(str(Path(model_dir).resolve()), device)
