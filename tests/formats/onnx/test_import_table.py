"""docs/onnx-import.md's op table and the importer's converter table name the same ONNX ops."""

from __future__ import annotations

import re
from pathlib import Path

import onnx.defs

from netsurgeon.formats.onnx.importer_fold import FOLD
from netsurgeon.formats.onnx.importer_ops import CONVERTERS

DOC = Path(__file__).resolve().parents[3] / "docs" / "onnx-import.md"


def _documented() -> set[str]:
    """ONNX op types in the first column of the op table."""
    text = DOC.read_text()
    table = text[text.index("## op_type → netsurgeon"):text.index("**New registry op**")]
    names: set[str] = set()
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith("| ONNX"):
            first = line.split("|")[1]
            names |= {w for w in re.findall(r"\b[A-Z][A-Za-z0-9]+\b", first)
                      if onnx.defs.has(w)}
    return names


def test_every_converter_is_documented():
    assert set(CONVERTERS) - _documented() == set()


def test_every_documented_op_has_a_converter_or_folds():
    assert _documented() - set(CONVERTERS) - set(FOLD) - {"Constant", "Shape"} == set()
