"""Checked JSON values of the native format: what a model file's graph JSON may hold.

Everything from a file is untrusted: :func:`decode` rebuilds attribute, file-field and
metadata values (tuples, bytes, numeric arrays, non-finite floats are tagged) with a nesting
limit and a numeric dtype whitelist, and the small checkers (:func:`ints`, :func:`strs`,
:func:`shape_of`, ...) raise :class:`Bad` naming the key path of what is malformed; the format
module turns that into a FormatError naming the file.
"""

from __future__ import annotations

import base64
import math
from typing import Any

import numpy as np

__all__ = ["Bad", "kind_of", "get", "need_type", "ints", "strs", "shape_of", "number", "encode",
           "decode", "MAX_DEPTH", "MAX_RANK", "MAX_DIM", "ARRAY_DTYPES"]

MAX_DEPTH = 100  # nesting of a decoded value (attributes, file fields, metadata)
MAX_RANK = 64  # numpy's limit on dimensions
MAX_DIM = 1 << 62  # a dimension, and the product of a tensor's dimensions
#: dtypes an ``__array__`` value (an attribute or metadata array) may have
ARRAY_DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                 "uint64", "float16", "float32", "float64")


# ---- checks of untrusted structures -----------------------------------------------------------
class Bad(Exception):
    """A malformed value in a file: ``key`` is its path (``extra[3][1].attrs.pad``), ``why``
    what is wrong with it. Turned into a FormatError naming the file."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(key, why)
        self.key, self.why = key, why

    @property
    def shown(self) -> str:
        """The key as errors show it (a path nested far is shortened in the middle)."""
        key = self.key
        return key if len(key) <= 100 else f"{key[:60]}...{key[-36:]}"

    def under(self, parent: str | int) -> Bad:
        """This error with ``parent`` prefixed to its key."""
        step = f"[{parent}]" if isinstance(parent, int) else str(parent)
        if not self.key:
            self.key = step
        else:
            self.key = step + self.key if self.key.startswith("[") else f"{step}.{self.key}"
        return self


def kind_of(value: Any) -> str:
    """How a JSON value is called in errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return f"the number {value!r:.40}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return "a list" if isinstance(value, list) else "an object"


def get(doc: dict[str, Any], key: str) -> Any:
    if key not in doc:
        raise Bad(key, "is missing")
    return doc[key]


def need_type(value: Any, kind: type, key: str, what: str) -> Any:
    if type(value) is not kind:
        raise Bad(key, f"must be {what}, not {kind_of(value)}")
    return value


def ints(values: Any, key: str, low: int, high: int) -> list[int]:
    """``values`` if it is a list of integers in ``[low, high)``; else Bad."""
    need_type(values, list, key, "a list of integers")
    if values and not (set(map(type, values)) <= {int} and low <= min(values)
                       and max(values) < high):
        i, bad = next((i, v) for i, v in enumerate(values)
                      if type(v) is not int or not low <= v < high)
        if type(bad) is not int:
            raise Bad(f"{key}[{i}]", f"must be an integer, not {kind_of(bad)}")
        if bad < low:
            raise Bad(f"{key}[{i}]", f"is {bad}; the least value allowed is {low}")
        raise Bad(f"{key}[{i}]", f"is {bad}; the greatest value allowed is {high - 1}")
    return values


def strs(values: Any, key: str) -> list[str]:
    """``values`` if it is a list of strings; else Bad."""
    need_type(values, list, key, "a list of strings")
    if values and not set(map(type, values)) <= {str}:
        i, bad = next((i, v) for i, v in enumerate(values) if type(v) is not str)
        raise Bad(f"{key}[{i}]", f"must be a string, not {kind_of(bad)}")
    return values


def shape_of(value: Any, key: str) -> tuple[int, ...]:
    """A shape: a list of at most 64 non-negative integers (numpy's rank limit)."""
    dims = ints(value, key, 0, MAX_DIM)
    if len(dims) > MAX_RANK:
        raise Bad(key, f"has {len(dims)} dimensions; at most {MAX_RANK} are possible")
    return tuple(dims)


def number(value: Any, key: str) -> float:
    if type(value) not in (int, float):
        raise Bad(key, f"must be a number, not {kind_of(value)}")
    return float(value)


# ---- JSON encoding of attribute, file-field and metadata values --------------------------------
def encode(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON data (tuples, bytes, arrays and non-finite floats tagged); raises Bad
    for what :func:`decode` would refuse (non-numeric arrays, nesting beyond the limit)."""
    if depth > MAX_DEPTH:
        raise Bad("", f"is nested more than {MAX_DEPTH} levels deep")
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, depth + 1) for v in value]}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): encode(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, np.generic):
        return encode(value.item(), depth)
    if isinstance(value, np.ndarray):
        if str(value.dtype) not in ARRAY_DTYPES:
            raise Bad("", f"is an array of dtype {value.dtype}; only numeric arrays "
                       f"({', '.join(ARRAY_DTYPES)}) can be saved")
        if value.ndim > MAX_DEPTH - depth:
            raise Bad("", f"is an array of {value.ndim} dimensions, nested too deeply")
        return {"__array__": encode(value.tolist(), depth + 1), "dtype": str(value.dtype)}
    if isinstance(value, float) and not math.isfinite(value):
        return {"__float__": repr(value)}
    return value


_PLAIN = frozenset({str, int, float, bool, type(None)})


def decode(value: Any, depth: int = 0) -> Any:
    """The value :func:`encode` made, checked: raises Bad (with the key path) for a
    malformed tag, a non-numeric ``__array__`` dtype or nesting beyond the limit."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if depth >= MAX_DEPTH:
        raise Bad("", f"is nested more than {MAX_DEPTH} levels deep")
    if kind is list:
        out = list(value)
        for i, v in enumerate(value):
            if type(v) not in _PLAIN:
                try:
                    out[i] = decode(v, depth + 1)
                except Bad as bad:
                    raise bad.under(i) from None
        return out
    if kind is not dict:
        raise Bad("", f"holds a {kind.__name__}, which JSON does not")
    if len(value) == 1 and next(iter(value)) in _TAGS:
        return _tagged(*next(iter(value.items())), depth)
    if len(value) == 2 and "__array__" in value and "dtype" in value:
        return _array(value, depth)
    result = {}
    for k, v in value.items():
        try:
            result[k] = v if type(v) in _PLAIN else decode(v, depth + 1)
        except Bad as bad:
            raise bad.under(k) from None
    return result


_TAGS = ("__tuple__", "__bytes__", "__float__")


def _tagged(tag: str, body: Any, depth: int) -> Any:
    try:
        if tag == "__tuple__":
            return tuple(decode(need_type(body, list, "", "a list"), depth + 1))
        text = need_type(body, str, "", "a string")
        if tag == "__bytes__":
            try:
                return base64.b64decode(text, validate=True)
            except ValueError:
                raise Bad("", "is not base64 text") from None
        try:
            return float(text)
        except ValueError:
            raise Bad("", "is not a number") from None
    except Bad as bad:
        raise bad.under(tag) from None


def _array(value: dict[str, Any], depth: int) -> np.ndarray:
    """``{"__array__": nested lists of numbers, "dtype": numeric dtype}`` as an array; its
    size is bounded by the JSON it came from (at most 8 bytes per number written)."""
    dtype = value["dtype"]
    if type(dtype) is not str or dtype not in ARRAY_DTYPES:
        raise Bad("dtype", f"is {kind_of(dtype)}, not a numeric dtype "
                   f"({', '.join(ARRAY_DTYPES)})")
    try:
        data = decode(value["__array__"], depth + 1)
    except Bad as bad:
        raise bad.under("__array__") from None
    pending = [data]
    while pending:
        item = pending.pop()
        if type(item) is list:
            pending.extend(item)
        elif type(item) not in (int, float, bool):
            raise Bad("__array__", f"must hold only numbers, not {kind_of(item)}")
    try:
        with np.errstate(all="ignore"):
            return np.array(data, dtype=dtype)
    except (ValueError, TypeError, OverflowError) as exc:
        raise Bad("__array__", f"is not a {dtype} array: {str(exc)[:80]}") from None
