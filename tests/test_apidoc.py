"""docs/api.md is the Python API reference generated from the docstrings, and current."""

from __future__ import annotations

from pathlib import Path

import netsurgeon
from netsurgeon._apidoc import render_api

ROOT = Path(__file__).resolve().parents[1]


def test_api_reference_is_current_and_complete():
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert text == render_api(), "regenerate: python -m netsurgeon._apidoc > docs/api.md"
    for name in netsurgeon.__all__:
        assert f"## `netsurgeon.{name}" in text
    assert "(no docstring)" not in text
