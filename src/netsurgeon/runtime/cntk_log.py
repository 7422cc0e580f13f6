"""The log-line formats of CNTK's SGD and evaluator (Criterion.h, SGD.cpp, SimpleEvaluator.h).

Pure string formatting (no torch): :func:`log_criterion` is CNTK's ``LogCriterion``, the other
functions build the lines ``Finished Epoch[...]``, `` Epoch[...]-Minibatch[...]`` and
``Final Results: Minibatch[...]`` exactly as CNTK prints them (without the
``timestamping=true`` prefix, which the caller adds).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["log_criterion", "padded_float_or_exp", "minibatch_line", "finished_epoch_line",
           "validate_line", "eval_results_line", "PERPLEXITY_OPS"]

#: criterion ops after which the evaluator's final line adds ``perplexity = exp(avg)``
PERPLEXITY_OPS = frozenset({"CrossEntropyWithSoftmax", "CrossEntropy",
                            "ClassBasedCrossEntropyWithSoftmax", "NoiseContrastiveEstimation"})


def padded_float_or_exp(width: int, precision: int, value: float) -> str:
    """CNTK's ``GeneratePaddedFloatOrExpFormat`` applied to ``value``: ``%W.Pf``, or
    ``%W.Pe`` when ``%.Pg`` would print an exponent."""
    probe = f"{value:.{precision}g}"
    if "e" in probe or "E" in probe:
        return f"{value:{width}.{precision}e}"
    return f"{value:{width}.{precision}f}"


def log_criterion(name: str, total: float, count: int) -> str:
    """``<name> = <avg> * <count>`` as CNTK's Criterion.h ``LogCriterion`` prints it.

    avg = total/count (0 when count is 0). A name ending in ``s`` (CNTK's plural heuristic,
    e.g. ``errs``) prints 100·avg as a percentage with 3 decimals (``errs = 48.800% * 1000``),
    any other 8 decimals (``ce = 0.69314718 * 1000``); exponent forms when ``%g`` would use one.
    """
    avg = total / count if count > 0 else 0.0
    if name.endswith("s"):
        text = padded_float_or_exp(2, 3, avg * 100) + "%"
    else:
        text = padded_float_or_exp(0, 8, avg)
    return f"{name} = {text} * {int(count)}"


def _entries(values: Sequence[tuple[str, float, int]]) -> str:
    return "; ".join(log_criterion(n, t, c) for n, t, c in values)


def minibatch_line(epoch: int, max_epochs: int, first: int, last: int,
                   values: Sequence[tuple[str, float, int]], seconds: float, samples: int,
                   progress: float | None = None, precision: int = 2) -> str:
    """`` Epoch[ e of E]-Minibatch[   a-   b(, P%)]: <criteria>; time = Ts; samplesPerSecond = R``
    (``epoch`` 1-based; ``progress`` a fraction, shown only when the epoch size is known)."""
    where = f"{first:4d}-{last:4d}"
    if progress is not None:
        where += f", {progress * 100:2.{precision}f}%"
    rate = samples / seconds if seconds > 0 else 0.0
    return (f" Epoch[{epoch:2d} of {max_epochs}]-Minibatch[{where}]: {_entries(values)}; "
            f"time = {seconds:.4f}s; samplesPerSecond = {rate:.1f}")


def finished_epoch_line(epoch: int, max_epochs: int, values: Sequence[tuple[str, float, int]],
                        total_samples: int, lr_per_sample: float, seconds: float) -> str:
    """``Finished Epoch[ e of E]: [Training] ...; totalSamplesSeen = N;
    learningRatePerSample = %.8g; epochTime=%.6gs``."""
    return (f"Finished Epoch[{epoch:2d} of {max_epochs}]: [Training] {_entries(values)}; "
            f"totalSamplesSeen = {total_samples}; learningRatePerSample = {lr_per_sample:.8g}; "
            f"epochTime={seconds:.6g}s")


def validate_line(epoch: int, max_epochs: int, values: Sequence[tuple[str, float, int]]) -> str:
    """``Finished Epoch[ e of E]: [Validate] <criteria>`` (after a cross-validation pass)."""
    return f"Finished Epoch[{epoch:2d} of {max_epochs}]: [Validate] {_entries(values)}"


def eval_results_line(first: int, last: int, values: Sequence[tuple[str, float, int, str]],
                      final: bool = False) -> str:
    """The evaluator's ``Minibatch[a-b]: ...`` line, or with ``final`` its ``Final Results:``
    line, which adds ``; perplexity = %.8f`` after each cross-entropy criterion.
    ``values``: (name, total, count, op)."""
    parts = []
    for name, total, count, op in values:
        text = log_criterion(name, total, count)
        if final and op in PERPLEXITY_OPS:
            avg = total / count if count > 0 else 0.0
            try:
                text += f"; perplexity = {math.exp(avg):.8f}"
            except OverflowError:
                text += "; perplexity = inf"
        parts.append(text)
    head = "Final Results: " if final else ""
    return f"{head}Minibatch[{first}-{last}]: " + "; ".join(parts)
