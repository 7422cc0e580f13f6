"""What MEL writes and reads besides models: validation before a save, model files, Dump text,
and ReviseParameter's text matrices. Writes go through the session's
:class:`~netsurgeon.lang.mel._writes.Writer` (staged until a script succeeded)."""

from __future__ import annotations

import math
import os

import numpy as np

from netsurgeon.errors import EditError, NetsurgeonError, ValidationError
from netsurgeon.graph import Network, Node, prepare
from netsurgeon.graph.passes import CheckStructure
from netsurgeon.lang.mel._session import Model
from netsurgeon.lang.mel._writes import Writer

__all__ = ["structure_problems", "validate", "save", "write_text", "read_matrix", "revised_value"]

_SHOWN = 25  # problems listed in one validation error


def structure_problems(net: Network) -> list[str]:
    """Every node with an input count its op refuses or an unconnected input."""
    problems = []
    for node, spec, bad_arity, missing in CheckStructure().problems(net):
        if bad_arity and spec is not None:
            problems.append(f"{node.name} ({node.op}) has {len(node.inputs)} inputs, "
                            f"expects {spec.arity_text()}")
        if missing:
            problems.append(f"{node.name} ({node.op}): input "
                            f"{', '.join(map(str, missing))} not connected")
    return problems


def validate(model: Model) -> None:
    """Check and complete a model before it is written: the error names every unconnected or
    mis-wired node at once; then :func:`~netsurgeon.graph.passes.prepare` (shapes, and values
    of parameters whose 0 dimensions were inferred)."""
    problems = structure_problems(model.network)
    if problems:
        more = [f"... {len(problems) - _SHOWN} more"] if len(problems) > _SHOWN else []
        raise ValidationError(
            f"model '{model.name}' is not valid: " + "; ".join(problems[:_SHOWN] + more),
            hint="connect them with SetInput/SetInputs or remove them")
    try:
        prepare(model.network)
    except ValidationError as exc:
        raise type(exc)(f"model '{model.name}' is not valid: {exc.message}", node=exc.node,
                        hint=exc.hint, location=exc.location) from None


def save(writer: Writer, model: Model, path: str | os.PathLike[str], fmt: str) -> None:
    """Write a validated model in format ``fmt`` (atomically, through ``writer``)."""
    from netsurgeon import formats

    writer.write(str(path), lambda real: formats.save(model.network, real, format=fmt))


def write_text(writer: Writer, path: str | os.PathLike[str], text: str) -> None:
    """Write a text file (a Dump) atomically through ``writer``."""
    def produce(real: str) -> None:
        from netsurgeon.formats._atomic import atomic_write

        with atomic_write(real) as f:
            f.write(text.encode("utf-8"))

    writer.write(str(path), produce)


def read_matrix(path: str | os.PathLike[str]) -> np.ndarray:
    """A text matrix file (one CNTK row per line; ``#`` lines skipped), as Dump writes it."""
    from netsurgeon._inputs import read_text
    from netsurgeon.ops.init import read_text_matrix

    text = read_text(path, "parameter file", EditError)
    kept = "\n".join(line for line in text.splitlines() if not line.strip().startswith("#"))
    try:
        return read_text_matrix(kept, str(path))
    except NetsurgeonError as exc:
        raise EditError(f"cannot read parameter file {path}: {exc}") from exc


def revised_value(node: Node, matrix: np.ndarray, path: str | os.PathLike[str]) -> np.ndarray:
    """``matrix`` (CNTK rows) as a new value for ``node``, in numpy order and its dtype."""
    shape = tuple(node.value.shape) if node.value is not None else tuple(node.shape or ())
    size = math.prod(shape)
    if matrix.size != size:
        raise EditError(f"{path} has {matrix.size} values but '{node.name}' needs {size} "
                        f"(shape {shape})", node=node.name)
    dtype = node.value.dtype if node.value is not None else np.dtype(node.dtype)
    # rows are CNTK rows (the last numpy axis): transpose back to numpy order
    columns = matrix.reshape(matrix.shape[0], -1).T
    return np.ascontiguousarray(columns.reshape(shape)).astype(dtype)
