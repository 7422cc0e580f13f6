"""Loading the model a runtime command works on: a model file, or an NDL network file."""

from __future__ import annotations

from pathlib import Path

from netsurgeon.errors import NetsurgeonError


def load_model(path: str, fmt: str | None = None):
    """A Network from a model file (native/CNTK) or, for ``.ndl``, from NDL text."""
    p = Path(path)
    if p.suffix.lower() == ".ndl":
        from netsurgeon.lang.ndl import build_network

        if not p.is_file():
            raise NetsurgeonError(f"NDL file not found: {p}")
        return build_network(p.read_text(encoding="utf-8"), source=str(p), name=p.stem)
    from netsurgeon.formats import load

    return load(path, fmt)
