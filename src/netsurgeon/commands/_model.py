"""Loading the model a runtime command works on: a model file, or an NDL network file."""

from __future__ import annotations

from pathlib import Path


def load_model(path: str, fmt: str | None = None):
    """A Network from a model file (native/CNTK) or, for ``.ndl``, from NDL text."""
    p = Path(path)
    if p.suffix.lower() == ".ndl":
        from netsurgeon.lang.ndl import build_file

        return build_file(p)
    from netsurgeon.formats import load

    return load(path, fmt)
