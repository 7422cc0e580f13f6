"""Helpers for the BrainScript tests."""

from __future__ import annotations

import pytest

from netsurgeon.lang.brainscript import build_from_text


@pytest.fixture
def build():
    """build(text) -> Network, the members of a BrainScriptNetworkBuilder block."""
    return build_from_text


@pytest.fixture(scope="session")
def mc_path(cntk_dir):
    return str(cntk_dir / "models" / "MC.dnn")


@pytest.fixture(scope="session")
def slu_path(cntk_dir):
    return str(cntk_dir / "models" / "slu.forward.nobn.cmf")
