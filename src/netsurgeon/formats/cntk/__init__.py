"""CNTK v1 binary model files (``.dnn``, ``.cmf``, ``.model``): read and write.

* :func:`read` maps the file and returns a validated-ready :class:`~netsurgeon.graph.Network`
  (parameter values are read-only views of the mapping).
* :func:`write` stores a network atomically: a network read from a CNTK file at its own
  version (byte-identical when unedited), anything else at :data:`DEFAULT_VERSION`.
* :func:`is_cntk_file` tells a v1 file from its first bytes.

The byte layout is ``../shared/spec/cntk-model-format.md``. Per-node payloads are the
``cntk_v1`` registry layer (:data:`CNTK_V1`, entries :class:`PayloadCodec`, in
:mod:`netsurgeon.formats.cntk.payloads`), attached to the op registry on import; what a file
stored that is not an op attribute is kept in ``node.file_fields`` under ``cntk_v1.<field>``.
"""

from __future__ import annotations

from netsurgeon.formats.cntk._binary import MAGIC, CntkFormatError
from netsurgeon.formats.cntk._codec import PayloadCodec
from netsurgeon.formats.cntk._layer import CNTK_V1
from netsurgeon.formats.cntk._reader import MAX_VERSION, read, read_buffer
from netsurgeon.formats.cntk._writer import DEFAULT_VERSION, encode, write

__all__ = ["read", "read_buffer", "write", "encode", "is_cntk_file", "CntkFormatError",
           "MAGIC", "DEFAULT_VERSION", "MAX_VERSION", "CNTK_V1", "PayloadCodec"]


def is_cntk_file(first_bytes: bytes) -> bool:
    """True if ``first_bytes`` (at least 8) start a CNTK v1 model file."""
    return bytes(first_bytes[:8]) == MAGIC
