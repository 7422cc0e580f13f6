"""Running deeply nested work without a Python RecursionError.

The parser and evaluator are recursive over the *nesting* of the source text (like CNTK's
own C++), not over the graph. To make 10,000-level nesting work, they run in a worker
thread with a 1 GiB stack and a raised recursion limit; if even that is exceeded, the
RecursionError is turned into a clean :class:`~netsurgeon.errors.EvaluationError`.
Documented in docs/brainscript.md ("Deep nesting").
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TypeVar

from netsurgeon.errors import EvaluationError

__all__ = ["deep_call", "MAX_DEPTH"]

T = TypeVar("T")
MAX_DEPTH = 250_000
_STACK_BYTES = 1024 * 1024 * 1024
_local = threading.local()


def deep_call(fn: Callable[[], T]) -> T:
    """Run ``fn()`` with room for very deep recursion; re-raise its exception here."""
    if getattr(_local, "inside", False):
        return fn()
    result: list = []
    error: list = []

    def run() -> None:
        _local.inside = True
        old = sys.getrecursionlimit()
        sys.setrecursionlimit(max(old, MAX_DEPTH))
        try:
            result.append(fn())
        except RecursionError:
            error.append(EvaluationError(
                "BrainScript nesting too deep (more than the supported depth); "
                "is there an endless recursion in a function definition?"))
        except BaseException as exc:
            error.append(exc)
        finally:
            sys.setrecursionlimit(old)

    old_size = threading.stack_size()
    try:
        threading.stack_size(_STACK_BYTES)
        worker = threading.Thread(target=run, name="brainscript", daemon=True)
        worker.start()
    finally:
        threading.stack_size(old_size)
    worker.join()
    if error:
        raise error[0]
    return result[0]
