"""CNTK v1 binary model files (``.dnn``, ``.cmf``, ``.model``): read and write.

* :func:`read` maps the file and returns a validated-ready :class:`~netsurgeon.graph.Network`
  (parameter values are read-only views of the mapping).
* :func:`write` stores a network atomically: a network read from a CNTK file at its own
  version (byte-identical when unedited), anything else at :data:`DEFAULT_VERSION`.
* :func:`is_cntk_file` tells a v1 file from its first bytes.

The byte layout is ``../shared/spec/cntk-model-format.md``; per-node payloads live in
:mod:`netsurgeon.formats.cntk.payloads`, one codec per op, attached to the op registry.
"""

from __future__ import annotations

from netsurgeon.formats.cntk._binary import CntkFormatError
from netsurgeon.formats.cntk._reader import MAX_VERSION, read, read_buffer
from netsurgeon.formats.cntk._writer import DEFAULT_VERSION, encode, write

__all__ = ["read", "read_buffer", "write", "encode", "is_cntk_file", "CntkFormatError",
           "MAGIC", "DEFAULT_VERSION", "MAX_VERSION"]

#: the first 8 bytes of every v1 file: "BCN" in UTF-16LE plus the terminator
MAGIC = "BCN".encode("utf-16-le") + b"\0\0"


def is_cntk_file(first_bytes: bytes) -> bool:
    """True if ``first_bytes`` (at least 8) start a CNTK v1 model file."""
    return bytes(first_bytes[:8]) == MAGIC
