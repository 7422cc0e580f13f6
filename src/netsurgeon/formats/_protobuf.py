"""Reading protobuf varints by hand: what the format sniffers and the CNTK v2 error scanner
need before (or instead of) a real protobuf parse."""

from __future__ import annotations

__all__ = ["read_varint", "MAX_VARINT_BYTES"]

MAX_VARINT_BYTES = 10


def read_varint(data: bytes, pos: int, end: int | None = None) -> tuple[int, int] | None:
    """(value, next position) of the varint at ``pos``, or None when it runs past ``end``
    (default: the data's end) or is longer than 10 bytes."""
    end = len(data) if end is None else end
    value = shift = 0
    while pos < end and shift < 7 * MAX_VARINT_BYTES:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    return None
