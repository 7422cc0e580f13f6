"""Every row of the seed's wildcard table, and §C.5's finer points, through Editor.select/MEL."""

from __future__ import annotations

import pytest
from mel_helpers import rbff_network

from netsurgeon.errors import EditError
from netsurgeon.lang.mel import Editor

L3 = ["L3.BFF.B", "L3.BFF.FF.P", "L3.BFF.FF.T", "L3.BFF.W", "L3.RL"]


@pytest.fixture
def ed():
    e = Editor()
    e.add_model("model1", rbff_network(name="model1"))
    e.add_model("model2", rbff_network(layers=1, name="model2"))
    e.set_default("model1")
    return e


def sel(ed, pattern):
    return [n.name for n in ed.select(pattern)]


@pytest.mark.parametrize("pattern, expected", [
    ("L3.*", L3),                                               # [prefix]*
    ("L3.*.P", ["L3.BFF.FF.P"]),                                # [prefix]*[suffix]
    ("*.W", ["CE.BFF.W", "L1.BFF.W", "L2.BFF.W", "L3.BFF.W"]),  # *[suffix]
    ("model1.L3.*", L3),                                        # [model].[pattern]
    ("L3.RL", ["L3.RL"]), ("l3.rl", ["L3.RL"]),                 # exact names: case-insensitive
    ("L*.RL", ["L1.RL", "L2.RL", "L3.RL"]),
])
def test_seed_pattern_table(ed, pattern, expected):
    assert sel(ed, pattern) == expected


@pytest.mark.parametrize("pattern", ["model2", "model2.*", "model2*", "MODEL2"])
def test_whole_model(ed, pattern):
    assert sel(ed, pattern) == sorted((n.name for n in ed.model("model2").nodes), key=str.lower)


def test_wildcards_case_sensitive_and_only_first_star_special(ed):
    with pytest.raises(EditError, match="no node matches 'l3.\\*'"):
        ed.select("l3.*")
    ed.model().add("a*b", "RectifiedLinear", ("L1.RL",))
    assert sel(ed, "a*b") == ["a*b"]  # the second '*' of 'a**b' would be literal
    with pytest.raises(EditError):  # tail '.BFF.FF.*' has a literal '*'
        ed.select("*.BFF.FF.*")


def test_head_and_tail_may_overlap(ed):
    ed.model().add("aba", "RectifiedLinear", ("L1.RL",))
    assert sel(ed, "ab*ba") == ["aba"]


def test_model_name_shadows_node_prefix(ed):
    ed.model().add("model2.x", "RectifiedLinear", ("L1.RL",))
    assert "model2.x" not in sel(ed, "model2.*")
    assert sel(ed, "model1.model2.x") == ["model2.x"]


def test_close_matches_for_wildcards(ed):
    with pytest.raises(EditError, match=r"did you mean: .*L3\.\*"):
        ed.select("L33.*")
