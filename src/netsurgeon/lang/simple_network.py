"""CNTK's SimpleNetworkBuilder for the standard feed-forward net (``rnnType=SIMPLENET``).

Spec: cntk-config-driver.md §11.3 (keys), §9.1 (init) and §9.2 (seeds). Node names, ops,
shapes and groups follow the node list CNTK printed for Simple2d/OneHidden
(``layerSizes=2:50*2:2``, Sigmoid, CrossEntropyWithSoftmax + ClassificationError,
``applyMeanVarNorm``, ``needPrior``)::

    features, labels                     InputValue
    MeanOfFeatures, InvStdOfFeatures     Mean / InvStdDev (features)      applyMeanVarNorm
    MVNormalizedFeatures                 PerDimMeanVarNormalization
    W0, B0, W0*features, W0*features+B0, H1
    W1, B1, W1*H1, W1*H1+B1, H2          (one block per further hidden layer)
    W2, B2, W2*H1, HLast                 (CNTK names the last Times W<L>*H<L-1>)
    CrossEntropyWithSoftmax              criterion (named after the criterion)
    EvalClassificationError              evaluation ("Eval" + the criterion's name)
    PosteriorProb                        Softmax(HLast)
    Prior, LogOfPrior, ScaledLogLikelihood   needPrior: Mean(labels), Log, Minus(HLast, ·)

Weights are ``uniform`` (U(−s, s), s = 0.05 × initValueScale, the spec's §9.1 rule) or
``gaussian`` (N(0, 0.2/√fanIn × initValueScale)) per ``uniformInit``, seeded by a local
counter starting at 1 per build (W0 1, W1 2, ...); biases are fixed 0. The output group holds
ScaledLogLikelihood with needPrior, else HLast (inferred: PosteriorProb is not an output).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netsurgeon.errors import NetsurgeonError
from netsurgeon.lang.config import split_array, to_bool, to_float, to_int, unquote

__all__ = ["build_simple_network", "build_from_lookup"]

#: layerTypes -> op
_ACTIVATIONS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "rectifiedlinear": "RectifiedLinear"}
#: trainingCriterion (lower case) -> op (the node is named after the op)
_TRAINING = {"crossentropywithsoftmax": "CrossEntropyWithSoftmax",
             "squareerror": "SquareError", "logistic": "Logistic"}
#: evalCriterion (lower case) -> op (the node is "Eval" + op)
_EVAL = {"classificationerror": "ClassificationError", "errorprediction": "ClassificationError",
         "crossentropywithsoftmax": "CrossEntropyWithSoftmax",
         "squareerror": "SquareError", "logistic": "Logistic"}
#: keys this builder refuses when set (features it does not build)
_REFUSED = ("vocabSize", "nbrClass", "word2cls", "cls2index", "noise_number",
            "recurrentLayer", "directConnect")


def _init(kind: str, scale: float = 1.0, seed: int = -1, value: float = 0.0) -> dict[str, Any]:
    return {"kind": kind, "scale": scale, "value": value, "seed": seed, "path": "",
            "literal": "", "kernel": (0, 0)}


def _text(get: Callable[[str], str | None], key: str) -> str | None:
    value = get(key)
    if value is None:
        return None
    value = unquote(str(value).strip())
    return None if value == "default" else value


def build_simple_network(get: Callable[[str], str | None], *,
                         source: str | None = None) -> Any:
    """The network SimpleNetworkBuilder builds from the keys ``get`` returns (raw strings).

    Raises:
        NetsurgeonError: a key has a value this builder does not build (one line, naming it).
    """
    from netsurgeon.graph import Network, prepare

    where = f"{source}: " if source else ""

    def fail(key: str, message: str) -> NetsurgeonError:
        err = NetsurgeonError(f"{where}SimpleNetworkBuilder: {key}: {message}")
        err.config_key = key  # type: ignore[attr-defined]  # the driver locates the error there
        return err

    def flag(key: str, default: bool) -> bool:
        raw = _text(get, key)
        if raw is None or raw == "":
            return default
        try:
            return to_bool(raw, f"SimpleNetworkBuilder {key}")
        except NetsurgeonError as exc:
            raise fail(key, exc.message) from None

    rnn = _text(get, "rnnType")
    if rnn is not None and rnn.upper() != "SIMPLENET":
        raise fail("rnnType", f"'{rnn}' is not supported (only SIMPLENET)")
    for key in _REFUSED:
        raw = _text(get, key)
        if raw not in (None, "", "0", "false"):
            raise fail(key, f"'{raw}' is not supported (class/recurrent LM options are not built)")
    if flag("sparseinput", False) or flag("sparseInput", False):
        raise fail("sparseinput", "sparse input is not supported")
    if flag("addDropoutNodes", False):
        raise fail("addDropoutNodes", "true is not supported (CNTK's dropout node names are "
                                      "not known)")

    sizes_text = _text(get, "layerSizes") or "100"
    try:
        sizes = [to_int(s, "layerSizes element") for s in split_array(sizes_text)]
    except NetsurgeonError as exc:
        raise fail("layerSizes", exc.message) from None
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise fail("layerSizes", f"'{sizes_text}' needs an input and an output size, all > 0")
    out_size = to_int(_text(get, "outputLayerSize") or "-1", "outputLayerSize")
    if out_size > 0:
        sizes[-1] = out_size

    layer_type = _text(get, "layerTypes") or "Sigmoid"
    act = _ACTIVATIONS.get(layer_type.lower())
    if act is None:
        raise fail("layerTypes", f"'{layer_type}' is not supported (Sigmoid, Tanh, "
                                 "RectifiedLinear)")
    def criterion(key: str, table: dict[str, str], example: str) -> str:
        text = _text(get, key)
        if not text:
            raise fail(key, f"required (e.g. {example})")
        op = table.get(text.lower())
        if op is None:
            raise fail(key, f"'{text}' is not supported "
                            f"({', '.join(sorted(set(table.values())))})")
        return op

    crit = criterion("trainingCriterion", _TRAINING, "CrossEntropyWithSoftmax")
    ev = criterion("evalCriterion", _EVAL, "ClassificationError")
    try:
        scale = to_float(_text(get, "initValueScale") or "1.0", "initValueScale")
    except NetsurgeonError as exc:
        raise fail("initValueScale", exc.message) from None
    kind = "uniform" if flag("uniformInit", True) else "gaussian"
    mvn = flag("applyMeanVarNorm", False)
    prior = flag("needPrior", False)

    net = Network("SimpleNetworkBuilder")
    seed = 0

    def group(name: str, node: Any) -> None:
        net.add_to_group(name, node)
        net.update(node, tags=node.tags | {name})

    def weight(name: str, rows: int, cols: int) -> Any:
        nonlocal seed
        seed += 1
        return net.add(name, "LearnableParameter", shape=(cols, rows), dynamic=False,
                       attrs={"init": _init(kind, scale, seed)})

    def bias(name: str, rows: int) -> Any:
        return net.add(name, "LearnableParameter", shape=(1, rows), dynamic=False,
                       attrs={"init": _init("fixedValue", 1.0, -1, 0.0)})

    features = net.add("features", "InputValue", shape=(sizes[0],), dynamic=True,
                       attrs={"dynamic_axis": ""})
    labels = net.add("labels", "InputValue", shape=(sizes[-1],), dynamic=True,
                     attrs={"dynamic_axis": ""})
    group("feature", features)
    group("label", labels)
    x = features
    if mvn:
        mean = net.add("MeanOfFeatures", "Mean", [features], attrs={"has_computed": False})
        inv = net.add("InvStdOfFeatures", "InvStdDev", [features], attrs={"has_computed": False})
        x = net.add("MVNormalizedFeatures", "PerDimMeanVarNormalization", [features, mean, inv])
    times = {"output_rank": 1, "infer_input_rank_to_map": -1}
    hidden = len(sizes) - 2
    in_name = "features"
    for i in range(hidden):
        w = weight(f"W{i}", sizes[i + 1], sizes[i])
        t = net.add(f"W{i}*{in_name}", "Times", [w, x], attrs=dict(times))
        b = bias(f"B{i}", sizes[i + 1])
        p = net.add(f"W{i}*{in_name}+B{i}", "Plus", [t, b])
        x = net.add(f"H{i + 1}", act, [p])
        in_name = f"H{i + 1}"
    w = weight(f"W{hidden}", sizes[-1], sizes[-2])
    t = net.add(f"W{hidden}*H{hidden - 1}" if hidden else f"W0*{in_name}", "Times", [w, x],
                attrs=dict(times))
    b = bias(f"B{hidden}", sizes[-1])
    last = net.add("HLast", "Plus", [t, b])
    criterion = net.add(crit, crit, [labels, last])
    group("criterion", criterion)
    evaluation = net.add(f"Eval{ev}", ev, [labels, last])
    group("evaluation", evaluation)
    net.add("PosteriorProb", "Softmax", [last])
    if prior:
        p_node = net.add("Prior", "Mean", [labels], attrs={"has_computed": False})
        log = net.add("LogOfPrior", "Log", [p_node])
        group("output", net.add("ScaledLogLikelihood", "Minus", [last, log]))
    else:
        group("output", last)
    prepare(net)
    return net


def build_from_lookup(get: Callable[[str], str | None], *, source: str | None = None) -> Any:
    """Alias of :func:`build_simple_network` (the driver's entry point)."""
    return build_simple_network(get, source=source)
