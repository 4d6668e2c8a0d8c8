"""Process-wide memory settings for the long-running agent on a 1 GB Raspberry Pi.

Measured with bench/bench_edge_ingest.py: most of the agent's resident memory was not Python objects
but freed C heap that glibc never returned to the system.
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
MMAP_THRESHOLD_BYTES = 1 << 20


def return_large_frees_to_the_system() -> bool:
    """Serve allocations of 1 MiB and more with mmap, so freeing them gives the pages back.

    argon2 verified device passwords on MQTT connect with a 19 MiB buffer, in a worker thread.
    glibc raises its mmap threshold after the first such free, so later buffers came from the
    threads' heaps and stayed resident: 12 concurrent verifications kept +114 MB (Python objects:
    0.1 MB). A fixed threshold (which also switches the dynamic raise off) keeps them out of the
    heaps: +0.5 MB. Device hashes are cheap now, but older ones and other C libraries' big buffers
    still benefit. Other C libraries than glibc: no-op, returns False.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def skip_httpx_cli() -> None:
    """httpx imports its command-line tool (click, rich, pygments: ~4 MB) whenever those happen to
    be installed (typer brings them); the agent never runs it. Call before anything imports httpx."""
    if "httpx" not in sys.modules:
        sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]


def tune_agent_process() -> None:
    if not return_large_frees_to_the_system():
        log.info("malloc tuning unavailable on this C library")
    skip_httpx_cli()
