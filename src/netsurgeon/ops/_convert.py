"""Conversions between CNTK's conventions and the registry's attribute conventions.

Attribute conventions (docs/ops.md, "Conventions"):

* **Shapes and per-axis lists** (kernel shape, strides, pads, sharing flags) are numpy order:
  the reverse of the CNTK order in which files and NDL/BrainScript write them.
* **Axis numbers** are CNTK axis numbers negated: CNTK's 1-based axis ``k`` (the k-th CNTK
  dimension) is numpy axis ``-k`` of the sample shape. Special CNTK codes are negated too
  (ReduceElements' 0/-1/-2/-3 become 0/1/2/3), so the conversion is always ``-x`` both ways.
* **Enums** stored as integers in files are strings here (``pool_kind='max'``,
  ``image_layout='CHW'``); the ``*_CODES`` tables below give the file integers.

These helpers are also what the language layers and file codecs use, so every layer converts
the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from netsurgeon._sentinel import Sentinel
from netsurgeon.errors import ArgumentError
from netsurgeon.ops._spec import Form, FunctionSpec, NodeRecipe, OpSpec, Param

__all__ = [
    "np_shape",
    "cntk_shape",
    "np_axis",
    "np_bools",
    "as_bool",
    "parse_bool",
    "layout_name",
    "pool_kind_name",
    "POOL_KIND_CODES",
    "IMAGE_LAYOUT_CODES",
    "NodeOption",
    "node_function",
    "VARIADIC_INPUTS",
]

#: file integer of each pooling kind (convolution-base block, ROIPooling)
POOL_KIND_CODES: dict[str, int] = {"none": 0, "max": 1, "average": 2}
#: file integer of each image layout (0 = HWC legacy, 1 = CHW/cuDNN)
IMAGE_LAYOUT_CODES: dict[str, int] = {"HWC": 0, "CHW": 1}


def _seq(value: Any) -> list[Any]:
    """A list from a scalar, a sequence (one level of nesting flattened) or the raw text of a
    config array (``{true, true, false}``, ``(3:3)``, ``[1 2]``) as NDL options may pass it."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip().strip('"')
        if text[:1] in "({[" and text[-1:] in ")}]":
            text = text[1:-1]
        parts = [p for p in re.split(r"[,:\s]+", text) if p]
        return parts if len(parts) != 1 else [parts[0]]
    if isinstance(value, (list, tuple)):
        out: list[Any] = []
        for v in value:  # flatten one level of nesting (BrainScript (3:3):5 arrays)
            if isinstance(v, (list, tuple)):
                out.extend(v)
            else:
                out.append(v)
        return out
    return [value]


def np_shape(value: Any) -> tuple[int, ...]:
    """A CNTK-order dimension list (or one scalar) as a numpy-order tuple of ints."""
    return tuple(int(v) for v in reversed(_seq(value)))


def cntk_shape(shape: Iterable[int]) -> tuple[int, ...]:
    """A numpy-order shape in CNTK order (the inverse of :func:`np_shape`)."""
    return tuple(int(d) for d in reversed(tuple(shape)))


def np_axis(value: Any) -> int:
    """A CNTK axis number (1-based; special codes <= 0) as the registry's axis: ``-value``."""
    return -int(value)


#: CNTK's boolean texts (ndl-mel.md A.6): case matters, the empty string is false
TRUE_TEXTS = frozenset({"t", "true", "T", "True", "TRUE", "1"})
FALSE_TEXTS = frozenset({"f", "false", "F", "False", "FALSE", "0", ""})


def parse_bool(text: str) -> bool | None:
    """CNTK's boolean conversion of a text (surrounding blanks and quotes ignored): True,
    False, or None when the text is not a boolean. The one boolean parser of netsurgeon."""
    s = text.strip().strip('"')
    if s in TRUE_TEXTS:
        return True
    if s in FALSE_TEXTS:
        return False
    return None


def as_bool(value: Any) -> bool:
    """A bool from a bool, a number or a CNTK boolean text. Raises ArgumentError otherwise."""
    if isinstance(value, str):
        found = parse_bool(value)
        if found is None:
            raise ArgumentError(f"boolean argument expected, not {value!r} (use true or false)")
        return found
    return bool(value)


def np_bools(value: Any) -> tuple[bool, ...]:
    """A CNTK-order list of flags (or one flag) as a numpy-order tuple of bools."""
    return tuple(as_bool(v) for v in reversed(_seq(value)))


def layout_name(value: Any) -> str:
    """Canonical image layout: ``CHW`` (also ``cudnn``, file code 1) or ``HWC`` (``legacy``, 0).

    Case-sensitive as CNTK's NDL was; raises ValueError on anything else.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        for name, code in IMAGE_LAYOUT_CODES.items():
            if code == value:
                return name
        raise ArgumentError(f"image layout code must be 0 (HWC) or 1 (CHW), not {value}")
    text = str(value).strip('"')
    if text in ("CHW", "cudnn"):
        return "CHW"
    if text in ("HWC", "legacy"):
        return "HWC"
    raise ArgumentError(f"imageLayout must be 'CHW', 'cudnn', 'HWC' or 'legacy', not {text!r}")


def pool_kind_name(value: Any) -> str:
    """Canonical pooling kind ``none``/``max``/``average`` from text (CI) or the file code."""
    if isinstance(value, int) and not isinstance(value, bool):
        for name, code in POOL_KIND_CODES.items():
            if code == value:
                return name
        raise ArgumentError(f"pooling kind code must be 0, 1 or 2, not {value}")
    text = str(value).strip('"').lower()
    if text not in POOL_KIND_CODES:
        raise ArgumentError(f"pooling kind must be 'max', 'average' or 'none', not {value!r}")
    return text


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "int": int,
    "float": float,
    "bool": as_bool,
    "str": lambda v: "" if v is None else str(v),
    "shape": np_shape,
    "axis": np_axis,
    "axes": lambda v: tuple(np_axis(a) for a in _seq(v)),
    "bools": np_bools,
    "layout": layout_name,
    "pool": pool_kind_name,
    "ints": lambda v: tuple(int(a) for a in _seq(v)),
}


class NodeOption:
    """One config name a CNTK node class reads in BrainScript's ``new ComputationNode``.

    ``convert`` is a key of the converter table (``shape`` reverses a CNTK dimension list,
    ``axis`` negates a CNTK axis number, ``layout`` canonicalises an image layout) or a
    callable. The converted value lands in attribute ``attr``.
    """

    __slots__ = ("name", "attr", "convert", "default", "aliases")

    def __init__(self, name: str, attr: str, convert: str | Callable[[Any], Any],
                 default: Any = None, aliases: tuple[str, ...] = ()) -> None:
        self.name = name
        self.attr = attr
        self.convert = _CONVERTERS[convert] if isinstance(convert, str) else convert
        self.default = default
        self.aliases = aliases


#: the single form of a ``node`` function: every positional value is a node input
VARIADIC_INPUTS = Form((Param("inputs", "inputs", ()),))


def node_function(op: OpSpec | str, options: Iterable[NodeOption] = (), *,
                  aliases: tuple[str, ...] = (),
                  finish: Callable[[NodeRecipe, dict[str, Any]], None] | None = None,
                  ) -> FunctionSpec:
    """The ``node``-language function of an op: BrainScript's ``new ComputationNode``.

    Bind it with the node inputs as positionals and the config record's values as options
    (names as CNTK reads them, matched case-insensitively); options the op does not read are
    ignored. Only options actually given are converted into attributes, the others keep the
    op's defaults. ``finish(recipe, bound)`` may set leaf shapes, init, extra fields.
    """
    op_name = op if isinstance(op, str) else op.name
    table: Mapping[str, NodeOption] = {o.name: o for o in options}
    params = {o.name: Param(o.name, "any", REQUIRED_ABSENT, aliases=o.aliases)
              for o in table.values()}

    def make(fn: FunctionSpec, bound: dict[str, Any], form: Form) -> NodeRecipe:
        recipe = NodeRecipe(op=op_name, inputs=list(bound.get("inputs") or ()))
        for key, value in bound.items():
            opt = table.get(key)
            if opt is None or value is REQUIRED_ABSENT:
                continue
            try:
                recipe.attrs[opt.attr] = opt.convert(value)
            except (TypeError, ValueError, ArgumentError) as exc:
                text = exc.message if isinstance(exc, ArgumentError) else str(exc)
                raise ArgumentError(f"{op_name}: option '{opt.name}': {text}") from None
        if finish is not None:
            finish(recipe, {k: v for k, v in bound.items() if v is not REQUIRED_ABSENT})
        return recipe

    return FunctionSpec(op_name, op_name, (VARIADIC_INPUTS,), params, aliases, make,
                        languages=frozenset({"node"}),
                        doc=f"new ComputationNode [operation='{op_name}'; inputs=...]")


#: default of node options: the option was not given (the attribute keeps its default)
REQUIRED_ABSENT: Any = Sentinel("ABSENT")
