"""NDL language rules (ndl-mel.md §B.2–§B.8): names, the unnamedN counter, macros in every
form, aliases, the dot rule, forward references, tags, special lists, and the errors."""

from __future__ import annotations

import pytest

from netsurgeon.errors import NetsurgeonError, ParseError
from netsurgeon.lang.ndl import MacroTable, NameCounter, build_network

MNIST_MACROS = """
DNNSigmoidLayer(inDim, outDim, x, parmScale) = [
    W = LearnableParameter(outDim, inDim, init="uniform", initValueScale=parmScale,
                           initOnCPUOnly=true)
    b = LearnableParameter(outDim, 1, init="uniform", initValueScale=parmScale, initOnCPUOnly=true)
    t = Times(W, x)
    z = Plus(t, b)
    y = Sigmoid(z)
]
DNNLayer(inDim, outDim, x, parmScale) = [
    W = LearnableParameter(outDim, inDim, init="uniform", initValueScale=parmScale,
                           initOnCPUOnly=true)
    b = LearnableParameter(outDim, 1, init="uniform", initValueScale=parmScale, initOnCPUOnly=true)
    t = Times(W, x)
    z = Plus(t, b)
]
"""

MNIST_NET = """
load = ndlMnistMacros
run = DNN
ndlMnistMacros = [
    featDim = 784
    labelDim = 10
    features = InputValue(featDim, tag="feature")
    featScale = Constant(0.00390625)
    featScaled = Scale(featScale, features)
    labels = InputValue(labelDim, tag="label")
]
DNN = [
    hiddenDim = 200
    h1 = DNNSigmoidLayer(featDim, hiddenDim, featScaled, 1)
    ol = DNNLayer(hiddenDim, labelDim, h1, 1)
    ce = CrossEntropyWithSoftmax(labels, ol, tag="criterion")
    errs = ClassificationError(labels, ol, tag="evaluation")
    top5Errs = ClassificationError(labels, ol.z, Const(5), tag="evaluation")
    OutputNodes = ol
]
"""


def build(text, **kw):
    kw.setdefault("counter", NameCounter())
    return build_network(text, **kw)


def names(net):
    return set(net.names())


# ---- generated names and the counter (§B.6) --------------------------------------------------
def test_mnist_numbering_and_alias_rename():
    counter = NameCounter()
    macros = MacroTable()
    macros.load_text(MNIST_MACROS, "Macros.ndl", counter=counter)
    after_macros = counter.value
    net = build(MNIST_NET, macros=macros, counter=counter)
    # load section: featDim, labelDim, features, featScale (+ its 0.0039 literal),
    # featScaled, labels = 7 numbers; hiddenDim takes the next; h1 and ol take 6;
    # ce, errs, top5Errs take 3; the nested Const(5) is the one after, then its 5.
    const = after_macros + 7 + 1 + 6 + 3 + 1
    assert net.get(f"unnamed{const}").op == "LearnableParameter"
    assert float(net.get(f"unnamed{const}").value.ravel()[0]) == 5.0
    assert counter.value == const + 1
    # OutputNodes = ol renamed the instance: its nodes are OutputNodes.*
    assert {"OutputNodes.W", "OutputNodes.b", "OutputNodes.t", "OutputNodes.z"} <= names(net)
    assert not any(n.startswith("ol.") for n in names(net))
    assert [n.name for n in net.group("output")] == ["OutputNodes.z"]
    assert [i.name for i in net.get("top5Errs").inputs] == ["labels", "OutputNodes.z",
                                                           f"unnamed{const}"]
    # initValueScale=parmScale reads the caller's constant through the formal parameter
    assert net.get("h1.W").attrs["init"]["scale"] == 1.0


def test_nested_calls_get_prefixed_unnamed_names():
    macros = MacroTable.standard()
    macros.load_text("Lay(x) = [ y = Sigmoid(Plus(x, x)) ]", counter=NameCounter())
    counter = NameCounter()
    net = build("a = Input(3, tag=feature)\nL = Lay(a)\nz = Tanh(Sigmoid(a))", macros=macros,
                counter=counter)
    # a=1 and its literal 3=2, L=3 (its body copy: Plus -> 4), z=5, Sigmoid -> 6
    assert net.get("L.unnamed4").op == "Plus"
    assert net.get("unnamed6").op == "Sigmoid"
    assert [i.name for i in net.get("L.y").inputs] == ["L.unnamed4"]
    assert counter.value == 6


def test_nameless_statement_of_a_one_line_macro_keeps_its_definition_name():
    macros = MacroTable()
    counter = NameCounter()
    macros.load_text("RFF_R(x1, w1, b1) = RectifiedLinear(Plus(Times(w1, x1), b1))",
                     counter=counter)
    assert counter.value == 3  # definition-time parsing uses up numbers
    net = build("x = Input(4, tag=feature)\nW = Parameter(2, 4)\nb = Parameter(2)\n"
                "h = RFF_R(x, W, b)\nOutputNodes = (h)", macros=macros, counter=counter)
    assert net.get("h.unnamed1").op == "RectifiedLinear"
    assert [n.name for n in net.group("output")] == ["h.unnamed1"]


@pytest.mark.parametrize("definition", [
    "M(a, b)\n{\n y = Plus(a, b)\n}",
    "M(a, b)\n[\n y = Plus(a, b)\n]",
    "M(a, b) = [\n y = Plus(a, b)\n]",
    "M(a, b) = { y = Plus(a, b) }",
])
def test_macro_definition_forms(definition):
    net = build(definition + "\nx = Input(3, tag=feature)\nm = M(x, x)")
    assert [i.name for i in net.get("m.y").inputs] == ["x", "x"]


def test_macro_return_value_is_the_symbol_named_like_the_macro():
    net = build("LogP(l) = [ LogP = Log(P)\n P = Mean(l) ]\n"
                "l = Input(3, tag=feature)\nk = LogP(l)\nz = Exp(k)")
    assert [i.name for i in net.get("z").inputs] == ["k.LogP"]
    assert [i.name for i in net.get("k.LogP").inputs] == ["k.P"]


def test_macros_are_case_insensitive_and_symbols_shadow_nothing_else():
    net = build("x = input(3, tag=feature)\ny = SIGMOID(x)\nz = rbff(y, 2, 3)")
    assert net.get("y").op == "Sigmoid" and net.get("z.RL").op == "RectifiedLinear"


# ---- aliases, dot rule, forward references (§B.4) ------------------------------------------------
def test_alias_of_a_call_renames_the_node_and_constants_are_aliasable():
    net = build("x = Input(3, tag=feature)\nk = 3\nd = k\na = Sigmoid(x)\nb = a\n"
                "W = Parameter(d, 3)")
    assert net.get("a") is None and net.get("b").op == "Sigmoid"
    assert net.get("W").shape == (3, 3)


def test_dot_rule_quirk_and_forward_dotted_reference():
    net = build("x = Input(3, tag=feature)\nF = Sigmoid(x)\ny = Tanh(F.anything)\n"
                "z = Plus(L.BFF.FF.P, x)\nL = RBFF(x, 3, 3)")
    assert [i.name for i in net.get("y").inputs] == ["F"]
    assert [i.name for i in net.get("z").inputs] == ["L.BFF.FF.P", "x"]


def test_forward_reference_makes_a_recurrent_loop():
    net = build("x = Input(3, tag=feature)\nd = PastValue(3, out)\nout = Plus(x, d)")
    assert net.get("d").inputs[0].name == "out"
    net.validate()


def test_unresolved_reference_error_names_it_with_location():
    with pytest.raises(ParseError) as err:
        build("x = Input(3, tag=feature)\ny = Plus(x, nowhere)\n", source="n.ndl")
    assert "could not be resolved 'nowhere'" in str(err.value)
    loc = err.value.location
    assert (loc.file, loc.line, loc.column) == ("n.ndl", 2, 13)


# ---- tags and special lists (§B.8) ---------------------------------------------------------------
def test_tags_and_lists_add_up_with_aliases():
    net = build("f = Input(3, tag=feature)\nl = Input(3, tag=LABEL)\nz = Sigmoid(f, tag=output)\n"
                "c = SquareError(l, z, tag=Criteria)\ne = SquareError(l, z, tag=evalFoo)\n"
                "e2 = SquareError(l, z, tag=multiSeq)\nCriterionNodes=(e2)\nEvalNodes=(c, e)\n"
                "OutputNodes=(z)")
    g = {k: [n.name for n in v] for k, v in net.groups().items()}
    assert g["criterion"] == ["c", "e2"]
    assert g["evaluation"] == ["e", "c"]
    assert g["output"] == ["z"]


def test_tag_on_macro_call_goes_to_its_return_node():
    net = build("f = Input(3, tag=feature)\nh = SBFF(f, 2, 3, tag=\"output\")")
    assert [n.name for n in net.group("output")] == ["h.S"]


def test_invalid_tag_is_an_error():
    with pytest.raises(ParseError, match="Invalid group tag 'nonsense'"):
        build("f = Input(3, tag=nonsense)")


def test_network_without_feature_node_is_an_error():
    with pytest.raises(ParseError, match="featureNodes"):
        build("f = Input(3)\nz = Sigmoid(f)")
    net = build("f = Input(3)\nz = Sigmoid(f)\nFeatureNodes=(f)")
    assert [n.name for n in net.group("feature")] == ["f"]


def test_special_list_with_unknown_element_is_an_error():
    with pytest.raises(ParseError, match="Invalid node 'zz' as a\\(n\\) output node"):
        build("f = Input(3, tag=feature)\nOutputNodes=(f, zz)")


# ---- parameters ----------------------------------------------------------------------------------
def test_parameter_init_kinds_seeds_and_offset(tmp_path):
    matrix = tmp_path / "w.txt"
    matrix.write_text("1 2 3\n4 5 6\n")
    net = build(f"""f = Input(3, tag=feature)
        A = Parameter(2, 3, init=gaussian, initValueScale=2)
        B = Parameter(2, 3, init=fixedValue, value=1#INF)
        C = Parameter(2, 3, init=fromFile, initFromFilePath="{matrix}")
        D = Parameter(2, 3)
        E = Parameter(2, 3, randomSeed=99)
        K = Constant(0.5, rows=2, cols=3)""", seed=10)
    assert net.get("A").attrs["init"]["seed"] == 10 and net.get("D").attrs["init"]["seed"] == 11
    assert net.get("E").attrs["init"]["seed"] == 99
    assert (net.get("B").value == float("inf")).all()
    # a text matrix has one CNTK row per line; numpy order is its transpose
    assert net.get("C").value.tolist() == [[1, 4], [2, 5], [3, 6]]
    assert net.get("K").value.shape == (3, 2) and net.get("K").learning_rate_multiplier == 0
    assert net.get("A").value.std() > 0


def test_zero_dimension_is_inferred_and_initialised_by_validation():
    net = build("f = Input(5, tag=feature)\nW = Parameter(4, 0)\nz = Times(W, f)")
    assert net.get("W").value.shape == (5, 4)
    assert net.get("W").attrs["init"]["seed"] == 1


def test_invalid_init_and_scalar_errors():
    with pytest.raises(ParseError, match="'init' must be one of"):
        build("f = Input(3, tag=feature)\nW = Parameter(3, init=Zero)")
    with pytest.raises(ParseError, match="integer"):
        build("f = Input(784.0, tag=feature)")
    with pytest.raises(ParseError, match="Scalar expected"):
        build("f = Input(3, tag=feature)\nW = Parameter(f)")
    with pytest.raises(ParseError, match="undefined Variable, 'HDim'"):
        build("f = Input(HDim, tag=feature)")
    with pytest.raises(ParseError, match="cannot be a node input"):
        build("f = Input(3, tag=feature)\nz = Plus(f, 1)")


def test_repetition_and_colon_in_argument_lists():
    net = build("H = 3\nf = Input(H, tag=feature)\nW = Parameter(H*2)\nV = Parameter(2:3)")
    assert net.get("W").shape == (3, 3) and net.get("V").shape == (3, 2)


def test_input_reuse_and_duplicate_names():
    net = build("f = Input(3, tag=feature)\nM(x) = [ f = Input(3) ]\nz = Sigmoid(f)")
    assert len(net.group("feature")) == 1
    with pytest.raises(ParseError, match="Duplicated name"):
        build("f = Input(3, tag=feature)\nL.S = Sigmoid(f)\nL = SBFF(f, 2, 3)")


# ---- errors with locations -----------------------------------------------------------------------
@pytest.mark.parametrize("text, message, line", [
    ("x = Input(3, tag=feature)\nTimes = Sigmoid(x)", "reserved", 2),
    ("x = Input(3, tag=feature)\ny = Sigmod(x)", "Undefined function or macro 'Sigmod'", 2),
    ("x = Input(3, tag=feature)\n\n\n  y x", "does not contain an '=' sign", 4),
    ("x = Input(3, tag=feature)\ny = Sigmoid(x)\ny = Tanh(x)", "reassigning", 3),
    ("M(a) = [ y = Sigmoid(a) ]\nM(b) = [ y = Tanh(b) ]", "already defined", 2),
    ("x = Input(3, tag=feature)\ny = RBFF(x, 3)", "Parameter mismatch, 2 parameters provided, 3",
     2),
    ("x = Input(3, tag=feature)\ny = RBFF(x, tag=output, 3, 3)", "optional parameter", 2),
    ("Sigmoid(a) = [ y = Tanh(a) ]", "built-in", 1),
    ("M(Plus) = [ y = Tanh(Plus) ]", "name of a function", 1),
    ("M(a) = [ y = Nope(a) ]", "Undefined function or macro 'Nope'", 1),
    ("x = \n y = 2", "has no value", 1),
    ("x = Input(3, tag=feature)\ny = Atan(x)", "undefined operation", 2),
    ("x = Input(3, tag=feature)\ny = Plus(x)", "positional arguments", 2),
])
def test_errors_say_what_and_where(text, message, line):
    with pytest.raises(NetsurgeonError) as err:
        build(text, source="e.ndl")
    assert message in str(err.value)
    assert err.value.location is not None and err.value.location.line == line
    assert str(err.value).startswith(f"e.ndl:{line}:")


def test_error_location_survives_comments_and_variables():
    text = "# header\nx = Input($D$, tag=feature)   # c\n\n  y = Plus(x, $Q$)\n"
    with pytest.raises(ParseError) as err:
        build(text, source="v.ndl", variables={"D": "3", "q": "missing"})
    loc = err.value.location
    assert (loc.line, loc.column) == (4, 15)


def test_undefined_load_section_is_an_error():
    with pytest.raises(ParseError, match="section 'nope'"):
        build("load=nope\nrun=net\nnet=[ x = Input(3, tag=feature) ]")


def test_run_argument_overrides_the_file():
    text = "run=a\na=[ x = Input(3, tag=feature) ]\nb=[ y = Input(4, tag=feature) ]"
    assert names(build(text)) == {"x"}
    assert names(build(text, run="b")) == {"y"}
    assert names(build(text, run="a:b")) == {"x", "y"}


def test_sections_with_the_same_name_merge():
    net = build("run=n\nn=[ x = Input(3, tag=feature) ]\nn=[ y = Sigmoid(x) ]")
    assert names(net) == {"x", "y"}


def test_deep_nesting_gives_a_clear_error_not_a_recursion_error():
    text = "x = Input(3, tag=feature)\ny = " + "Sigmoid(" * 2000 + "x" + ")" * 2000
    with pytest.raises(ParseError, match="nested"):
        build(text)
    deep_arrays = "x = " + "(" * 5000 + "1" + ")" * 5000
    with pytest.raises(ParseError, match="nested"):
        build(deep_arrays)


# ---- lexer quirks seen through NDL (§A.3) --------------------------------------------------------
def test_leading_minus_becomes_a_separator_and_quotes_protect():
    # Scale(-1, x): '-' right after '(' is the block's separator, so the arguments are 1 and x
    with pytest.raises(ParseError, match="cannot be a node input"):
        build("x = Input(3, tag=feature)\ny = Scale(-1, x)")
    net = build("x = Input(3, tag=\u201cfeature\u201d)\nk = Constant(-1)\ny = Scale(k, x)")
    assert [i.name for i in net.get("y").inputs] == ["k", "x"]


def test_semicolons_and_comment_quirk():
    net = build("x = Input(3, tag=feature) ; y = Sigmoid(x)   # comment\n"
                "z = Parameter(3, init=fixedValue, value=1#INF)\n")
    assert net.get("y").op == "Sigmoid"
    assert float(net.get("z").value[0]) == float("inf")
    # the first '#' of the line is not after a blank, so the comment is kept and parsed
    with pytest.raises(ParseError, match="does not contain an '=' sign: '# note'") as err:
        build("x = Input(3, tag=feature)\nz = Parameter(3, init=fixedValue, value=1#INF)  # note\n")
    assert (err.value.location.line, err.value.location.column) == (2, 49)


def test_dotted_keys_and_later_references_by_node_name():
    net = build("x = Input(3, tag=feature)\nCE.BFF = BFF(x, 2, 3)\ny = Sigmoid(CE.BFF.FF.P)")
    assert [i.name for i in net.get("y").inputs] == ["CE.BFF.FF.P"]


def test_values_come_from_the_init_attribute():
    """A parameter's value is what ``ops.init.initialize`` makes of its ``init`` attribute (the
    seed included), whether made at once or after validation inferred a 0 dimension."""
    import numpy as np

    from netsurgeon.ops.init import initialize

    net = build("f = Input(5, tag=feature)\nA = Parameter(3, 5, init=heNormal)\n"
                "B = Parameter(2, 0, init=gaussian, initValueScale=3)\n"
                "ta = Times(A, f)\ntb = Times(B, ta)", seed=7)
    for name, shape in (("A", (5, 3)), ("B", (3, 2))):
        node = net.get(name)
        assert node.value.shape == shape
        assert np.array_equal(node.value, initialize(shape, dict(node.attrs["init"])))
    assert [net.get(n).attrs["init"]["seed"] for n in "AB"] == [7, 8]
    net.lint()
