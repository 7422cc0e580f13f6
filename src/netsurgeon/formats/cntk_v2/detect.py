"""Telling a CNTK v2 model file from its first bytes (cntk-v2-format.md §1), without protobuf.

A plain v2 file is one ``CNTK.proto.Dictionary``: field 1 (varint ``version``, byte ``0x08``)
then field 2 (``0x12``), a map entry whose own first field is its key (``0x0a <len> <key>``,
a key such as ``version``, ``type``, ``uid``, ``root``). ONNX models also start with ``0x08``,
but their field 2 is the bare producer-name string (``CNTK``, ``pytorch``), never ``0x0a``.
The large-file variant starts with the magic ``ktnc`` (u32 LE 0x636E746B). A CNTK v1 file
starts with ``B\\0C\\0N\\0`` and a netsurgeon ``.nsm`` with a little-endian header length, so
neither passes. 32 bytes suffice.
"""

from __future__ import annotations

__all__ = ["looks_v2", "LARGE_MAGIC", "HEAD_BYTES"]

LARGE_MAGIC = b"ktnc"
HEAD_BYTES = 32


def _varint(data: bytes, at: int) -> tuple[int, int] | None:
    value = shift = 0
    while at < len(data) and shift < 64:
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if not byte & 0x80:
            return value, at
        shift += 7
    return None


def looks_v2(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts a CNTK v2 model file."""
    head = bytes(head)
    if head[:4] == LARGE_MAGIC and len(head) >= 8:
        return True
    at = 0
    if head[:1] == b"\x08":  # Dictionary.version
        found = _varint(head, 1)
        if found is None or found[0] > 64:
            return False
        at = found[1]
    if head[at:at + 1] != b"\x12":
        return False
    entry = _varint(head, at + 1)
    if entry is None or head[entry[1]:entry[1] + 1] != b"\x0a":
        return False
    key = _varint(head, entry[1] + 1)
    if key is None or not 0 < key[0] <= entry[0]:
        return False
    text = head[key[1]:key[1] + min(key[0], 8)]
    return bool(text) and all(0x20 < c < 0x7F for c in text)
