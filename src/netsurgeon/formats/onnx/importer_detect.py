"""Is this an ONNX file? A cheap look at its first bytes (no onnx import).

An ONNX file is a serialized protobuf ``ModelProto`` with no magic number. Every writer we
know of (the onnx and protobuf libraries, CNTK, PyTorch) serializes the fields in field-number
order, so a model starts with field 1, ``ir_version`` (tag ``0x08``, a small varint), followed
by the text fields ``producer_name`` (2), ``producer_version`` (3), ``domain`` (4),
``model_version`` (5), ``doc_string`` (6), then ``graph`` (7) and ``opset_import`` (8).

:func:`looks_onnx` walks the fields the head holds and accepts it when the first is a
plausible ``ir_version``, at least one more field follows, every field number is one of
``ModelProto``'s with its wire type, and the name/version/domain texts are printable. That
tells ONNX from CNTK v2 ``.model`` files (also protobuf starting with ``0x08``: their field 2
is a map entry beginning with byte ``0x0a``, not text), from CNTK v1 files (``B\\0C\\0N``) and
from the native format (a little-endian safetensors header length). 16 bytes suffice for the
files seen so far; 64 are safer.
"""

from __future__ import annotations

from netsurgeon.formats._protobuf import read_varint

__all__ = ["looks_onnx", "HEAD_BYTES"]

#: how many leading bytes a caller should read for :func:`looks_onnx`
HEAD_BYTES = 64

# ModelProto field number -> wire type (0 varint, 2 length-delimited)
_FIELDS = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 21: 2, 25: 2}
_TEXT = {2, 3, 4}
_MAX_IR_VERSION = 64


def _printable(chunk: bytes) -> bool:
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError:  # may be cut in the middle of a character
        try:
            text = chunk[:-3].decode("utf-8") if len(chunk) > 3 else ""
        except UnicodeDecodeError:
            return False
    return all(ch.isprintable() for ch in text)


def looks_onnx(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts like an ONNX ModelProto."""
    pos, fields = 0, 0
    while pos < len(head):
        tag = read_varint(head, pos)
        if tag is None:
            break
        field, wire = tag[0] >> 3, tag[0] & 7
        pos = tag[1]
        if _FIELDS.get(field) != wire or (fields == 0 and field != 1):
            return False
        value = read_varint(head, pos)
        if value is None:
            break
        pos = value[1]
        if field == 1 and not 1 <= value[0] <= _MAX_IR_VERSION:
            return False
        if wire == 2:
            if field in _TEXT and not _printable(head[pos:pos + value[0]]):
                return False
            pos += value[0]
        fields += 1
        if field in (7, 8):  # the graph or the opsets: the header was consistent
            break
    return fields >= 2
