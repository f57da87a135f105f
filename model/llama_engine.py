"""The packaged GGUF run as it is by llama.cpp: the cascade's engine on a CPU.

transformers de-quantizes the Q4_K_M weights to bf16 and decodes at ~7.5 tokens/s on two
cores; llama.cpp runs the quantized weights directly, about four times faster, in less than
half the memory. On top of that, this engine never prefills the same tokens twice:

- A planning step is a `LlamaStep`: the rendered conversation, then literal text the
  planner appends (a forced `<tool_call>` opening, the `"arguments"` key) and text it
  samples, each piece under a grammar of its choosing. Literal text is prefilled in one
  batch instead of being decoded token by token ("jump-forward").
- The context keeps what it has read (model/kv_state.py). A step that continues the
  conversation in the context prefills only its new text; one from another session first
  puts the context's conversation aside and takes up the kept state nearest its own.

One context serves the process, so steps take turns on it (a lock); the time a step waits
for its turn is reported as `queue_ms`.
"""

from __future__ import annotations

import ctypes
import functools
import threading
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from model.chat_template import ChatTemplate
from model.cores import CORES, on_openmp_thread
from model.errors import ModelAssetError, PlannerError
from model.kv_state import KVStates, SavedStates
from model.kv_state import Sequence as TokenSequence
from model.llama_lib import load_llama
from model.llama_sampling import GreedySampler
from model.llama_step import Counts, LlamaStep
from model.llm import Completion, default_threads
from model.lookup import WINDOW, draft

__all__ = ["DEFAULT_CONTEXT_TOKENS", "DEFAULT_KV_BUDGET_BYTES", "LlamaCppEngine", "LlamaStep", "load_llama_engine"]

DEFAULT_CONTEXT_TOKENS = 8192
DEFAULT_KV_BUDGET_BYTES = 256 << 20
_BATCH = 256
DEFAULT_DRAFT_TOKENS = 6
_SWITCH_MIN_TOKENS = 16
"""Take up a kept state only when it shares this many more tokens than the context does."""
_STASH_MIN_TOKENS = 64
"""Put the context's conversation aside only when a step would discard this many of its tokens."""
_NEXT_USER = "\ue000"
"""Stands for the user's next words when reading ahead (a private-use character: no one's words)."""
_TOO_LONG = "the conversation needs {needed} tokens, more than the model's context of {limit}"


class LlamaCppEngine:
    """A GGUF chat model on llama.cpp, greedy, with its KV cache kept across steps and sessions."""

    def __init__(
        self,
        gguf: Path,
        *,
        context_tokens: int = DEFAULT_CONTEXT_TOKENS,
        threads: int | None = None,
        kv_budget_bytes: int = DEFAULT_KV_BUDGET_BYTES,
        state_dir: Path | None = None,
        name: str | None = None,
        draft_tokens: int = DEFAULT_DRAFT_TOKENS,
    ) -> None:
        """`state_dir` keeps the KV state of what a step prefilled with `keep_on_disk`, for the
        next process on the same model to load instead of prefilling (see `evaluate`).
        `draft_tokens`: the most tokens guessed ahead from the context (model/lookup.py); 0: none."""
        llama_cpp = load_llama()
        from llama_cpp._internals import LlamaBatch, LlamaContext

        if not Path(gguf).is_file():
            raise ModelAssetError(f"no model at {gguf}: run `voicegraph models prepare`")
        self._c = llama_cpp
        self._model = _weights(str(Path(gguf).resolve()))
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = context_tokens
        params.n_batch = params.n_ubatch = _BATCH
        params.n_seq_max = 1
        self.threads = threads or default_threads()
        params.n_threads = params.n_threads_batch = self.threads
        params.no_perf = True
        self.context = LlamaContext(model=self._model, params=params, verbose=False)
        self._batch = LlamaBatch(n_tokens=_BATCH, embd=0, n_seq_max=1, verbose=False)
        self._vocab = self._model.vocab
        self._pieces: dict[int, bytes] = {}
        self._end_tokens: dict[int, bool] = {}
        metadata = self._model.metadata()
        self.template = ChatTemplate(
            metadata["tokenizer.chat_template"],
            bos_token=self._token_text(llama_cpp.llama_vocab_bos(self._vocab)),
            eos_token=self._token_text(llama_cpp.llama_vocab_eos(self._vocab)),
        )
        self.name = name or Path(gguf).stem
        self._saved = SavedStates(state_dir, f"{llama_cpp.__version__}|{gguf.name}|{gguf.stat().st_size}")
        self.context_tokens = self.context.n_ctx()
        self.states = KVStates(kv_budget_bytes)
        """Conversations put aside when another session took the context."""
        self._live = TokenSequence()
        self._lock = threading.Lock()
        self._waiting = 0
        """Steps waiting for the model (reading ahead gives way to them)."""
        self._waiting_lock = threading.Lock()
        self._threads_now = self.threads
        self.draft_tokens = draft_tokens

    # --- tokens -------------------------------------------------------------------------

    def tokenize(self, text: bytes) -> list[int]:
        """Tokens of `text`, control tokens such as `<|im_start|>` included."""
        if not text:
            return []
        tokens: list[int] = self._model.tokenize(text, add_bos=False, special=True)
        return tokens

    def piece(self, token: int) -> bytes:
        """The bytes a token stands for (control tokens as their text)."""
        piece = self._pieces.get(token)
        if piece is None:
            size = 64
            buffer = ctypes.create_string_buffer(size)
            n = self._c.llama_token_to_piece(self._vocab, token, buffer, size, 0, True)
            piece = self._pieces[token] = buffer.raw[: max(n, 0)]
        return piece

    def _token_text(self, token: int) -> str:
        return self.piece(token).decode("utf-8", "replace") if token >= 0 else ""

    def is_end(self, token: int) -> bool:
        return bool(self._c.llama_vocab_is_eog(self._vocab, token))

    def sampler(self, grammar: str | None) -> GreedySampler:
        """Greedy decoding, limited to what `grammar` (GBNF) allows when one is given."""
        return GreedySampler(self._c, self._vocab, self._model.n_vocab(), grammar)

    # --- the context --------------------------------------------------------------------

    def render(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] | None = None) -> str:
        return self.template.render(messages, tools=tools)

    @contextmanager
    def step(
        self, messages: Sequence[Mapping[str, Any]], *, tools: Sequence[Mapping[str, Any]] | None = None
    ) -> Iterator[LlamaStep]:
        """Hold the model for one planning step on this conversation (rendered with `tools`);
        the step's `completion` is set when the block ends."""
        prompt = self.render(messages, tools).encode("utf-8")
        queued = time.perf_counter()
        with self._waiting_lock:
            self._waiting += 1
        with self._lock:
            with self._waiting_lock:
                self._waiting -= 1
            started = time.perf_counter()
            counts = Counts()
            counts.reused = counts.prompt = self._resume(prompt)
            step = LlamaStep(self, prompt[len(self._live.text) :], counts)
            try:
                yield step
            finally:
                step.completion = Completion(
                    text=step.text,
                    prompt_tokens=counts.prompt,
                    completion_tokens=counts.completion,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    reused_tokens=counts.reused,
                    queue_ms=(started - queued) * 1000,
                )

    def read_ahead(
        self, messages: Sequence[Mapping[str, Any]], *, tools: Sequence[Mapping[str, Any]] | None = None
    ) -> bool:
        """Read what the conversation's next step begins with, the end of the last answer and
        the opening of the user's next message (`<|im_end|>`, `<|im_start|>user`), while the
        user listens: that step then reads only the user's words and what follows them. Only
        when the model is idle: a step that holds it or waits for it goes first, and this
        reading is skipped."""
        rendered = self.render([*messages, {"role": "user", "content": _NEXT_USER}], tools)
        if _NEXT_USER not in rendered:
            return False
        prefix = rendered[: rendered.index(_NEXT_USER)].encode("utf-8")
        if self._waiting or not self._lock.acquire(blocking=False):
            return False
        try:
            self._resume(prefix)
            rest = prefix[len(self._live.text) :]
            if rest:
                self.evaluate(self.tokenize(rest))
            return bool(rest)
        finally:
            self._lock.release()

    def forget(self) -> None:
        """Drop every KV state: the context's and the kept ones (the next step prefills all)."""
        with self._lock:
            self._truncate(0)
            self.states = KVStates(self.states.budget_bytes)

    def evaluate(
        self,
        tokens: list[int],
        *,
        keep_on_disk: bool = False,
        logits_all: bool = False,
        logits_at: Collection[int] = (),
    ) -> dict[int, int]:
        """Feed tokens to the model, in batches; with none, read the last one again (for its logits).

        `keep_on_disk`, into an empty context: load the state saved by an earlier process
        that read the same tokens, else read them and save the state (the system block with
        the tools: ~700 tokens, 15-20 s of prefill on two cores, 20 MB on disk). `logits_all`:
        keep the logits after every token, not only the last (to check drafted tokens).
        `logits_at`: positions in `tokens` whose logits are kept as well, where they are read
        in the last batch; returned as {position: index to sample at} until the next batch."""
        if keep_on_disk and not self._live.tokens:
            state = self._saved.load(tokens)
            if state is not None and self._restore(self._sequence(tokens), state):
                return {}
            self.evaluate(tokens)
            self._saved.save(tokens, self._state())
            return {}
        if not tokens:
            if not self._live.tokens:
                raise PlannerError("nothing to generate from: the prompt is empty")
            tokens = self._live.tokens[-1:]
            self._truncate(len(self._live) - 1)
        needed = len(self._live) + len(tokens)
        if needed > self.context_tokens:
            raise PlannerError(_TOO_LONG.format(needed=needed, limit=self.context_tokens))
        kept: dict[int, int] = {}
        for start in range(0, len(tokens), _BATCH):
            chunk = tokens[start : start + _BATCH]
            self._batch.set_batch(chunk, n_past=len(self._live), logits_all=logits_all)
            kept = {at: at - start for at in logits_at if start <= at < start + len(chunk)}
            for index in kept.values():
                self._batch.batch.logits[index] = True
            self._share_cores()
            try:
                on_openmp_thread(lambda: self.context.decode(self._batch))
            except RuntimeError as error:
                self._truncate(len(self._live))  # what the failed batch wrote is not ours
                raise PlannerError(f"llama.cpp could not decode: {error}") from error
            self._live.extend(chunk, [self.piece(t) for t in chunk])
        return kept

    def draft(self, token: int, limit: int) -> list[int]:
        """Tokens guessed to follow `token` from what the conversation already holds (model/lookup.py).

        Not from the system block: the model repeats what users and tools said, never the
        instructions or the tools' declarations, and there a match only costs a batch. The
        argument "Tokyo" was guessed to go on as the clock's description does (`or Tokyo",
        "parameters":`), an answer's closing full stop as the instructions (` Call a tool when
        ...`): on two cores of an Intel Xeon, where a batch of seven tokens takes 2.6 times as
        long as one, guesses from everywhere made the clock's answer begin later (3.54 s without
        guessing, 4.55 s with) and a tool's arguments slower than no guessing at all."""
        if not self.draft_tokens:
            return []
        tokens = self._live.tokens
        start = max(self._conversation_start(), len(tokens) - WINDOW)
        return draft([*tokens[start:], token], min(limit, self.draft_tokens))

    def _conversation_start(self) -> int:
        """Where the conversation begins: after the first message's end (the system block)."""
        for at, token in enumerate(self._live.tokens):
            if self._ends(token):
                return at + 1
        return 0

    def _ends(self, token: int) -> bool:
        ends = self._end_tokens.get(token)
        if ends is None:
            ends = self._end_tokens[token] = self.is_end(token)
        return ends

    def tokens_read(self) -> int:
        """How many tokens the context holds."""
        return len(self._live)

    def drop(self, n_tokens: int) -> None:
        """Forget the context's last `n_tokens` (drafted tokens the model did not write)."""
        if n_tokens > 0:
            self._truncate(len(self._live) - n_tokens)

    def _share_cores(self) -> None:
        """Use the cores the speech models leave free (model/cores.py): a thread put aside
        for the voice would hold up every barrier of the token."""
        threads = CORES.planner_threads(self.threads)
        if threads != self._threads_now:
            self._c.llama_set_n_threads(self.context.ctx, threads, threads)
            self._threads_now = threads

    def _resume(self, prompt: bytes) -> int:
        """Make the context hold the longest known beginning of `prompt`; the tokens it holds."""
        shared = self._live.shared_tokens(prompt)
        kept = self.states.best(prompt)
        if kept is not None and kept[2] >= shared + _SWITCH_MIN_TOKENS:
            self._stash(shared)
            sequence, state, kept_shared = kept
            shared = kept_shared if self._restore(sequence, state) else 0
        elif len(self._live) - shared >= _STASH_MIN_TOKENS:
            self._stash(shared)
        self._truncate(shared)
        return shared

    def _stash(self, shared: int) -> None:
        """Put the context's conversation aside, unless the new one shares nearly all of it."""
        if len(self._live) - shared < _STASH_MIN_TOKENS:
            return
        self.states.put(self._live, self._state())

    def _state(self) -> bytes:
        """The KV state of what the context holds."""
        size = self._c.llama_state_seq_get_size(self.context.ctx, 0)
        state = bytearray(size)
        written = self._c.llama_state_seq_get_data(
            self.context.ctx, (ctypes.c_uint8 * size).from_buffer(state), size, 0
        )
        return bytes(state[:written]) if written != size else bytes(state)

    def _sequence(self, tokens: list[int]) -> TokenSequence:
        sequence = TokenSequence()
        sequence.extend(tokens, [self.piece(t) for t in tokens])
        return sequence

    def _restore(self, sequence: TokenSequence, state: bytes) -> bool:
        buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if not self._c.llama_state_seq_set_data(self.context.ctx, buffer, len(state), 0):
            self._truncate(0)
            return False
        self._live = sequence
        return True

    def _truncate(self, n_tokens: int) -> None:
        self._c.llama_memory_seq_rm(self.context.memory, 0, n_tokens, -1)
        self._live.truncate(n_tokens)


@functools.cache
def _weights(gguf: str) -> Any:
    """The model's weights, read once per process and shared by every engine's context (each
    engine holds only its context and kept states: ~0.3 GB instead of ~1.7 GB)."""
    llama_cpp = load_llama()
    from llama_cpp._internals import LlamaModel

    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_default_params()
    # Read, not mapped: llama.cpp repacks most weights into a faster layout, and with the
    # file mapped too the process would hold both (2.0 GB resident instead of 1.4 GB).
    params.load_mode = llama_cpp.LLAMA_LOAD_MODE_NONE
    return LlamaModel(path_model=gguf, params=params, verbose=False)


@functools.cache
def _cached_engine(
    gguf: str, context_tokens: int, threads: int | None, kv_budget_bytes: int, state_dir: Path | None, draft_tokens: int
) -> LlamaCppEngine:
    return LlamaCppEngine(
        Path(gguf),
        context_tokens=context_tokens,
        threads=threads,
        kv_budget_bytes=kv_budget_bytes,
        state_dir=state_dir,
        draft_tokens=draft_tokens,
    )


def load_llama_engine(
    gguf: Path,
    *,
    context_tokens: int = DEFAULT_CONTEXT_TOKENS,
    threads: int | None = None,
    kv_budget_bytes: int = DEFAULT_KV_BUDGET_BYTES,
    state_dir: Path | None = None,
    draft_tokens: int = DEFAULT_DRAFT_TOKENS,
) -> LlamaCppEngine:
    """The process-wide engine for these settings: loaded on first call, shared after (the
    weights are read once, and the kept sessions' states serve every caller)."""
    return _cached_engine(str(Path(gguf).resolve()), context_tokens, threads, kv_budget_bytes, state_dir, draft_tokens)
