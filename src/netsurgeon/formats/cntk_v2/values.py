"""The Python values of a CNTK v2 Dictionary (cntk-v2-format.md §2.2): the types that say
which ``DictionaryValue`` type a value has, so that encoding writes what CNTK wants.

Kept apart from :mod:`.wire` so that the registry layer can build attributes without
importing protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from netsurgeon.errors import FormatError

__all__ = ["Int", "SizeT", "Float", "Shape", "Axis", "Tensor", "Model", "Value", "U64"]

U64 = 2**64


class Int(int):
    """A ``DictionaryValue`` of type Int (C++ ``int``, int32): e.g. ``inferInputRankToMap``.

    Arithmetic gives plain ints; wrap the result again to keep the type."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Int({int(self)})"


class SizeT(int):
    """A ``DictionaryValue`` of type SizeT (C++ ``size_t``, uint64): enums, counts, versions.

    A plain ``int`` is encoded as SizeT too; the type exists so decoded values say so."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"SizeT({int(self)})"


class Float(float):
    """A ``DictionaryValue`` of type Float (float32; a plain ``float`` is encoded as Double).

    The value is a float32 value held as a Python float; encoding rounds to float32."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Float({float(self)!r})"


class Shape(tuple):
    """An ``NDShape``: dimensions in CNTK order (first = fastest; numpy order is reversed).

    A tuple subclass, so it compares equal to a tuple of the same dims but stays apart from
    a Vector (``list``/``tuple``) when encoding. Dims are uint64 and may be the special
    values below (§2.3)."""

    INFERRED: ClassVar[int] = U64 - 1  # InferredDimension
    UNKNOWN_DIM: ClassVar[int] = U64 - 2  # the only dim of NDShape::Unknown()
    FREE: ClassVar[int] = U64 - 3  # FreeDimension

    __slots__ = ()

    def __new__(cls, dims: Any = ()) -> Shape:
        return super().__new__(cls, (int(d) for d in dims))

    @classmethod
    def from_numpy(cls, shape: tuple[int, ...]) -> Shape:
        """The NDShape of an array of numpy shape ``shape`` (the dims reversed)."""
        return cls(reversed(shape))

    @property
    def numpy(self) -> tuple[int, ...]:
        """The dims in numpy order (reversed)."""
        return tuple(reversed(self))

    @property
    def is_unknown(self) -> bool:
        """True for ``NDShape::Unknown()``, the rank-1 shape ``[2^64-2]``."""
        return len(self) == 1 and self[0] == self.UNKNOWN_DIM

    def __repr__(self) -> str:
        return f"Shape({list(self)})"


@dataclass(frozen=True)
class Axis:
    """A CNTK ``Axis`` (§2.4): a static axis index in CNTK order, or a dynamic axis.

    ``static_index`` is ``DYNAMIC`` (INT32_MAX) for a dynamic axis, which ``name`` and
    ``ordered`` (true for sequence axes, false for the batch axis) identify; the values just
    below it are the special axes. Negative indices count from the end (CNTK order)."""

    static_index: int
    name: str = ""
    ordered: bool = False

    DYNAMIC: ClassVar[int] = 2147483647
    ALL_STATIC: ClassVar[int] = 2147483646
    UNKNOWN: ClassVar[int] = 2147483645
    END_STATIC: ClassVar[int] = 2147483644
    ALL: ClassVar[int] = 2147483643

    @property
    def is_dynamic(self) -> bool:
        """True for a dynamic (sequence or batch) axis."""
        return self.static_index == self.DYNAMIC

    @property
    def is_static(self) -> bool:
        """True for an ordinary static axis (not dynamic and not one of the special ones)."""
        return self.static_index < self.ALL

    @classmethod
    def static(cls, index: int) -> Axis:
        """Static axis ``index`` (CNTK order) with the name CNTK writes for it."""
        return cls(index, f"staticAxisIdx={index}")

    @classmethod
    def dynamic(cls, name: str, ordered: bool = True) -> Axis:
        """A dynamic axis; CNTK's defaults are ``defaultDynamicAxis`` (ordered) and
        ``defaultBatchAxis`` (not ordered)."""
        return cls(cls.DYNAMIC, name, ordered)


@dataclass(eq=False)
class Tensor:
    """An ``NDArrayView`` (§5): ``data_type`` code, ``shape`` in CNTK order, and ``array`` in
    numpy order (``values.reshape(reversed(shape))``, C order), of dtype float32 (Float),
    float64 (Double), float16 (Float16), int8 (Int8) or int16 (Int16).

    Decoded float arrays of 4 KiB and more are read-only views of the input buffer, at
    whatever alignment the file gives them (as the v1 reader's are); copy one to change it.
    Equality is exact (bitwise) on the values."""

    data_type: int
    shape: Shape
    array: np.ndarray

    FLOAT: ClassVar[int] = 1
    DOUBLE: ClassVar[int] = 2
    FLOAT16: ClassVar[int] = 4
    INT8: ClassVar[int] = 5
    INT16: ClassVar[int] = 6
    DTYPES: ClassVar[dict[int, np.dtype]] = {
        1: np.dtype("<f4"), 2: np.dtype("<f8"), 4: np.dtype("<f2"),
        5: np.dtype("i1"), 6: np.dtype("<i2"),
    }

    @classmethod
    def of(cls, array: Any) -> Tensor:
        """The tensor of a numpy array (its dtype picks the data type)."""
        a = np.asarray(array)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        for code, dtype in cls.DTYPES.items():
            if a.dtype == dtype:
                return cls(code, Shape.from_numpy(a.shape), a)
        raise FormatError(f"a CNTK tensor cannot hold dtype {a.dtype}; use float32, float64, "
                          "float16, int8 or int16")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tensor):
            return NotImplemented
        a, b = np.asarray(self.array), np.asarray(other.array)
        return (self.data_type == other.data_type and tuple(self.shape) == tuple(other.shape)
                and a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes())

    __hash__ = None  # type: ignore[assignment]


Value = (bool | Int | SizeT | int | Float | float | str | Shape | Axis | list | dict | Tensor
         | None)


@dataclass
class Model:
    """A decoded file: the top Dictionary (wire order), its ``version`` (1 before CNTK 2.0
    GA, 2 from then on) and whether it was the ``large`` variant: what ``encode`` needs to
    write the same bytes again."""

    top: dict[str, Any]
    version: int = 2
    large: bool = False
