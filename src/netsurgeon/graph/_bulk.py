"""Pausing Python's cyclic garbage collector while a whole network is built, read, written or
compiled.

NOTE: why, and why this and not ``gc.freeze``. Reading or writing a model makes one or two
tracked objects per node and frees none of them until it is done; a network holds no
reference cycles (nodes keep only a weak reference to it), so a collection during the read
finds nothing, yet each full pass visits every object made so far, which turns a linear read
into a superlinear one (1.3x slower at 100k nodes). Pausing the collector for the length of
the call and switching it back on (only if it was on) is what large-object loaders commonly
do; ``gc.freeze`` would instead keep every model ever loaded out of later collections.
Used by the CNTK and native formats and by the runtime's code generation.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["collector_paused"]


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic collector for the ``with`` block (restored even on an error)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
