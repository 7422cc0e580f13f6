"""The graph-level logic under ``summary``, ``diff``, ``extract`` and ``cleanup`` on small
networks: edge cases the real models do not have."""

from __future__ import annotations

import numpy as np
import pytest

from netsurgeon.errors import EditError
from netsurgeon.graph import Network
from netsurgeon.graph.diff import diff_networks, format_diff
from netsurgeon.graph.extract import extract, orphaned_by, prune, unneeded
from netsurgeon.graph.summary import format_summary, summarize


def _mlp() -> Network:
    net = Network("m")
    x = net.add("x", "InputValue", shape=(4,))
    w1 = net.add_parameter("w1", np.ones((4, 3), np.float32))
    h = net.add("h", "Times", inputs=(w1, x))
    w2 = net.add_parameter("w2", np.full((3, 2), 2, np.float32), learning_rate_multiplier=0)
    z = net.add("z", "Times", inputs=(w2, h))
    net.add_to_group("output", z)
    net.validate()
    return net


def test_summary_rows_and_totals():
    s = summarize(_mlp())
    assert [r["name"] for r in s["nodes"]] == ["w2", "w1", "x", "h", "z"]
    assert s["totals"]["parameters"] == 18 and s["totals"]["trainable"] == 12
    assert s["totals"]["frozen"] == 6
    rows = {r["name"]: r for r in s["nodes"]}
    assert rows["w2"]["trainable"] is False and rows["h"]["trainable"] is None
    assert rows["w1"]["shape"] == [4, 3] and rows["w1"]["cntk_shape"] == [3, 4]
    text = format_summary(s)
    assert "parameters: 18 (trainable 12, frozen 6)" in text
    assert "(4, 3)  [3 x 4]" in text


def test_a_self_loop_through_a_delay_is_a_loop():
    net = Network("r")
    x = net.add("x", "InputValue", shape=(2,))
    d = net.add("d", "PastValue", inputs=(None,), shape=(2,))
    s = net.add("s", "Plus", inputs=(x, d))
    net.set_input(d, 0, s)
    net.add_to_group("output", s)
    rows = {r["name"]: r for r in summarize(net)["nodes"]}
    assert rows["d"]["loop"] == rows["s"]["loop"] == 1 and rows["x"]["loop"] is None


def test_diff_disconnected_input_and_equal():
    a, b = _mlp(), _mlp()
    assert diff_networks(a, b)["equal"]
    assert format_diff(diff_networks(a, b)).endswith("no differences\n")
    b.set_input("z", 1, None)
    d = diff_networks(a, b)
    assert d["rewired"] == [{"node": "z", "input": 1, "from": "h", "to": None}]
    assert not d["equal"]


def test_diff_structural_rename_of_a_chain():
    a, b = _mlp(), _mlp()
    b.rename_many({"h": "hidden", "w1": "W_1"})
    d = diff_networks(a, b)
    assert sorted((r["from"], r["to"]) for r in d["renamed"]) == [("h", "hidden"),
                                                                  ("w1", "W_1")]
    assert d["added"] == d["removed"] == d["rewired"] == []


def test_prune_and_orphans():
    net = _mlp()
    old = net.add_parameter("old", np.ones((3, 2), np.float32))
    net.add("head", "Times", inputs=(old, "h"))
    assert [n.name for n in unneeded(net)] == ["old", "head"]
    assert orphaned_by(net, [net.node("head")]) == []  # nothing needed it before either
    # removing the only output: nothing is needed any more
    assert [n.name for n in orphaned_by(net, [net.node("z")])] == ["x", "w1", "h", "w2"]
    assert prune(net) == ["old", "head"] and len(net) == 5


def test_orphans_without_groups_are_inputs_left_without_users():
    net = Network("g")
    x = net.add("x", "InputValue", shape=(2,))
    w = net.add_parameter("w", np.ones((2, 2), np.float32))
    t = net.add("t", "Times", inputs=(w, x))
    assert [n.name for n in orphaned_by(net, [t])] == ["x", "w"]
    with pytest.raises(EditError, match="nothing says what to keep"):
        unneeded(net)


def test_extract_keeps_the_source_unchanged():
    net = _mlp()
    sub = extract(net, ["h"], ["z"])
    assert sorted(n.name for n in sub) == ["h", "w2", "z"]
    assert sub.node("h").op == "InputValue" and sub.node("h").shape == (3,)
    assert len(net) == 5 and net.node("h").op == "Times"
    sub.node("w2").value[...] = 7  # a copy, not a view
    assert net.node("w2").value[0, 0] == 2
    with pytest.raises(EditError, match="needs at least one output"):
        extract(net, ["x"], [])


def test_multiplier_changes_count_only_where_they_apply():
    a, b = _mlp(), _mlp()
    b.update("x", learning_rate_multiplier=0.5)  # an input: the multiplier means nothing
    assert diff_networks(a, b)["equal"]
    b.update("w1", learning_rate_multiplier=0.0)
    assert diff_networks(a, b)["changed"] == [{"node": "w1", "field": "learning_rate_multiplier",
                                               "from": 1.0, "to": 0.0}]
