"""Importing llama-cpp-python.

llama.cpp's CPU backend runs each token's graph on OpenMP threads, which meet dozens of
times in each token. Before the process shared its cores (model/cores.py), a thread spinning
in OpenMP's default wait beside a busy recognizer or voice took decoding on two cores from
~11 to 0.4 tokens/s, so the passive policy (sleep at once) was set here. Now the planner runs
on the cores the speech models leave free while they work, and the default wait is kept:
with the passive one a token took 51 ms instead of 40 (see `load_llama`). Where other
processes share the cores, `OMP_WAIT_POLICY=PASSIVE` in the environment still applies.
"""

from __future__ import annotations

import logging
from typing import Any

from model.errors import ModelAssetError

__all__ = ["load_llama"]

_MISSING = (
    "llama-cpp-python is not installed: run deploy/bootstrap.sh, which builds it "
    "(or set VOICEGRAPH_ENGINE=transformers)"
)


def load_llama() -> Any:
    """The `llama_cpp` module, or a ModelAssetError that says how to install it.

    OpenMP's threads are left to wait as they do by default, spinning a moment before they
    sleep: llama.cpp's threads meet dozens of times in each token, and told to sleep at once
    (OMP_WAIT_POLICY=PASSIVE) a token took 51 ms instead of 40 on two cores. The speech models
    do not suffer for it: while they work the planner runs on the cores they leave free
    (model/cores.py)."""
    try:
        import llama_cpp
    except ImportError as error:
        raise ModelAssetError(_MISSING) from error
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # llama.cpp's chatter on load
    return llama_cpp
