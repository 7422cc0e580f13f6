"""CNTK's node names for infix-operator constants and core-library members (bs-library.md §1–§2).

Each test builds ``z = F(...)`` and compares the created nodes (name, operation, shape) with the
spec's tables; names verified in CNTK's logs are marked as such.
"""

from __future__ import annotations

import numpy as np
import pytest

from netsurgeon.errors import NetsurgeonError
from netsurgeon.ops.sets import PARAMETERS


def nodes(net) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (operation, numpy shape) of every node."""
    return {n.name: (n.op, tuple(n.shape)) for n in net.nodes}


def constant(net, name: str) -> float:
    """The value of the [1] infix constant ``name`` (checks it is one)."""
    node = net.node(name)
    assert node.op in PARAMETERS and tuple(node.shape) == (1,), (name, node.op, node.shape)
    assert node.learning_rate_multiplier == 0
    return float(node.value.flat[0])


# ---- §1.2: scalar constants of infix operators are named after the operator expression ----
@pytest.mark.parametrize("expr, op, inputs, value", [
    ("0.5 .* x", "ElementTimes", ["_r.z", "x"], 0.5),
    ("x * 0.5", "ElementTimes", ["x", "_r.z"], 0.5),       # '*' with a Double: ElementTimes
    ("x / 4", "ElementTimes", ["x", "_r.z"], 0.25),        # the reciprocal is stored
    ("x + 1", "Plus", ["x", "_r.z"], 1.0),
    ("1 + x", "Plus", ["_r.z", "x"], 1.0),
    ("x - 1", "Minus", ["x", "_r.z"], 1.0),
    ("1 - x", "Minus", ["_r.z", "x"], 1.0),
    ("!x", "Minus", ["_r.z", "x"], 1.0),
    ("x >= 1", "GreaterEqual", ["x", "_r.z"], 1.0),
])
def test_infix_constant_is_named_like_its_operator_then_prefixed(build, expr, op, inputs, value):
    net = build(f"x = Input (3)\nr = [ z = {expr} ]\noutputNodes = (r.z)\n")
    z = net.node("r.z")  # operator and constant are both named r.z; the constant comes second
    assert z.op == op and [i.name for i in z.inputs] == inputs
    assert constant(net, "_r.z") == value
    assert sorted(nodes(net)) == ["_r.z", "r.z", "x"]
    # a top-level member renames the operator node, so the constant keeps its name
    net = build(f"x = Input (3)\nr = [ z = {expr} ]\nout = r.z\n")
    assert sorted(nodes(net)) == ["out", "r.z", "x"] and constant(net, "r.z") == value


def test_one_over_x_is_a_reciprocal_without_constant(build):
    net = build("x = Input (3)\nr = [ z = 1 / x ]\noutputNodes = (r.z)\n")
    assert nodes(net) == {"r.z": ("Reciprocal", (3,)), "x": ("InputValue", (3,))}


def test_constant_of_an_operator_on_a_subexpression(build):
    # `f .* (x - m)` with f a Double (ConvNets): ElementTimes@Q (const f, Minus);
    # Minus@Q.ElementTimesArgs[1]; const → _Q
    net = build("x = Input (3)\nm = Input (3)\nr = [ z = 2 .* (x - m) ]\noutputNodes = (r.z)\n")
    assert nodes(net) == {
        "r.z": ("ElementTimes", (3,)), "_r.z": ("LearnableParameter", (1,)),
        "r.z.ElementTimesArgs[1]": ("Minus", (3,)),
        "x": ("InputValue", (3,)), "m": ("InputValue", (3,))}
    assert [i.name for i in net.node("r.z").inputs] == ["_r.z", "r.z.ElementTimesArgs[1]"]


def test_convnet_lrn_constants_verbatim(build):
    # bs-library.md §1.2: `beta .* Log(k + b)` at Q = R.den._ (verbatim in the ConvNetLRN log)
    net = build("""
        x = Input (3)
        R = [ beta = 0.75 ; k = 1 ; den = Exp (beta .* Log (k + x)) ]
        out = R.den
    """)
    q = "R.den._"
    assert nodes(net) == {
        "out": ("Exp", (3,)), q: ("ElementTimes", (3,)), "_" + q: ("LearnableParameter", (1,)),
        f"{q}.ElementTimesArgs[1]": ("Log", (3,)),
        f"{q}.ElementTimesArgs[1]._": ("Plus", (3,)),
        f"_{q}.ElementTimesArgs[1]._": ("LearnableParameter", (1,)),
        "x": ("InputValue", (3,))}
    assert constant(net, "_" + q) == 0.75 and constant(net, f"_{q}.ElementTimesArgs[1]._") == 1


def test_sqrt_of_a_division_matches_the_05_one_conv_regr_log(build):
    # log: `_rmse.z = LearnableParameter()`, `rmse.z = ElementTimes (sqerr, _rmse.z)`
    net = build("sqerr = Input (1)\nlabelDim = 4\nrmse = Sqrt (sqerr / labelDim)\n")
    assert nodes(net) == {"rmse": ("Sqrt", (1,)), "rmse.z": ("ElementTimes", (1,)),
                          "_rmse.z": ("LearnableParameter", (1,)), "sqerr": ("InputValue", (1,))}
    assert [i.name for i in net.node("rmse.z").inputs] == ["sqerr", "_rmse.z"]
    assert constant(net, "_rmse.z") == 0.25


def test_top_level_constant_gets_the_prefix_and_repeats_add_more(build):
    # CNTK refused `z = 0.5 .* x` at the top level ("Duplicated name"); netsurgeon names the
    # constant _z as for a dotted path, and __z when _z is taken
    net = build("x = Input (3)\nz = 0.5 .* x\ny = x / 4\n")
    assert constant(net, "_z") == 0.5 and constant(net, "_y") == 0.25
    net = build("_z = Input (3)\nz = 0.5 .* _z\n")
    assert [i.name for i in net.node("z").inputs] == ["__z", "_z"] and constant(net, "__z") == 0.5


def test_two_different_top_level_nodes_of_one_name_are_still_an_error(build):
    # the Sigmoid made inside new ComputationNode's record is named 'inputs' (path reset)
    with pytest.raises(NetsurgeonError, match="Duplicated name 'inputs'"):
        build("x = Input (3)\ninputs = Input (3)\n"
              "z = new ComputationNode [ operation = 'Pass' ; inputs = Sigmoid (x) ]\n")


# ---- §2: library parameter and member names ----------------------------------------------
def test_unary_parameter_names(build):
    net = build("""
        x = Input (3)
        m = [ lg = Log (Sigmoid (x)) ; ex = Exp (Sigmoid (x)) ; sq = Sqrt (Sigmoid (x))
              sn = Sin (Sigmoid (x)) ; ng = Negate (Sigmoid (x))
              sg = StopGradient (Sigmoid (x)) ; ab = Abs (Sigmoid (x)) ]
        outputNodes = (m.lg : m.ex : m.sq : m.sn : m.ng : m.sg : m.ab)
    """)
    got = nodes(net)
    for member, op, param in [("lg", "Log", "_"), ("ex", "Exp", "_"), ("sq", "Sqrt", "z"),
                              ("sn", "Sin", "z"), ("ng", "Negate", "input"),
                              ("sg", "StopGradient", "input"), ("ab", "Abs", "_")]:
        assert got[f"m.{member}"] == (op, (3,))
        assert got[f"m.{member}.{param}"] == ("Sigmoid", (3,)), member
        assert [i.name for i in net.node(f"m.{member}").inputs] == [f"m.{member}.{param}"]


def test_log_prior_names(build):
    net = build("labels = Input (4)\nlogPrior = LogPrior (labels)\n")
    assert nodes(net) == {"logPrior": ("Log", (4,)), "logPrior._": ("Mean", (4,)),
                          "labels": ("InputValue", (4,))}


@pytest.mark.parametrize("fn, reduction", [("ReduceSum", "Sum"), ("ReduceLogSum", "LogSum"),
                                           ("ReduceMean", "Mean"), ("ReduceMax", "Max"),
                                           ("ReduceMin", "Min")])
def test_reductions_are_named_q_r(build, fn, reduction):
    net = build(f"x = Input (3)\nm = [ e = {fn} (Sigmoid (x)) ]\ne = {fn} (x)\n"
                "outputNodes = (m.e)\n")
    assert nodes(net) == {"m.e.r": ("ReduceElements", (1,)), "m.e._": ("Sigmoid", (3,)),
                          "e": ("ReduceElements", (1,)), "x": ("InputValue", (3,))}
    assert net.node("m.e.r").attrs["operation"] == reduction


def test_square_error_and_sbff_names(build):
    net = build("""
        x = Input (3)
        m = [ se = SquareError (Sigmoid (x), Tanh (x)) ; s = SBFF (x, 2, 3) ]
        outputNodes = (m.se : m.s.Eh)
    """)
    got = nodes(net)
    assert got["m.se"] == ("SquareError", (1,))
    assert got["m.se.aMatrix"] == ("Sigmoid", (3,))
    assert got["m.se.anotherMatrix"] == ("Tanh", (3,))
    # SBFF: Q.Eh Sigmoid; the BFF record at Q.Eh._
    assert got["m.s.Eh"] == ("Sigmoid", (1, 2))
    assert got["m.s.Eh._.z"] == ("Plus", (1, 2))
    assert got["m.s.Eh._.z.PlusArgs[0]"] == ("Times", (2,))
    assert got["m.s.Eh._.W"] == ("LearnableParameter", (3, 2))
    assert got["m.s.Eh._.B"] == ("LearnableParameter", (1, 2))


def test_lstm_projection_is_lstm_state_h(build):
    net = build("""
        x = Input (3)
        m = [ h = RecurrentLSTMLayer {2, cellShape = 4} (x) ]
        outputNodes = (m.h)
    """)
    h = net.node("m.h.lstmState.h")  # not m.h.lstmState._.h
    assert h.op == "Times" and h.shape == (2,)
    assert [i.name for i in h.inputs] == ["m.h.lstm.Wmr", "m.h.lstmState._.ht"]
    assert net.get("m.h.lstmState._.h") is None
    assert net.node("m.h.prevState.h").inputs[0] is h
    # without a projection the result is the internal S._.ht
    net = build("x = Input (3)\nm = [ h = RecurrentLSTMLayer {2} (x) ]\noutputNodes = (m.h)\n")
    assert net.node("m.h.lstmState._.ht").op == "ElementTimes"
    assert "m.h.lstmState.h" not in nodes(net)


def test_parallel_and_merge_binary_names(build):
    net = build("""
        x = Input (3)
        y = Input (3)
        m = [ p = Parallel (DenseLayer {2} : DenseLayer {4}, Splice) (x)
              b = MergeBinary (LinearLayer {2} : LinearLayer {2}, Plus) (x, y) ]
        outputNodes = (m.p : m.b)
    """)
    got = nodes(net)
    # Parallel: combine at Q; the array at Q.<p0 of combine> (Splice's `_`), branch i at Q._[i];
    # the constructors at P.arrayOfFunctions[i]
    assert got["m.p.out"] == ("RowStack", (6,))
    assert got["m.p._[0].x"] == ("Plus", (2,)) and got["m.p._[1].x"] == ("Plus", (4,))
    assert got["m.p.arrayOfFunctions[1].arrayOfFunctions[0].W"] == ("LearnableParameter", (3, 4))
    # MergeBinary: fs[0](x) at Q.<p0 of combine> (Plus's `_`), fs[1](y) at Q.<p1> (`y`)
    assert got["m.b"] == ("Plus", (2,))
    assert got["m.b._"] == ("Plus", (2,)) and got["m.b.y"] == ("Plus", (2,))
    assert got["m.b.arrayOfFunctions[0].W"] == ("LearnableParameter", (3, 2))
    with pytest.raises(NetsurgeonError, match="limited to binary functions"):
        build("x = Input (3)\nb = MergeBinary (LinearLayer {2} : LinearLayer {2} : "
              "LinearLayer {2}, Plus) (x, x)\n")


def test_repeat_parameter_is_what(build):
    net = build("x = Input (2)\nm = [ r = Repeat (1, Sigmoid (x)) ]\noutputNodes = (m.r)\n"
                "z = x * Length (Repeat (3, 2))\n")
    # Repeat (3, 2) is nested pairs ((2 : 2) : 2), of Length 2 (as CNTK)
    assert nodes(net)["m.r.what"] == ("Sigmoid", (2,)) and constant(net, "_z") == 2.0


def test_round_and_ceil_names(build):
    net = build("x = Input (3)\nm = [ r = Round (x) ; c = Ceil (x) ]\noutputNodes = (m.r : m.c)\n")
    assert nodes(net) == {
        "m.r": ("Floor", (3,)), "m.r._": ("Plus", (3,)), "m.r._.y": ("LearnableParameter", (1,)),
        "m.c": ("Negate", (3,)), "m.c.input": ("Floor", (3,)), "m.c.input._": ("Negate", (3,)),
        "x": ("InputValue", (3,))}


# ---- PastValue/FutureValue initialState (§2.4, §1.3) -------------------------------------
def test_delays_take_an_initial_state(build):
    net = build("""
        x = Input (3)
        m = [ p = PastValue (3, x, initialState = Sigmoid (x))
              f = FutureValue (3, x, initialState = 0.5, timeStep = 2)
              g = BS.Loop.Previous (x, initialState = 0.25) ]
        outputNodes = (m.p : m.f : m.g)
    """)
    got = nodes(net)
    assert [i.name for i in net.node("m.p").inputs] == ["x", "m.p.initialState"]
    assert got["m.p.initialState"] == ("Sigmoid", (3,))
    # a Double initialState is a [1 x 1] Constant named inputs.arr[1].res, then _-prefixed
    assert [i.name for i in net.node("m.f").inputs] == ["x", "inputs.arr[1].res"]
    assert [i.name for i in net.node("m.g").inputs] == ["x", "_inputs.arr[1].res"]
    assert got["inputs.arr[1].res"] == ("LearnableParameter", (1, 1))
    assert net.node("m.f").attrs["time_step"] == 2
    values = {float(net.node(n).value.flat[0]) for n in ("inputs.arr[1].res",
                                                         "_inputs.arr[1].res")}
    assert values == {0.5, 0.25}
    net = build("x = Input (3)\np = PastValue (3, x)\n")
    assert [i.name for i in net.node("p").inputs] == ["x"]


# ---- BatchNormalization engines ----------------------------------------------------------
def test_batch_normalization_engines_are_accepted_and_compute_the_same(build):
    from netsurgeon.runtime import evaluate

    net = build("""
        x = Input (3)
        s = ParameterTensor {(3), initValue = 2}
        b = ParameterTensor {(3), initValue = 0.5}
        m = ParameterTensor {(3), initValue = 1}
        v = ParameterTensor {(3), initValue = 4}
        cntk = BatchNormalization (x, s, b, m, v)
        cudnn = BatchNormalization (x, s, b, m, v, engine = 'cudnn')
        flag = BatchNormalization (x, s, b, m, v, useCntkEngine = false)
        layer = BatchNormalizationLayer {useCntkEngine = false} (x)
    """)
    engines = {n: net.node(n).attrs["use_cntk_engine"] for n in ("cntk", "cudnn", "flag")}
    assert engines == {"cntk": True, "cudnn": False, "flag": False}
    # the automatic run counts: inputs.inputs[5], then _inputs.inputs[5], ...
    counts = sorted(net.node(n).inputs[5].name for n in ("cntk", "cudnn", "flag"))
    assert counts == ["__inputs.inputs[5]", "_inputs.inputs[5]", "inputs.inputs[5]"]
    X = np.array([[0.0, 1.0, 3.0]], np.float32)
    out = evaluate(net, {"x": X}, ["cntk", "cudnn", "flag"])
    want = 2 * (X - 1) / np.sqrt(4 + 1e-5) + 0.5
    for name in ("cntk", "cudnn", "flag"):
        np.testing.assert_allclose(out[name], want, rtol=1e-6)


def test_batch_normalization_bad_engine_points_at_the_call(build):
    with pytest.raises(NetsurgeonError) as info:
        build("x = Input (3)\ns = ParameterTensor {(3)}\n"
              "bn = BatchNormalization (x, s, s, s, s, engine = 'fast')\n", "net.bs")
    text = str(info.value)
    assert text.startswith("net.bs:3:") and "engine must be 'cntk' or 'cudnn'" in text
