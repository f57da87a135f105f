"""How much memory the server keeps that it no longer uses: glibc's malloc arenas.

glibc gives a thread that allocates while another holds the main heap an arena of its own, up
to eight per core, and keeps what is freed in it for that arena's next allocation. The service
has many threads that allocate (uvicorn's, asyncio's worker pool, OpenMP's, ONNX Runtime's and
CTranslate2's), so arenas multiply, each holding freed buffers of the models it ran. With two
arenas `voicegraph bench latency --turns 5 --no-compare` measured the server's peak RSS at
2,421 MiB instead of 2,572 MiB on two cores of an AMD EPYC (2,411 MiB with `MALLOC_ARENA_MAX=2`
set before the process started), every time to first audio within run-to-run noise.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

__all__ = ["SERVER_ARENAS", "limit_malloc_arenas"]

log = logging.getLogger(__name__)

SERVER_ARENAS = 2
_M_ARENA_MAX = -8
"""mallopt's parameter for the most arenas (glibc's malloc.h)."""


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Let glibc's malloc make at most `arenas` arenas from now on; whether it was set.

    Not where `MALLOC_ARENA_MAX` is set already (the operator's choice stands), nor on a C
    library other than glibc (musl has no arenas to limit)."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    done = bool(mallopt(_M_ARENA_MAX, arenas))
    if not done:
        log.debug("mallopt(M_ARENA_MAX, %d) was refused", arenas)
    return done
