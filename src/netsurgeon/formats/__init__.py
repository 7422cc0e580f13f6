"""Model files: one module per format, and ``load``/``save`` that pick the right one.

Formats: ``native`` (``.nsm``: safetensors + JSON graph, memory-mapped), ``cntk`` (CNTK v1
``.dnn``/``.cmf``), ``cntk-v2`` (CNTK 2.x ``Function.save`` files, ``.model``) and ``onnx``
(``.onnx``: export, and import of ONNX models). On load the format is detected from the
first bytes (CNTK wrote v1 and v2 files under any of its extensions); on save from the
extension (native for ``.nsm``/``.safetensors``, cntk for ``.dnn``/``.cmf``, cntk-v2 for
``.model``, onnx for ``.onnx``, native otherwise) unless ``format=`` says. This package
never imports torch, and imports the onnx package only when an ONNX file is read or written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from netsurgeon._inputs import check_regular, read_head
from netsurgeon.errors import FormatError, NetsurgeonError
from netsurgeon.graph import Network

if TYPE_CHECKING:
    from netsurgeon.progress import ProgressFactory

__all__ = ["load", "save", "detect_format", "format_for_path", "FORMATS"]

FORMATS = ("native", "cntk", "cntk-v2", "onnx")
_CNTK_SUFFIXES = {".dnn", ".cmf"}
_CNTK_V2_SUFFIXES = {".model"}  # what CNTK 2.x Function.save was given, by convention


def _canonical(fmt: str) -> str:
    low = fmt.lower()
    if low in ("cntk", "cntk_legacy_no_tensorlib", "cntkv1", "dnn"):
        return "cntk"
    if low in ("native", "nsm", "netsurgeon", "safetensors"):
        return "native"
    if low in ("cntk-v2", "cntkv2", "cntk_v2", "v2"):
        return "cntk-v2"
    if low == "onnx":
        return "onnx"
    raise FormatError(f"unknown model format '{fmt}'; use 'native', 'cntk', 'cntk-v2' or "
                      "'onnx'")


def detect_format(path: str | os.PathLike[str]) -> str:
    """``native``, ``cntk``, ``cntk-v2`` or ``onnx`` from the file's first bytes (the
    extension means nothing: CNTK wrote v1 and v2 files as ``.model`` and ``.dnn`` alike).
    Raises FormatError otherwise."""
    from netsurgeon.formats.cntk_v2.detect import looks_v2
    from netsurgeon.formats.native import looks_native
    from netsurgeon.formats.onnx.importer_detect import HEAD_BYTES, looks_onnx

    p = Path(path)
    head = read_head(p, HEAD_BYTES, "model file", FormatError)
    if _cntk().is_cntk_file(head):
        return "cntk"
    if looks_native(head):
        return "native"
    if looks_v2(head):
        return "cntk-v2"
    if looks_onnx(head):
        return "onnx"
    raise FormatError(f"{p}: not a netsurgeon (.nsm), CNTK v1, CNTK v2 or ONNX model file "
                      f"(first bytes {head[:8].hex()})")


def format_for_path(path: str | os.PathLike[str]) -> str:
    """The format a save to ``path`` uses when none is given."""
    suffix = Path(path).suffix.lower()
    if suffix in _CNTK_SUFFIXES:
        return "cntk"
    if suffix in _CNTK_V2_SUFFIXES:
        return "cntk-v2"
    if suffix == ".onnx":
        return "onnx"
    return "native"


def _cntk():
    """The CNTK v1 format module (imported on first use: it attaches its registry layer)."""
    from netsurgeon.formats import cntk

    return cntk


def load(path: str | os.PathLike[str], format: str | None = None) -> Network:
    """Read a model file (format detected from its first bytes unless given).

    Only regular files are read (a FIFO or device is refused before anything is read); every
    problem is a FormatError naming the file."""
    if not format:
        return _load(path, detect_format(path))
    fmt = _canonical(format)
    check_regular(path, "model file", FormatError)  # missing: also a FileNotFoundError
    try:
        return _load(path, fmt)
    except FormatError:
        try:
            real = detect_format(path)
        except NetsurgeonError:
            real = fmt
        if real != fmt:  # the format given does not fit: say what the file is
            raise FormatError(f"{path}: this is {_FORMAT_NAMES[real]}; use format={real} "
                              f"(--format {real} on the command line) or give no format to "
                              f"detect it, not {fmt}") from None
        raise


_FORMAT_NAMES = {"native": "a netsurgeon (.nsm) model file", "cntk": "a CNTK v1 model file",
                 "cntk-v2": "a CNTK v2 model file", "onnx": "an ONNX model file"}


def _load(path: str | os.PathLike[str], fmt: str) -> Network:
    if fmt == "cntk":
        return _cntk().read(path)
    if fmt == "cntk-v2":
        from netsurgeon.formats.cntk_v2.reader import read as read_v2

        return read_v2(path)
    if fmt == "onnx":
        from netsurgeon.formats.onnx.importer import read

        return read(path)
    from netsurgeon.formats import native

    return native.load(path)


def save(network: Network, path: str | os.PathLike[str], format: str | None = None, *,
         outputs: Iterable[str] | None = None, keep_criteria: bool = False,
         opset: int | None = None,
         progress: bool | ProgressFactory | None = None) -> str:
    """Write ``network`` atomically; returns the format used.

    ``outputs``, ``keep_criteria`` and ``opset`` choose what an ONNX export contains
    (:func:`netsurgeon.formats.onnx.save`); the other formats store the whole network.
    ``progress``: a bar counting the bytes written (see :mod:`netsurgeon.progress`)."""
    fmt = _canonical(format) if format else format_for_path(path)
    if fmt != "onnx" and (outputs or keep_criteria or opset is not None):
        raise FormatError(f"outputs, keep_criteria and opset apply to ONNX export only, not to "
                          f"the {fmt} format (which stores the whole network)")
    if progress:
        with writing(progress, network, path):
            return save(network, path, fmt, outputs=outputs, keep_criteria=keep_criteria,
                        opset=opset)
    if fmt == "cntk":
        _cntk().write(network, path)
    elif fmt == "cntk-v2":
        from netsurgeon.formats.cntk_v2.writer import write as write_v2

        write_v2(network, path)
    elif fmt == "onnx":
        from netsurgeon.formats import onnx

        onnx.save(network, path, outputs, keep_criteria=keep_criteria, opset=opset)
    else:
        from netsurgeon.formats import native

        native.save(network, path)
    return fmt


@contextlib.contextmanager
def writing(progress: bool | ProgressFactory | None, network: Network,
            path: str | os.PathLike[str]) -> Iterator[None]:
    """A bar (:mod:`netsurgeon.progress`) counting the bytes the saves in this block write,
    up to about the size of ``network``'s values."""
    from netsurgeon.formats._atomic import reporting
    from netsurgeon.progress import bar

    seen: set[int] = set()
    total = 0
    for node in network.nodes:
        value = node.value
        if value is not None and id(value) not in seen:
            seen.add(id(value))
            total += int(getattr(value, "nbytes", 0))
    with bar(progress, f"write {os.path.basename(os.fspath(path))}", total or None,
             "B") as shown, reporting(shown):
        yield
