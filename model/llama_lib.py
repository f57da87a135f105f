"""Importing llama-cpp-python, set up to share two cores with the rest of the service.

llama.cpp's CPU backend runs each token's graph on OpenMP threads. With the OpenMP
runtime's default ("active") wait policy, idle threads spin; when anything else in the
process or on the machine wants a core (the recognizer, the voice, another session's
step), decoding on two cores fell from ~11 to 0.4 tokens/s. With the passive policy it
kept 6.5 tokens/s under the same load. The runtime reads the policy once, when it is
loaded, so it is set (unless the user set it) before the library is first imported.
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
