"""Model files: one module per format, and ``load``/``save`` that pick the right one.

Formats: ``native`` (``.nsm``: safetensors + JSON graph, memory-mapped) and ``cntk`` (CNTK v1
``.dnn``/``.cmf``/``.model``). On load the format is detected from the first bytes; on save
from the extension (native for ``.nsm``/``.safetensors``, cntk for ``.dnn``/``.cmf``/``.model``,
native otherwise) unless ``format=`` says. This package never imports torch.
"""

from __future__ import annotations

import os
from pathlib import Path

from netsurgeon._inputs import read_head
from netsurgeon.errors import FormatError
from netsurgeon.graph import Network

__all__ = ["load", "save", "detect_format", "format_for_path", "FORMATS"]

FORMATS = ("native", "cntk")
_CNTK_SUFFIXES = {".dnn", ".cmf", ".model"}


def _canonical(fmt: str) -> str:
    low = fmt.lower()
    if low in ("cntk", "cntk_legacy_no_tensorlib", "cntkv1", "dnn"):
        return "cntk"
    if low in ("native", "nsm", "netsurgeon", "safetensors"):
        return "native"
    if low == "onnx":
        raise FormatError("format 'onnx' is not supported yet; use 'native' or 'cntk'")
    raise FormatError(f"unknown model format '{fmt}'; use 'native' or 'cntk'")


def detect_format(path: str | os.PathLike[str]) -> str:
    """``native`` or ``cntk`` from the file's first bytes. Raises FormatError otherwise."""
    from netsurgeon.formats.native import looks_native

    p = Path(path)
    head = read_head(p, 16, "model file", FormatError)
    if _cntk().is_cntk_file(head):
        return "cntk"
    if looks_native(head):
        return "native"
    raise FormatError(f"{p}: not a netsurgeon (.nsm) or CNTK v1 model file (first bytes "
                      f"{head[:8].hex()})")


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The format a save to ``path`` uses when none is given."""
    suffix = Path(path).suffix.lower()
    if suffix in _CNTK_SUFFIXES:
        return "cntk"
    return "native"


def _cntk():
    """The CNTK v1 format module (imported on first use: it attaches its registry layer)."""
    from netsurgeon.formats import cntk

    return cntk


def load(path: str | os.PathLike[str], format: str | None = None) -> Network:
    """Read a model file (format detected from its first bytes unless given).

    Only regular files are read (a FIFO or device is refused before anything is read); every
    problem is a FormatError naming the file."""
    fmt = _canonical(format) if format else detect_format(path)
    if fmt == "cntk":
        return _cntk().read(path)
    from netsurgeon.formats import native

    return native.load(path)


def save(network: Network, path: str | os.PathLike[str], format: str | None = None) -> str:
    """Write ``network`` atomically; returns the format used."""
    fmt = _canonical(format) if format else format_for_path(path)
    if fmt == "cntk":
        _cntk().write(network, path)
    else:
        from netsurgeon.formats import native

        native.save(network, path)
    return fmt
