"""The registry is complete and consistent, and docs/ops.md is generated from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from netsurgeon.errors import RegistryError
from netsurgeon.ops import OPS, AttrSpec, Category, FunctionSpec, OpRegistry, OpSpec, build_registry
from netsurgeon.ops._doc import render_markdown
from netsurgeon.ops._shapes import same_as_input

ROOT = Path(__file__).resolve().parents[2]

# cntk-model-format.md §7.1-7.3: every op a v1 file can hold
V1_OPS = """
LearnableParameter InputValue SparseInputValue Times TransposeTimes Plus Minus ElementTimes
Sigmoid Tanh RectifiedLinear CrossEntropyWithSoftmax ClassificationError SquareError Logistic
Convolution Pooling BatchNormalization PastValue FutureValue Slice RowStack TransposeDimensions
QuantizedTimes MaxPooling AveragePooling ROIPooling MaxUnpooling Reshape LegacyReshape
ReduceElements RowRepeat Where Crop Mean InvStdDev Dropout RandomSample
RandomSampleInclusionFrequency NCEBasedCrossEntropyWithSoftmax EditDistanceError
OptimizedRNNStack EnvironmentInput Trace LatticeSequenceWithSoftmax ForwardBackward Cast
ConvolutionSequenceShape
Abs Acos Asin Cosh Cosine Sin Sinh Exp Log Floor Sqrt Reciprocal Negate StableSigmoid Pass
LabelsToGraph StraightThrough Softmax LogSoftmax Hardmax Clip If LogPlus DiagTimes Equal
NotEqual Less LessEqual Greater GreaterEqual CosDistance CosDistanceWithNegativeSamples
KhatriRaoProduct SumElements SumColumnElements Diagonal CrossEntropy
ClassBasedCrossEntropyWithSoftmax MatrixL1Reg MatrixL2Reg LambdaRank NDCG1Eval DummyCriterion
SequenceWithSoftmax LookupTable PerDimMeanVarNormalization PerDimMeanVarDeNormalization
ReconcileDynamicAxis PackedIndex GatherPacked ScatterPacked StopGradient EpochAccumulator
DynamicAxis
""".split()

# read aliases a v1 file (or BrainScript's operation=) may use
V1_ALIASES = {
    "ColumnElementTimes": "ElementTimes", "RowElementTimes": "ElementTimes",
    "Scale": "ElementTimes", "ErrorPrediction": "ClassificationError", "Delay": "PastValue",
    "RowSlice": "Slice", "Transpose": "TransposeDimensions",
    "ReconcileMBLayout": "ReconcileDynamicAxis", "RNN": "OptimizedRNNStack",
}

_KINDS = {"int": int, "float": float, "bool": bool, "str": str}


def test_every_v1_op_is_registered():
    missing = [n for n in V1_OPS if n not in OPS]
    assert not missing
    others = {op.name for op in OPS} - set(V1_OPS)
    assert set(OPS.op_set(Category.INTERNAL)) == {"TimesPlus", "ConvolutionPlus"}
    # ops/imported.py, and CNTK 2.x element-wise ops only v2 files (and ONNX) hold
    assert others == {"TimesPlus", "ConvolutionPlus", "GroupedConvolution", "Tan", "Atan",
                      "Asinh", "Atanh", "ExponentialLinearUnit", "Pow",
                      "TimeReverse", "Shift", "GMMLogLikelihood"}


@pytest.mark.parametrize("alias, canonical", sorted(V1_ALIASES.items()))
def test_op_aliases_resolve(alias, canonical):
    assert OPS.op(alias).name == canonical
    assert OPS.canonical_op_name(alias.upper()) == canonical
    assert alias in OPS.op(canonical).aliases


@pytest.mark.parametrize("op", list(OPS), ids=lambda o: o.name)
def test_op_is_complete(op: OpSpec):
    assert callable(op.infer_shape)
    lo, hi = op.arity
    assert lo >= 0 and (hi is None or hi >= lo)
    if hi is not None and hi > 0:
        assert len(op.input_names) == hi, "every input needs a name"
    assert op.dynamic in ("inherit", "always", "none")
    assert all(0 <= i < (hi if hi is not None else 1 << 30) for i in op.delayed_inputs)
    for name, attr in op.attrs.items():
        assert name == name.lower() and " " not in name, "attribute names are snake_case"
        assert isinstance(attr, AttrSpec) and attr.doc
        if attr.kind in _KINDS and attr.default is not None:
            assert isinstance(attr.default, _KINDS[attr.kind]), name
        if attr.kind in ("ints", "bools", "floats"):
            assert isinstance(attr.default, tuple), name
    assert op.categories, "every op has at least one category"
    assert all(isinstance(c, Category) for c in op.categories)
    if op.is_(Category.INTERNAL):
        assert not op.functions, "internal ops are made by passes only"
        return
    node = OPS.function(op.name, "node")
    assert node.op == op.name
    for alias in op.aliases:
        assert OPS.function(alias, "node") is node


def test_every_function_names_a_registered_op():
    for fn in OPS.functions():
        assert isinstance(fn, FunctionSpec)
        if fn.broken:
            continue
        assert OPS.has_op(fn.op), fn.name
        assert fn.forms, fn.name


def test_leaf_and_criterion_flags():
    for op in OPS:
        if op.is_(Category.CRITERION) or op.is_(Category.EVALUATION):
            assert op.dynamic == "none", op.name
        if op.is_(Category.LEAF):
            assert op.arity == (0, 0), op.name
    assert OPS.op("PastValue").delayed_inputs == frozenset({0})
    assert OPS.op("FutureValue").delayed_inputs == frozenset({0})


def test_registry_rejects_duplicates():
    reg = OpRegistry()
    spec = OpSpec("Foo", (1, 1), same_as_input(0), aliases=("Bar",))
    reg.register(spec)
    with pytest.raises(RegistryError):
        reg.register(OpSpec("bar", (1, 1), same_as_input(0)))
    fn = FunctionSpec("Foo", "Foo", languages=frozenset({"ndl"}))
    reg.add_function(fn)
    with pytest.raises(RegistryError):
        reg.add_function(FunctionSpec("FOO", "Foo", languages=frozenset({"ndl", "bs"})))
    reg.add_function(FunctionSpec("Foo", "Foo", languages=frozenset({"node"})))  # other language
    assert reg.function("foo", "node") is not fn
    assert reg.function("foo", "ndl") is fn


def test_build_registry_is_fresh():
    other = build_registry()
    assert other is not OPS and len(other) == len(OPS)


def test_docs_are_current():
    text = (ROOT / "docs" / "ops.md").read_text(encoding="utf-8")
    assert text == render_markdown(OPS), "regenerate: python -m netsurgeon.ops._doc > docs/ops.md"


def test_ops_never_import_torch_or_graph():
    for path in (ROOT / "src" / "netsurgeon" / "ops").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert "import torch" not in source and "netsurgeon.graph" not in source, path.name


def test_define_refuses_category_strings():
    from netsurgeon.ops._build import define

    with pytest.raises(TypeError, match="Category members"):
        define(OpRegistry(), "Foo", (1, 1), same_as_input(0), categories={"elemntwise"})


@pytest.mark.parametrize("kind, given, canonical", [
    ("ints", [3, 3.0], (3, 3)), ("ints", 2, (2,)), ("bools", [1, False], (True, False)),
    ("int", 4.0, 4), ("float", 2, 2.0), ("bool", 1, True), ("str", "x", "x"),
])
def test_attribute_kinds_coerce_to_canonical_values(kind, given, canonical):
    spec = AttrSpec(kind, doc="test")
    value = spec.coerce(given)
    assert value == canonical and type(value) is type(canonical)
    assert spec.accepts(value)
    assert spec.accepts(given) == (given == value and type(given) is type(value))


@pytest.mark.parametrize("kind, bad", [("int", "3"), ("int", 2.5), ("bool", 2), ("ints", ["a"]),
                                       ("str", 3), ("float", True)])
def test_attribute_kinds_reject_other_values(kind, bad):
    from netsurgeon.errors import ArgumentError

    with pytest.raises(ArgumentError):
        AttrSpec(kind, doc="test").coerce(bad)
