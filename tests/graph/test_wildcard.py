"""Every row of ndl-mel.md §C.5's pattern rules."""

from __future__ import annotations

import numpy as np

from netsurgeon.graph import Network, Pattern, map_name, split_model_prefix

NAMES = ["L1.BFF.W", "L1.BFF.B", "L1.BFF.FF.T", "L1.BFF.FF.P", "L1.RL", "L10.RL", "CE.BFF.FF.T",
         "CE.F", "aba", "features"]


def test_exact_is_case_insensitive():
    assert Pattern("l1.rl").filter(NAMES) == ["L1.RL"]


def test_prefix_star():
    assert Pattern("L1.*").filter(NAMES) == ["L1.BFF.W", "L1.BFF.B", "L1.BFF.FF.T",
                                             "L1.BFF.FF.P", "L1.RL"]


def test_star_suffix():
    assert Pattern("*.T").filter(NAMES) == ["L1.BFF.FF.T", "CE.BFF.FF.T"]


def test_prefix_star_suffix():
    assert Pattern("CE.*.T").filter(NAMES) == ["CE.BFF.FF.T"]
    assert Pattern("L1*RL").filter(NAMES) == ["L1.RL", "L10.RL"]


def test_wildcard_match_is_case_sensitive():
    assert Pattern("l1.*").filter(NAMES) == []


def test_only_first_star_is_special():
    assert Pattern("L1.*.*").filter(NAMES + ["L1.x.*"]) == ["L1.x.*"]


def test_head_and_tail_may_overlap():
    assert Pattern("ab*ba").filter(NAMES) == ["aba"]


def test_no_wraparound_quirk():
    # CNTK also matched names one shorter than the tail; netsurgeon does not.
    assert Pattern("*.W").filter(["W", "x"]) == []


def test_model_prefix():
    models = ["model1", "m2"]
    assert split_model_prefix("model1.L1.*", models) == ("model1", "L1.*")
    assert split_model_prefix("MODEL1", models) == ("model1", "*")
    assert split_model_prefix("model1.*", models) == ("model1", "*")
    assert split_model_prefix("model1*", models) == ("model1", "*")
    assert split_model_prefix("m2*.W", models) == ("m2", ".W")  # CNTK quirk: literal .W
    assert split_model_prefix("L1.W", models) == (None, "L1.W")


def test_generate_names_mapping():
    assert map_name(Pattern("L1.*"), Pattern("L2.*"), "L1.BFF.W") == "L2.BFF.W"
    assert map_name(Pattern("CE.*.T"), Pattern("X.*.T2"), "CE.BFF.FF.T") == "X.BFF.FF.T2"
    assert map_name(Pattern("L1.*"), Pattern("L2"), "L1.BFF.W") == "L2BFF.W"
    assert map_name(Pattern("a"), Pattern("b"), "a") == "b"


def test_network_match_returns_cntk_name_order():
    net = Network()
    for name in ("b.W", "B.a", "a.x"):
        net.add_parameter(name, np.zeros(1, np.float32))
    assert [n.name for n in net.match("*")] == ["a.x", "B.a", "b.W"]
    assert [n.name for n in net.match("b.w")] == ["b.W"]
