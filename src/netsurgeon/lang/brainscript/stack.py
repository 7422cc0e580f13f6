"""An explicit work stack for the parser and the evaluator (no deep Python recursion).

Work is written as generators: where a recursive parser or evaluator would call itself, the
generator *yields* the sub-work (another generator) and receives its result. :func:`drive`
keeps the pending generators on a list, so nesting depth costs heap memory (a few hundred
bytes per level), never Python stack. A generator may also yield any other object, which
``resolve`` turns into a result or into more work (the evaluator yields thunks to force).

``yield from`` is not used for sub-work: CPython resumes a ``yield from`` chain through every
link, which would be recursion (and quadratic time) again.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from types import GeneratorType
from typing import Any

__all__ = ["Budget", "drive", "Work"]

Work = Generator[Any, Any, Any]


class Budget:
    """Limits shared by nested :func:`drive` calls: ``depth`` (pending generators, all loops
    together) and ``steps`` (generators started; bounds the time a program can take).

    ``too_deep(stack)`` and ``too_long(stack)`` return the exception to raise in the work
    that hit the limit.
    """

    __slots__ = ("depth", "max_depth", "steps", "max_steps", "too_deep", "too_long")

    def __init__(self, max_depth: int, max_steps: int | None,
                 too_deep: Callable[[list[Work]], BaseException],
                 too_long: Callable[[list[Work]], BaseException] | None = None) -> None:
        self.depth = 0
        self.max_depth = max_depth
        self.steps = 0
        self.max_steps = max_steps
        self.too_deep = too_deep
        self.too_long = too_long or too_deep


def drive(root: Work, budget: Budget,
          resolve: Callable[[Any], Any] | None = None) -> Any:
    """Run the generator ``root`` to completion and return its result.

    A yielded generator is run next and its result (or exception) sent back into the
    yielder; any other yielded object goes through ``resolve``, whose result is a value to
    send back or a generator to run. Exceptions travel up the pending generators exactly as
    they would up a call stack.
    """
    stack: list[Work] = [root]
    budget.depth += 1
    send: Any = None
    error: BaseException | None = None
    try:
        while True:
            gen = stack[-1]
            try:
                if error is None:
                    item = gen.send(send)
                else:
                    exc, error = error, None
                    item = gen.throw(exc)
            except StopIteration as stop:
                stack.pop()
                budget.depth -= 1
                if not stack:
                    return stop.value
                send = stop.value
                continue
            except BaseException as exc:
                stack.pop()
                budget.depth -= 1
                if not stack:
                    raise
                error = exc
                continue
            if item.__class__ is not GeneratorType:
                try:
                    item = resolve(item)  # type: ignore[misc]
                except Exception as exc:  # e.g. a circular reference: into the asking work
                    error = exc
                    continue
                if item.__class__ is not GeneratorType:
                    send = item
                    continue
            if budget.depth >= budget.max_depth:
                item.close()
                error = budget.too_deep(stack)
                continue
            budget.steps += 1
            if budget.max_steps is not None and budget.steps > budget.max_steps:
                item.close()
                error = budget.too_long(stack)
                continue
            stack.append(item)
            budget.depth += 1
            send = None
    finally:
        # only after an interruption outside the generators (e.g. KeyboardInterrupt)
        while stack:
            stack.pop().close()
            budget.depth -= 1
