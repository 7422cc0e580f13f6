"""``netsurgeon.graph.plot``: the DOT picture of real models — one box per non-parameter
node, parameters folded into their users, groups coloured, recurrent loops and name prefixes
as clusters, ``--node``/``--depth`` selection, escaping, determinism, iterative on big
graphs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import netsurgeon
from netsurgeon.errors import GraphError
from netsurgeon.formats import load
from netsurgeon.graph import Network
from netsurgeon.graph.plot import GROUP_COLORS, NODE_COLOR, find_renderer, layout, to_dot
from netsurgeon.ops import Category

ROOT = Path(__file__).resolve().parents[2]
BOX = re.compile(r'^\s*(n\d+) \[label="((?:[^"\\]|\\.)*)", tooltip="((?:[^"\\]|\\.)*)", '
                 r'fillcolor="(#[0-9a-f]{6})"', re.M)
MODELS = ["LR_reg.dnn", "MC.dnn", "01_OneHidden.dnn", "cifar10.pretrained.cmf",
          "cifar10.ResNet.cmf", "slu.forward.nobn.cmf"]


def boxes(dot: str) -> dict[str, tuple[list[str], str]]:
    """name -> (label lines, fill colour) of every box."""
    out = {}
    for _, label, tooltip, color in BOX.findall(dot):
        out[tooltip.replace('\\"', '"').replace("\\\\", "\\")] = (label.split("\\n"), color)
    return out


def clusters(dot: str) -> dict[str, tuple[str, list[str]]]:
    """cluster id -> (label, tooltips of the boxes inside it, nested ones included)."""
    stack: list[str] = []
    found: dict[str, tuple[str, list[str]]] = {}
    lines = dot.splitlines()
    for k, line in enumerate(lines):
        m = re.match(r"\s*subgraph (\w+) \{", line)
        if m:
            label = re.search(r'label="((?:[^"\\]|\\.)*)"', lines[k + 1])[1]
            found[m[1]] = (label, [])
            stack.append(m[1])
        elif line.strip() == "}" and stack:
            stack.pop()
        else:
            b = BOX.match(line)
            if b:
                for cid in stack:
                    found[cid][1].append(b[3])
    return found


def real(cntk_dir, name: str) -> Network:
    net = load(cntk_dir / "models" / name)
    net.validate()
    return net


@pytest.fixture(scope="module")
def seed4(tmp_path_factory) -> Network:
    """The network of CNTK's MEL documentation after the documentation's MEL script."""
    from netsurgeon.lang.ndl import build_network

    tmp = tmp_path_factory.mktemp("seed")
    net = build_network((ROOT / "examples" / "seed.ndl").read_text(), source="seed.ndl")
    netsurgeon.save(net, tmp / "seed.dnn")
    netsurgeon.mel.run(str(ROOT / "examples" / "seed.mel"), variables={
        "inModel": str(tmp / "seed.dnn"), "dumpFile": str(tmp / "seed.txt"),
        "outModel": str(tmp / "seed4.dnn")})
    out = load(tmp / "seed4.dnn")
    out.validate()
    return out


@pytest.mark.parametrize("name", MODELS)
def test_one_box_per_node_that_is_not_a_parameter(cntk_dir, name):
    net = real(cntk_dir, name)
    params = net.registry.op_set(Category.PARAMETER)
    dot = to_dot(net)
    shown = boxes(dot)
    expected = {n.name for n in net.nodes if n.op not in params}
    assert set(shown) == expected
    assert dot.count(" -> ") >= len(expected) - len(net.group("feature"))
    for n in net.nodes:
        if n.op not in params:
            lines = shown[n.name][0]
            assert lines[:2] == [n.name, f"{n.op}  {n.shape}"]  # numpy order
    folded = sum(len(lines) - 2 for lines, _ in shown.values())
    assert folded == sum(1 for n in net.nodes for i in n.inputs
                         if i is not None and i.op in params)


@pytest.mark.skipif(find_renderer() is None, reason="no Graphviz renderer (dot or "
                    "graphviz-pure) installed")
@pytest.mark.parametrize("name", MODELS)
def test_the_renderer_accepts_the_dot_text(cntk_dir, name):
    dot = to_dot(real(cntk_dir, name))
    done = subprocess.run([*find_renderer(), "-Tcanon"], input=dot.encode(),
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_seed4_boxes_parameters_groups_and_clusters(seed4):
    dot = to_dot(seed4)
    shown = boxes(dot)
    assert len(shown) == 22  # 32 nodes, 10 parameters folded
    assert shown["L1.BFF.FF.T"][0] == ["L1.BFF.FF.T", "Times  (256,)", "W (784, 256)"]
    assert shown["L4.BFF.FF.P"][0] == ["L4.BFF.FF.P", "Plus  (256,)", "B (256,)"]
    assert shown["CE.BFF.FF.T"][0][2] == "W (256, 10)"
    assert "L1.BFF.W" not in shown and "L1.BFF.B" not in shown
    assert shown["CE.SM"][1] == GROUP_COLORS["criterion"]
    assert shown["Err"][1] == GROUP_COLORS["evaluation"]
    assert shown["CE.F"][1] == GROUP_COLORS["output"]
    assert shown["features"][1] == GROUP_COLORS["feature"]
    assert shown["labels"][1] == GROUP_COLORS["label"]
    assert shown["inputVal"][1] == NODE_COLOR
    ids = {name: m[0] for m in BOX.findall(dot) for name in [m[2]]}
    # edges carry the producing node's shape
    assert f'{ids["L3.RL"]} -> {ids["L4.BFF.FF.T"]} [label="(256,)"]' in dot
    assert f'{ids["features"]} -> {ids["meanVal"]} [label="(784,)"]' in dot
    found = {label: members for label, members in clusters(dot).values()}
    assert found["L1"] == ["L1.BFF.FF.T", "L1.BFF.FF.P", "L1.RL"]
    assert found["L1.BFF"] == ["L1.BFF.FF.T", "L1.BFF.FF.P"]
    assert "L1.BFF.FF" not in found  # the same boxes as L1.BFF: no extra frame
    assert found["L4"] == ["L4.BFF.FF.T", "L4.BFF.FF.P", "L4.RL"]
    assert found["CE"] == ["CE.BFF.FF.T", "CE.BFF.FF.P", "CE.SM", "CE.F"]
    # the legend: the five groups, in CNTK's order
    legend = re.findall(r'legend\d \[label="([^"]+)", fillcolor="(#\w+)"', dot)
    assert legend == [("input (feature)", GROUP_COLORS["feature"]),
                      ("label", GROUP_COLORS["label"]),
                      ("criterion", GROUP_COLORS["criterion"]),
                      ("evaluation", GROUP_COLORS["evaluation"]),
                      ("output", GROUP_COLORS["output"])]


def test_output_is_deterministic(seed4, tmp_path):
    dot = to_dot(seed4)
    assert to_dot(seed4) == dot
    netsurgeon.save(seed4, tmp_path / "again.nsm")
    again = load(tmp_path / "again.nsm")
    again.validate()
    again.name = seed4.name
    assert to_dot(again) == dot


def test_recurrent_loop_is_a_cluster(cntk_dir):
    from netsurgeon.graph import recurrent_loops

    net = real(cntk_dir, "slu.forward.nobn.cmf")
    [loop] = recurrent_loops(net)
    pic = layout(net)
    assert pic.loops == 1
    found = clusters(pic.dot)
    assert "cluster_loop_1" in found and "cluster_loop_2" not in found
    label, members = found["cluster_loop_1"]
    assert label == "recurrent loop 1"
    assert sorted(members) == sorted(n.name for n in loop) and len(members) == 17
    # the loop sits in the prefix cluster of its common prefix, with sub-clusters inside
    outer = next(v for v in found.values() if v[0] == "z")
    assert set(members) < set(outer[1])
    assert any(v[0] == "z.x.prevState" and sorted(v[1]) == ["z.x.prevState.c",
               "z.x.prevState.h"] for v in found.values())
    # the delayed inputs of the two PastValue nodes: dashed, not constraining the layout
    assert pic.dot.count("style=dashed, constraint=false") == 2


def test_recurrent_network_from_brainscript_or_ndl():
    """A loop built in the test: h = Sigmoid(W x + H PastValue(h))."""
    net = Network("rnn")
    x = net.add("x", "InputValue", shape=(3,))
    w = net.add_parameter("W", np.ones((3, 4), np.float32))
    hw = net.add_parameter("U", np.ones((4, 4), np.float32))
    wx = net.add("wx", "Times", inputs=(w, x))
    h = net.add("h", "Sigmoid", inputs=(wx,))
    prev = net.add("prev", "PastValue", inputs=(h,))
    hh = net.add("hh", "Times", inputs=(hw, prev))
    s = net.add("s", "Plus", inputs=(wx, hh))
    net.set_input(h, 0, s)
    net.add_to_group("output", h)
    pic = layout(net)
    found = clusters(pic.dot)
    assert sorted(found["cluster_loop_1"][1]) == ["h", "hh", "prev", "s"]
    assert "U (4, 4)" in boxes(pic.dot)["hh"][0]


def test_node_and_depth_select_part_of_the_picture(seed4):
    part = layout(seed4, node_patterns=["L2.*"], depth=0)
    assert part.nodes == ["L2.BFF.FF.T", "L2.BFF.FF.P", "L2.RL"]
    assert boxes(part.dot)["L2.BFF.FF.T"][0][2] == "W (256, 256)"  # still folded
    assert "penwidth=3" in part.dot  # the matched nodes stand out
    # hidden neighbours: grey names on dashed edges
    assert 'label="L1.RL", tooltip="L1.RL", shape=plain' in part.dot
    assert 'label="L3.BFF.FF.T", tooltip="L3.BFF.FF.T", shape=plain' in part.dot
    one = layout(seed4, node_patterns=["L2.*"])  # depth 1 by default
    assert one.nodes == ["L1.RL", "L2.BFF.FF.T", "L2.BFF.FF.P", "L2.RL", "L3.BFF.FF.T"]
    two = layout(seed4, node_patterns=["L2.RL"], depth=2)
    assert set(two.nodes) == {"L2.BFF.FF.T", "L2.BFF.FF.P", "L2.RL", "L3.BFF.FF.T",
                              "L3.BFF.FF.P"}
    # a matched parameter starts from the nodes that read it
    assert layout(seed4, node_patterns=["L1.BFF.W"], depth=0).nodes == ["L1.BFF.FF.T"]
    both = layout(seed4, node_patterns=["CE.SM", "Err"], depth=0)
    assert both.nodes == ["CE.SM", "Err"]
    with pytest.raises(GraphError, match=r"no node matches 'L5\.\*'.*did you mean: L4\.\*"):
        layout(seed4, node_patterns=["L5.*"])


def test_names_are_escaped():
    net = Network('my "net"')
    odd = ['in"put', "back\\slash\\n", "<html>&amp;", "a[1.5].b", "line\nbreak"]
    x = net.add(odd[0], "InputValue", shape=(2,))
    y = net.add(odd[1], "Sigmoid", inputs=(x,))
    z = net.add(odd[2], "Tanh", inputs=(y,))
    w = net.add(odd[3], "Sigmoid", inputs=(z,))
    v = net.add(odd[4], "Tanh", inputs=(w,))
    net.add_to_group("output", v)
    net.validate()
    dot = to_dot(net)
    assert set(boxes(dot)) == {n.replace("\n", "\\n").replace("&", "&amp;") for n in odd}
    assert 'in\\"put' in dot and "back\\\\slash\\\\n" in dot and "&amp;amp;" in dot
    if find_renderer() is not None:
        from netsurgeon.graph.plot import render

        svg = render(dot, "svg").decode()
        assert "in&quot;put" in svg or 'in"put' in svg
        # one line, the backslashes kept (graphviz-pure doubles them; Graphviz does not)
        assert re.search(r">back\\{1,2}slash\\{1,2}n<", svg), svg
        assert ">&lt;html&gt;&amp;amp;<" in svg and ">line<" in svg and ">break<" in svg


def test_an_unused_parameter_keeps_a_box_and_frozen_ones_say_so():
    net = Network("m")
    x = net.add("x", "InputValue", shape=(4,))
    w = net.add_parameter("w", np.ones((4, 3), np.float32), learning_rate_multiplier=0)
    net.add_parameter("spare", np.ones((2,), np.float32))
    h = net.add("h", "Times", inputs=(w, x))
    net.add_to_group("output", h)
    net.validate()
    shown = boxes(to_dot(net))
    assert set(shown) == {"x", "h", "spare"}
    assert shown["h"][0] == ["h", "Times  (3,)", "w (4, 3) frozen"]


def test_a_long_chain_is_drawn_without_recursion():
    net = Network("chain")
    prev = net.add("x", "InputValue", shape=(4,))
    for i in range(30_000):
        prev = net.add(f"b{i // 10}.l{i}", "Sigmoid", inputs=(prev,))
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)
    try:
        pic = layout(net)
        part = layout(net, node_patterns=["b1500.*"], depth=3)
    finally:
        sys.setrecursionlimit(limit)
    assert len(pic.nodes) == 30_001 and pic.edges == 30_000 and pic.clusters == 3000
    assert len(part.nodes) == 16
