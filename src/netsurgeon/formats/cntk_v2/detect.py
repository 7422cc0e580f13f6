"""Telling a CNTK v2 model file from its first bytes (cntk-v2-format.md §1), without protobuf.

A plain v2 file is one ``CNTK.proto.Dictionary``: field 1 (varint ``version``, byte ``0x08``)
then field 2 (``0x12``), a map entry whose own first field is its key (``0x0a <len> <key>``,
a key such as ``version``, ``type``, ``uid``, ``root``). ONNX models also start with ``0x08``,
but their field 2 is the bare producer-name string (``CNTK``, ``pytorch``), never ``0x0a``.
The large-file variant starts with the magic ``ktnc`` (u32 LE 0x636E746B), a length, then a
Dictionary. A CNTK v1 file starts with ``B\\0C\\0N\\0`` and a netsurgeon ``.nsm`` with a
little-endian header length, so neither passes.
"""

from __future__ import annotations

from netsurgeon.formats._protobuf import read_varint

__all__ = ["looks_v2", "LARGE_MAGIC", "HEAD_BYTES"]

LARGE_MAGIC = b"ktnc"  # u32 LE 0x636E746B, the large-file variant (§8)
HEAD_BYTES = 64  # what looks_v2 reads at most


def looks_v2(head: bytes) -> bool:
    """Whether ``head``, the first bytes of a file, start a CNTK v2 model (§1).

    True for the large-file magic ``ktnc`` followed by a length and a Dictionary start, and
    for a plain Dictionary: an optional field 1 varint (``version``), then a field-2 map
    entry whose own first field is its key (``0a <len> <printable key>``). False for CNTK v1
    (``B\\0C\\0N\\0``), ONNX (field 2 is the bare producer string), netsurgeon ``.nsm`` (a
    u64 header length), empty or short input. It needs at most :data:`HEAD_BYTES` (64)
    bytes; fewer work when the file is shorter or the key starts earlier."""
    head = bytes(head[:HEAD_BYTES])
    if head[:4] == LARGE_MAGIC:
        return len(head) >= 12 and _looks_dictionary(head[8:])
    return _looks_dictionary(head)


def _looks_dictionary(head: bytes) -> bool:
    pos = 0
    if head[:1] == b"\x08":
        found = read_varint(head, 1)
        if found is None or found[0] >= 1 << 32:
            return False
        pos = found[1]
    if head[pos:pos + 1] != b"\x12":
        return False
    entry = read_varint(head, pos + 1)
    if entry is None or head[entry[1]:entry[1] + 1] != b"\x0a":
        return False
    length = entry[0]
    key = read_varint(head, entry[1] + 1)
    if key is None:
        return False
    key_length, pos = key
    if not 0 < key_length < length:
        return False
    key = head[pos:pos + key_length]
    return bool(key) and all(0x20 < c < 0x7F for c in key)
