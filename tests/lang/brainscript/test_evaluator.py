"""BrainScript evaluation semantics (brainscript.md §3–§4): laziness, scopes, naming, groups."""

from __future__ import annotations

import numpy as np
import pytest
from tests.lang.brainscript.programs import SLU

from netsurgeon.errors import EvaluationError, GraphError
from netsurgeon.ops.sets import PARAMETERS


def names(net):
    return sorted(n.name for n in net.nodes)


def test_node_names_follow_expression_paths(build):
    net = build("features = Input(2)\nw = Parameter(3, 2)\nb = Parameter(3, 1)\n"
                "p = Sigmoid(w * features + b)\n")
    assert net.get("p").op == "Sigmoid"
    assert net.get("p._").op == "Plus"
    assert net.get("p._.PlusArgs[0]").op == "Times"
    assert [i.name for i in net.get("p._.PlusArgs[0]").inputs] == ["w", "features"]


def test_layer_library_names_match_cntk_logs(build):
    net = build("""
        features = Input(4)
        featScale = 0.5
        model(x) = { s1 = x * featScale ; h1 = DenseLayer{5, activation=ReLU}(s1)
                     z = LinearLayer{3}(h1) }
        out = model(features)
        z = out.z
    """)
    for name, op in [("out.h1.arrayOfFunctions[0].W", "LearnableParameter"),
                     ("out.h1.arrayOfFunctions[0].b", "LearnableParameter"),
                     ("out.h1._.PlusArgs[0]", "Times"), ("out.h1._", "Plus"),
                     ("out.h1", "RectifiedLinear"), ("out.s1", "ElementTimes"),
                     ("_out.s1", "LearnableParameter"), ("z", "Plus")]:
        assert net.get(name) is not None and net.get(name).op == op, name
    w = net.get("out.h1.arrayOfFunctions[0].W")
    assert w.shape == (4, 5) and w.value.shape == (4, 5)  # inferred dim, then initialised
    assert float(net.get("_out.s1").value.flat[0]) == 0.5
    assert net.get("_out.s1").learning_rate_multiplier == 0


def test_laziness_unused_members_create_nothing_and_fail_is_harmless(build):
    net = build("x = Input(2)\nunused = Parameter(7, 7)\nbad = [ f = Fail('never') ]\n"
                "z = Tanh(x)\n")
    assert "unused" in names(net)  # a top-level node member is a root (CNTK)
    net = build("x = Input(2)\nr = [ unused = Parameter(7, 7) ; y = Tanh(x) ]\nz = r.y\n")
    assert not any("unused" in n for n in names(net))


def test_defaults_are_evaluated_in_definition_scope_once_per_function(build):
    net = build("""
        x = Input(2)
        k = 3
        f(a, c = Constant(k)) = a .* c
        g = [ k = 100 ; y = f(x) ].y
        h = f(x) + g
    """)
    consts = [n for n in net.nodes if n.op in PARAMETERS]
    assert len(consts) == 1 and float(consts[0].value.flat[0]) == 3.0  # one shared default node


def test_member_access_falls_back_to_parent_scope(build):
    net = build("x = Input(2)\nb = 5\nz = x * [a = 1].b\n")
    assert float(net.get("_z").value.flat[0]) == 5.0


def test_closures_and_arguments_in_caller_scope(build):
    net = build("""
        x = Input(2)
        mk(s) = (v => v * s)
        times2 = mk(2)
        y = [ s = 7 ; r = times2(x) ].r
    """)
    # the operator node is renamed y (a top-level member), so its constant keeps y.r
    assert float(net.get("y.r").value.flat[0]) == 2.0


def test_arrays_repeat_length_and_shift(build):
    net = build("""
        x = Input(2)
        a = array[1..3](i => i * 10)
        b = (1:2:3) << 1
        r = Repeat(3, 1)
        z = x * (a[3] + b[0] + Length(b) + Length(r) + Length(_ConcatArrays(1, 2:3)))
    """)
    # 30 + 2 + 2 + 2 (nested pairs) + 3
    assert float(net.get("_z").value.flat[0]) == 39.0


def test_length_needs_zero_based_array(build):
    with pytest.raises(EvaluationError, match="begin with index 0"):
        build("x = Input(2)\nz = x * Length(array[1..3](i => i))\n")


def test_strings_format_and_compare(build):
    net = build("x = Input(2)\ns = 'a' + Format(3, '') + Substr('hello', 1, 3)\n"
                "z = if s == 'a3ell' && 2 < 3 then Tanh(x) else Sigmoid(x)\n")
    assert net.get("z").op == "Tanh"


def test_operator_nodes(build):
    net = build("""
        x = Input(2)
        a = x / 4
        b = 1 / x
        c = -x
        d = !x
        e = x * 3
        f = x .* x
        g = x - 1
    """)
    assert net.get("a").op == "ElementTimes"
    assert float(net.get("_a").value.flat[0]) == 0.25
    assert net.get("b").op == "Reciprocal"
    assert net.get("c").op == "Negate"
    assert net.get("d").op == "Minus" and float(net.get("d").inputs[0].value.flat[0]) == 1.0
    assert net.get("e").op == "ElementTimes" and net.get("f").op == "ElementTimes"
    assert net.get("g").op == "Minus"


def test_operator_errors(build):
    with pytest.raises(EvaluationError, match="'.\\*' cannot be applied to numbers"):
        build("x = Input(2)\nz = x * (2 .* 3)\n")
    with pytest.raises(EvaluationError, match="cannot be applied to a String and a Double"):
        build("x = Input(2)\nz = x * ('a' + 1)\n")
    with pytest.raises(EvaluationError, match="not applicable to type Bool"):
        build("x = Input(2)\nz = x + true\n")


def test_call_errors(build):
    with pytest.raises(EvaluationError,
                       match="function expects 2 positional parameters, 1 were provided"):
        build("x = Input(2)\nz = Plus(x)\n")
    with pytest.raises(EvaluationError, match="does not have an optional argument 'readOnly'"):
        build("x = Input(2)\nz = Tanh(x, readOnly=true)\n")


def test_unknown_identifier_lists_close_matches(build):
    with pytest.raises(EvaluationError) as info:
        build("features = Input(2)\nz = Tanh(featurs)\n")
    assert "unknown identifier 'featurs'" in str(info.value) and "features" in str(info.value)
    assert ":2:10:" in str(info.value)


def test_circular_definition_is_reported(build):
    with pytest.raises(EvaluationError, match=r"circular reference: 'a'.*a -> b -> a"):
        build("x = Input(2)\na = b + 1\nb = a * 2\nz = x * a\n")


def test_circular_definition_10000_deep_is_reported_not_recursion_error(build):
    n = 10_000
    chain = "\n".join(f"a{i} = a{i + 1} + 1" for i in range(n))
    text = "x = Input(2)\n" + chain + f"\na{n} = a0\nz = x * a0\n"
    with pytest.raises(EvaluationError, match="circular reference"):
        build(text)


def test_deep_chain_10000_levels_evaluates(build):
    n = 10_000
    chain = "\n".join(f"a{i} = a{i + 1} + 1" for i in range(n))
    text = "x = Input(2)\n" + chain + f"\na{n} = 0\nz = x * a0\n"
    net = build(text)
    assert float(net.get("_z").value.flat[0]) == n


def test_endless_recursion_is_a_clean_error(build):
    with pytest.raises(EvaluationError, match="nesting too deep"):
        build("x = Input(2)\nf(n) = f(n + 1)\nz = x * f(0)\n")


def test_special_node_lists_and_tags_make_groups(build):
    net = build("""
        features = Input(2)
        labels = Input(3, tag='label')
        z = Parameter(3, 2) * features
        ce = CrossEntropyWithSoftmax(labels, z)
        errs = ClassificationError(labels, z, tag='evaluation')
        criterionNodes = (ce)
        outputNodes = (z)
    """)
    g = {k: [n.name for n in v] for k, v in net.groups().items()}
    assert g["criterion"] == ["ce"] and g["evaluation"] == ["errs"] and g["output"] == ["z"]
    assert g["label"] == ["labels"] and "features" in g["feature"]


def test_duplicate_plain_name_is_an_error_dotted_gets_underscore(build, mc_path):
    with pytest.raises(GraphError, match="Duplicated name 'features'"):
        build(f"m = BS.Network.Load('{mc_path}')\nfeatures = Input(2)\n"
              "y = Plus(m.z, Times(Parameter(3, 2), features))\n")
    net = build("x = Input(2)\nf(v) = [ y = Tanh(v) ].y\nr = [ a = f(x) ; b = f(x) ]\n"
                "z = r.a + r.b\n")
    assert net.get("r.a.y") is not None and net.get("r.b.y") is not None
    # scalars turned into Constants inside library primitives are named at path "" (CNTK):
    # _AsNodes's [1 x 1] inputs.arr[k].res (bs-library.md §1.3)
    net = build("x = Input(2)\nz = Plus(x, 1) + Plus(x, 2)\n")
    assert {n.name for n in net.nodes if n.op in PARAMETERS} == {
        "inputs.arr[1].res", "_inputs.arr[1].res"}
    assert net.node("inputs.arr[1].res").shape == (1, 1)


def test_loaded_network_names_reachable_with_underscores(build, mc_path):
    net = build(f"m = BS.Network.Load('{mc_path}')\nt = Tanh(m.z_PlusArgs_0_)\n")
    assert net.get("t").inputs[0].name == "z.PlusArgs[0]"
    with pytest.raises(EvaluationError) as info:
        build(f"m = BS.Network.Load('{mc_path}')\nt = Tanh(m.featres)\n")
    assert "no node 'featres'" in str(info.value) and "features" in str(info.value)


def test_node_as_record(build):
    net = build("x = Input(5)\nw = Parameter(3, 5)\nh = w * x\n"
                "z = Tanh(h.TimesArgs[0] * h.inputs[1]) * h.dim\n"
                "n = if h.name == 'h' then 1 else 0\n")
    assert float(net.get("_z").value.flat[0]) == 3.0


def test_network_load_as_whole_result(mc_path):
    from netsurgeon.lang.brainscript import build_from_text

    net = build_from_text(f"(BS.Network.Load('{mc_path}'))")
    assert sorted(n.name for n in net.nodes)[:3] == ["b", "ce", "errs"]


def test_edit_replaces_and_copies_consumers(build, mc_path):
    import netsurgeon

    net = build(f"""
        m = BS.Network.Load('{mc_path}')
        newFeatures = Input(2)
        scaled = newFeatures * 2
        edit = BS.Network.Editing.ReplaceLinksToNamedNode('features', scaled)
        edited = BS.Network.Edit(m, edit, (scaled))
        z = edited.z
    """)
    assert net.get("z.PlusArgs[0]").inputs[1].name == "scaled"
    original = netsurgeon.load(mc_path)
    assert original.get("z.PlusArgs[0]").inputs[1].name == "features"


def test_parameters_and_initialisation(build):
    net = build("""
        x = Input(4)
        a = ParameterTensor{(3:4), init='fixedValue', value=2}
        b = ParameterTensor{(3), initValue=1.5}
        c = ParameterTensor{(3:4), init='glorotUniform'}
        d = Parameter(3, 4, init='gaussian', randomSeed=7)
        z = a * x + b + c * x + d * x
    """)
    assert np.all(net.get("a").value == 2) and np.all(net.get("b").value == 1.5)
    r = np.sqrt(6 / 7)
    assert np.abs(net.get("c").value).max() <= r and net.get("c").value.std() > 0
    assert net.get("d").value.shape == (4, 3)


def test_cli_build_and_config(tmp_path, capsys):
    from netsurgeon.cli import main

    f = tmp_path / "net.bs"
    f.write_text("features = Input(2)\nz = DenseLayer{3, activation=Sigmoid}(features)\n")
    assert main(["bs", str(f)]) == 0
    out = capsys.readouterr().out
    assert "z = Sigmoid(z._)" in out
    cfg = tmp_path / "run.cntk"
    cfg.write_text('dim = 2\nhid = 7 # a comment\ntrain = [\n  action = "train"\n'
                   '  BrainScriptNetworkBuilder = {\n    features = Input($dim$)\n'
                   '    z = DenseLayer{$hid$}(features)\n  }\n]\n')
    assert main(["bs", "--config", str(cfg), "--section", "train"]) == 0
    assert "z.arrayOfFunctions[0].W = LearnableParameter()  (2, 7)" in capsys.readouterr().out


def test_cli_errors_are_one_line_with_location(tmp_path, capsys):
    from netsurgeon.cli import main

    f = tmp_path / "bad.bs"
    f.write_text("x = Input(2)\nz = Tanh(x +)\n")
    assert main(["bs", str(f)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"netsurgeon: error: {f}:2:13: expected an expression, found ')'")
    assert err.count("\n") == 1
    assert main(["bs", "--show-source", str(f)]) == 1  # the same error, then line and caret
    lines = capsys.readouterr().err.split("\n")
    assert lines[0] == err.rstrip("\n")
    assert lines[1:] == ["    z = Tanh(x +)", "                ^", ""]


def test_lstm_library_reproduces_cntk_slu_model_node_for_node(slu_path):
    """Every node of the CNTK-built slu.forward.nobn.cmf: same name, op, inputs and shape."""
    import netsurgeon
    from netsurgeon.lang.brainscript import build_from_file

    ref = netsurgeon.load(slu_path)
    ref.validate()
    net = build_from_file(SLU)

    def sig(n):
        return (n.name, n.op, tuple(i.name for i in n.inputs), n.shape)

    assert {sig(n) for n in net.nodes} == {sig(n) for n in ref.nodes}
    assert {k: sorted(n.name for n in v) for k, v in net.groups().items()} == \
        {k: sorted(n.name for n in v) for k, v in ref.groups().items()}
    for name in ("z.x.prevState.h", "z.x.prevState.c"):
        assert net.get(name).attrs["time_step"] == 1
        assert abs(net.get(name).attrs["initial_state"] - 0.1) < 1e-7


def test_cli_saves_model_that_loads_back(tmp_path):
    import netsurgeon
    from netsurgeon.cli import main

    out = tmp_path / "slu.nsm"
    assert main(["bs", str(SLU), "-o", str(out)]) == 0
    net = netsurgeon.load(out)
    assert len(net) == 32 and [n.name for n in net.group("criterion")] == ["ce"]
    net.lint()


def test_config_variable_errors(tmp_path):
    from netsurgeon.errors import ParseError
    from netsurgeon.lang.brainscript import build_from_config

    cfg = tmp_path / "c.cntk"
    cfg.write_text("a = $b$\nb = $a$\n"
                   "train = [\n BrainScriptNetworkBuilder = [\n x = Input($nodim$)\n ]\n]\n"
                   "loop = [\n BrainScriptNetworkBuilder = [\n x = Input($a$)\n ]\n]\n")
    import pytest as _pytest

    with _pytest.raises(ParseError, match=r"c\.cntk:5:12: No variable found with the name 'nodim'"):
        build_from_config(cfg, "train")
    with _pytest.raises(ParseError, match=r"c\.cntk:10:12: variable 'a' refers to itself"):
        build_from_config(cfg, "loop")
    with _pytest.raises(ParseError, match="no section 'test'"):
        build_from_config(cfg, "test")


def test_shape_error_points_at_the_user_expression(build):
    from netsurgeon.errors import ShapeError

    with pytest.raises(ShapeError) as info:
        build("x = Input(2)\nW = Parameter(3, 4)\nz = W * x\n")
    assert str(info.value).startswith("<string>:3:7: node 'z': Times")
