"""CloneFunction (brainscript.md §5.1): BrainScript and the Python API, all three modes."""

from __future__ import annotations

import numpy as np
import pytest
from tests.lang.brainscript.programs import KLD

import netsurgeon
from netsurgeon.errors import EditError, ShapeError
from netsurgeon.graph import Network
from netsurgeon.lang.brainscript import clone_function
from netsurgeon.ops.sets import PARAMETERS


# ---- the seed's examples, adapted to MC.dnn (features[2], labels[3], z, ce, errs) -----------
def test_seed_example_basic_use(build, mc_path):
    net = build(f"""
        network = BS.Network.Load ("{mc_path}")
        net = BS.Network.CloneFunction (network.features, network.z)
        myFeatures = Input (2)
        out = net (myFeatures)
    """)
    assert sorted(n.name for n in net.nodes) == ["myFeatures", "out", "out.b", "out.w",
                                                   "out.z.PlusArgs[0]"]
    assert net.get("out.z.PlusArgs[0]").inputs[1].name == "myFeatures"
    assert net.get("out").shape == (1, 3)
    original = netsurgeon.load(mc_path)
    np.testing.assert_array_equal(net.get("out.w").value, original.get("w").value)
    assert not np.shares_memory(net.get("out.w").value, original.get("w").value)
    assert net.get("out") in net.group("output")  # the tag of z is copied (CNTK)


def test_seed_example_two_inputs_record_of_outputs(build, mc_path):
    net = build(f"""
        network = BS.Network.Load ("{mc_path}")
        net = BS.Network.CloneFunction ((network.features:network.labels),
                                        [ ce = network.ce ; errs = network.errs ])
        myFeatures = Input (2)
        myLabels = Input (3)
        out = net (myFeatures, myLabels)
        criterionNodes = (out.ce)
        evaluationNodes = (out.errs)
    """)
    assert [n.name for n in net.group("criterion")] == ["out.ce"]
    assert [n.name for n in net.group("evaluation")] == ["out.errs"]
    assert [i.name for i in net.get("out.ce").inputs] == ["myLabels", "out.z"]
    assert [i.name for i in net.get("out.z").inputs] == ["out.z.PlusArgs[0]", "out.b"]


def test_seed_example_kl_adaptation_network_structure(build, mc_path):
    net = build(KLD.format(path=mc_path))
    params = {n.name: n.learning_rate_multiplier for n in net.nodes if n.op in PARAMETERS
              and n.value.size > 1}
    assert params == {"z.w": 1.0, "z.b": 1.0, "zRef.w": 0.0, "zRef.b": 0.0}
    assert net.get("kldLabels").op == "Plus"
    assert net.get("kldLabels.PlusArgs[1]").inputs[0].name == "kldLabels.PlusArgs[1].TimesArgs[0]"
    assert [n.name for n in net.group("criterion")] == ["ce"]
    net.lint()


def test_learnable_calls_make_independent_copies_shared_calls_share(build, mc_path):
    net = build(f"""
        m = BS.Network.Load ("{mc_path}")
        f = BS.Network.CloneFunction (m.features, m.z)
        g = BS.Network.CloneFunction (m.features, m.z, parameters="shared")
        x = Input (2)
        a1 = f (x) ; b1 = f (x) ; c1 = g (x) ; d1 = g (x)
    """)
    assert net.get("a1.w") is not net.get("b1.w")
    assert not np.shares_memory(net.get("a1.w").value, net.get("b1.w").value)
    np.testing.assert_array_equal(net.get("a1.w").value, net.get("b1.w").value)
    assert net.get("c1.z.PlusArgs[0]").inputs[0] is net.get("d1.z.PlusArgs[0]").inputs[0]
    assert net.get("c1.z.PlusArgs[0]").inputs[0].name == "w"


def test_parameter_substitution_reinfers_shapes_and_bad_one_is_named(build, mc_path):
    net = build(f"""
        m = BS.Network.Load ("{mc_path}")
        f = BS.Network.CloneFunction ((m.features : m.w), m.z)
        x = Input (5)
        out = f (x, ParameterTensor {{(3:5)}})
    """)
    assert net.get("out.z.PlusArgs[0]").shape == (3,) and net.get("out").shape == (1, 3)
    with pytest.raises(ShapeError) as info:
        build(f"""
            m = BS.Network.Load ("{mc_path}")
            f = BS.Network.CloneFunction ((m.features : m.w), m.z)
            x = Input (5)
            out = f (x, ParameterTensor {{(4:5)}})
        """)
    msg = str(info.value)
    assert "'out.z'" in msg and "(4,)" in msg and "(1, 3)" in msg


def test_input_not_reached_and_bad_mode(build, mc_path):
    load = f"m = BS.Network.Load ('{mc_path}')\n"
    with pytest.raises(EditError,
                       match="No specified output depends on the specified input 'labels'"):
        build(load + "f = BS.Network.CloneFunction ((m.features:m.labels), m.z)\n"
              "x = Input(2)\ny = Input(3)\nz = f(x, y)\n")
    with pytest.raises(EditError, match="parameters must be"):
        build(load + "f = BS.Network.CloneFunction (m.features, m.z, parameters='frozen')\n"
              "x = Input(2)\nz = f(x)\n")


# ---- recurrent sections (slu.forward.nobn.cmf) ---------------------------------------------------
@pytest.mark.parametrize("mode", ["learnable", "constant", "shared"])
def test_recurrent_section_clones_in_every_mode(slu_path, mode):
    net = netsurgeon.load(slu_path)
    f = clone_function([net.node("query")], net.node("z"), parameters=mode)
    q2 = net.add("query2", "InputValue", shape=(943,))
    z2 = f(q2, name="c")
    assert z2.name == "c.z"
    ht = net.node("c.z.x.lstmState._.ht")
    past_h = net.node("c.z.x.prevState.h")
    assert past_h.inputs[0] is ht  # the loop closes on the copy
    W = net.node("c.z.x.lstmState._.proj4.PlusArgs[0].PlusArgs[1]").inputs[0]
    if mode == "shared":
        assert W is net.node("model.arrayOfFunctions[1].lstm.W")
    else:
        assert W.name == "c.model.arrayOfFunctions[1].lstm.W"
        assert W.learning_rate_multiplier == (0.0 if mode == "constant" else 1.0)
    net.validate()
    assert z2.shape == net.node("z").shape


# ---- the Python API --------------------------------------------------------------------------
def test_python_api_shared_towers_in_one_network(mc_path):
    net = netsurgeon.load(mc_path)
    tower = clone_function([net.node("features")], net.node("z"), parameters="shared")
    x2 = net.add("features2", "InputValue", shape=(2,))
    z2 = tower(x2, name="t2")
    assert z2.name == "t2.z" and z2.inputs[1] is net.node("b")
    assert net.node("t2.z.PlusArgs[0]").inputs == (net.node("w"), x2)


def test_python_api_into_another_network_and_dict_outputs(mc_path):
    src = netsurgeon.load(mc_path)
    f = clone_function([src.node("features"), src.node("labels")],
                       {"ce": src.node("ce"), "errs": src.node("errs")}, parameters="constant")
    dst = Network("dst")
    x = dst.add("x", "InputValue", shape=(2,))
    y = dst.add("y", "InputValue", shape=(3,))
    out = f(x, y, name="m")
    assert set(out) == {"ce", "errs"} and out["ce"].network is dst
    assert dst.node("m.w").learning_rate_multiplier == 0
    assert out["ce"] in dst.group("criterion")
    dst.validate()
    src.lint()
    dst.lint()


def test_python_api_shared_parameters_from_another_network_share_storage(mc_path):
    src = netsurgeon.load(mc_path)
    f = clone_function([src.node("features")], src.node("z"), parameters="shared")
    dst = Network("dst")
    x = dst.add("x", "InputValue", shape=(2,))
    f(x, name="a")
    f(x, name="b")
    w = dst.node("w")  # brought in once, under its own name, sharing the storage
    assert np.shares_memory(w.value, src.node("w").value)
    assert dst.node("a.z.PlusArgs[0]").inputs[0] is w is dst.node("b.z.PlusArgs[0]").inputs[0]


def test_python_api_bad_substitution_leaves_the_network_unchanged(mc_path):
    net = netsurgeon.load(mc_path)
    f = clone_function([net.node("features"), net.node("w")], net.node("z"))
    x = net.add("x", "InputValue", shape=(5,))
    w4 = net.add_parameter("w4", np.zeros((5, 4), np.float32))
    before = net.names()
    with pytest.raises(ShapeError, match="'clone0.z'"):
        f(x, w4)
    assert net.names() == before  # the copies were checked before any entered the network
    out = f(x, net.add_parameter("w3", np.ones((5, 3), np.float32)))
    assert out.shape == (1, 3) and out.network is net


def test_python_api_on_a_brainscript_built_network(build):
    net = build("x = Input (4)\nh = DenseLayer {5, activation = Tanh} (x)\n"
                "z = LinearLayer {2} (h)\n")
    f = clone_function([net.node("x")], net.node("z"), parameters="learnable")
    x2 = net.add("x2", "InputValue", shape=(4,))
    a = f(x2)
    b = f(x2)
    assert (a.name, b.name) == ("clone0.z", "clone1.z")
    w0, w1 = (net.node(f"clone{k}.h.arrayOfFunctions[0].W") for k in (0, 1))
    assert w0 is not w1
    net.validate()
    net.lint()
    other = Network("other")
    y = other.add("y", "InputValue", shape=(4,))
    with pytest.raises(EditError, match="must all belong to one network"):
        f(x2, y)  # wrong count is checked after the network check
    with pytest.raises(EditError, match="expects 1 inputs, 2 were given"):
        f(x2, x2)


def test_every_edit_is_linted(build, mc_path, lint_every_edit):
    """The autouse hook (conftest.py) really runs: Load, both calls, the assembly."""
    build(KLD.format(path=mc_path))
    assert lint_every_edit.count >= 4
