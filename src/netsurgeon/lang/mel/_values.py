"""MEL argument values: formats, copy modes, property names, indices, numbers and booleans.

Keyword values and property names follow CNTK's abbreviation rule (``copy=val``,
``format=nat``, ``SetProperty(x, crit, true)``), checked in CNTK's order (ndl-mel.md §C.8).
"""

from __future__ import annotations

import os
from typing import Any

from netsurgeon.errors import EditError, ParseError, close_matches
from netsurgeon.lang import config
from netsurgeon.lang.mel._commands import abbreviates, match_keyword
from netsurgeon.ops._convert import parse_bool

__all__ = ["PROPERTIES", "SUBTREE_PROPERTIES", "FORMAT_KEYWORDS", "canonical_format",
           "default_format",
           "property_effect", "copy_mode", "input_index", "to_bool", "to_float"]

# SetProperty names in CNTK's matching order (§C.8): (spellings, effect)
PROPERTIES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("finalCriterion", "Criteria"), "criterion"),
    (("eval",), "evaluation"),
    (("needGradient", "needsGradient", "computeGradient"), "needGradient"),
    (("criterion",), "criterion"),
    (("evaluation",), "evaluation"),
    (("feature",), "feature"),
    (("label",), "label"),
    (("learningRateMultiplier",), "learningRateMultiplier"),
    (("output",), "output"),
    (("recurrent",), "recurrent"),
    (("freezeParameters",), "freezeParameters"),
)
SUBTREE_PROPERTIES = ("needGradient", "learningRateMultiplier")

FORMAT_KEYWORDS = ("cntk", "cntkv2", "cntk_legacy_no_tensorlib", "native", "onnx")
_FORMAT_OF_KEYWORD = {"cntkv2": "cntk-v2", "native": "native", "onnx": "onnx"}


def canonical_format(value: str | None) -> str | None:
    """``cntk``/``cntk-v2``/``native``/``onnx`` from a ``format=`` value (CNTK's abbreviation
    rule), None if absent."""
    if value is None or value == "":
        return None
    word = match_keyword(value, FORMAT_KEYWORDS)
    if word is None:
        raise EditError(f"Invalid optional parameter value '{value}', valid values are "
                        "format=(cntk|cntkv2|native|onnx)")
    return _FORMAT_OF_KEYWORD.get(word, "cntk")


def default_format(path: str | os.PathLike[str]) -> str:
    """The format SaveModel writes without ``format=``: CNTK's MEL always wrote v1 files, so
    ``.model`` stays v1 here (``format=cntkv2`` writes v2)."""
    from netsurgeon import formats

    fmt = formats.format_for_path(path)
    return "cntk" if fmt == "cntk-v2" else fmt


def property_effect(word: str) -> str:
    """What a SetProperty name (any alias, abbreviated) does: a group name or a setting."""
    for spellings, effect in PROPERTIES:
        if any(abbreviates(word, s) for s in spellings):
            return effect
    names = [s for spellings, _ in PROPERTIES for s in spellings]
    raise EditError(f"Invalid property, '{word}', is not supported",
                    hint=close_matches(word, names) or "properties: " + ", ".join(names))


def copy_mode(value: str) -> str:
    """CopyNode's ``copyFlag`` value (abbreviations allowed): ``all`` or ``value``."""
    word = match_keyword(str(value), ("all", "value"))
    if word is None:
        raise EditError(f"Invalid optional parameter value '{value}' in CopyNode(), valid values "
                        "are copyFlag=(all|value)")
    return word


def input_index(value: int | str) -> int:
    """SetInput's 0-based input number."""
    try:
        return int(str(value).strip())
    except ValueError:
        raise EditError(f"the input index must be a 0-based integer, not '{value}'") from None


def to_bool(value: Any, what: str) -> bool:
    """A Python bool, or a boolean text as CNTK reads it (A.6: ``t true T True TRUE 1``,
    ``f false F False FALSE 0`` or empty; case matters)."""
    if isinstance(value, bool):
        return value
    found = parse_bool(str(value))
    if found is None:
        raise EditError(f"boolean argument expected for {what}, got '{value}' (use true or "
                        "false; CNTK's spellings are case-sensitive)")
    return found


def to_float(value: Any, what: str) -> float:
    """A number, or its text as CNTK reads it (``strtod``; ``1#INF`` is infinity)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return config.to_float(str(value), what)
    except ParseError:
        raise EditError(f"{what} needs a number, not '{value}'") from None
