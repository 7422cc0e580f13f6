"""BS.Seq2Seq (bs-library.md §2.10): the fixed-window attention hook, and the greedy and beam
search decoders built with BS.Network.Edit, against the spec's node names and against numpy
decoders of the same small model.

The model is the smallest one with a decoder loop as CNTK's G2P example wires it: a tanh RNN
over the previous token, fed by ``decoderHistoryHook`` (the label, delayed by the model), with
a beam axis of 1 on the token and the state (``labels1``, ``PastValue ((5:1), …)``) and the
state delayed through ``beamSearchReorderHook`` (a [1 x 1] one while training).
"""

from __future__ import annotations

import numpy as np
import pytest
from tests.lang.brainscript.test_library_spec import nodes

MODEL = """
    model = new ComputationNetwork [
        inputSequence = Input (3)
        labelSequence = Input (4)
        labels1 = SplitDimension (labelSequence, 1, 1)
        decoderHistoryHook = Pass (labels1)
        beamSearchReorderHook = Pass (Constant (1))
        decoderInput = BS.Boolean.If (BS.Loop.IsFirst (labelSequence), labels1,
                                      PastValue ((4:1), decoderHistoryHook))
        E = Parameter (5, 4) ; U = Parameter (5, 3) ; R = Parameter (5, 5) ; O = Parameter (4, 5)
        h = Tanh (E * decoderInput + U * inputSequence
                  + R * PastValue ((5:1), h * beamSearchReorderHook))
        z = O * h
        decoderHistoryFromOutput = Hardmax (z)
    ]
"""
LENGTHS = [5, 3]


def decoder(build, call: str):
    """The network of ``BrainScriptNetworkBuilder = (<call>)`` with the model inline: the
    builder's ``network`` member is at path ``network``, so the decoder's nodes are named
    ``network.…`` (CNTK's G2P log); the model's ``new ComputationNetwork`` resets the path,
    so its own nodes keep their names."""
    model = MODEL.strip().removeprefix("model = ")
    return build("(" + call.replace("(model", "(" + model) + ")\n")


def feeds():
    r = np.random.default_rng(0)
    return {"inputSequence": r.normal(size=(2, 5, 3)).astype(np.float32),
            "labelSequence": np.eye(4, dtype=np.float32)[r.integers(0, 4, size=(2, 5))]}


def numpy_decode(net, data, depth: int | None) -> np.ndarray:
    """Greedy (depth None) or beam search decoding of MODEL with the network's parameters."""
    P = {n: net.node(n).value.astype(np.float64) for n in "EURO"}
    x, lab = data["inputSequence"], data["labelSequence"]
    out = np.zeros(lab.shape)
    for b, n in enumerate(LENGTHS):
        D = depth or 1
        token, state = np.tile(lab[b, 0], (D, 1)), np.full((D, 5), 0.1)
        score, steps = np.array([0.0] + [-1e30] * (D - 1)), []
        for t in range(n):
            state_now = np.tanh(token @ P["E"] + x[b, t] @ P["U"] + state @ P["R"])
            z = state_now @ P["O"]
            paths = (z - np.log(np.exp(z).sum(-1, keepdims=True)) + score[:, None]).ravel()
            best = np.argsort(-paths, kind="stable")[:D]
            came_from, word, score = best // 4, best % 4, paths[best]
            steps.append((came_from, word))
            token, state = np.eye(4)[word], state_now[came_from]
        j = 0
        for t in range(n - 1, -1, -1):  # trace the best final hypothesis back
            came_from, word = steps[t]
            out[b, t] = np.eye(4)[word[j]]
            j = came_from[j]
    return out


def test_attention_hook_names(build):
    program = """x = Input (3)
labelAxis = DynamicAxis ()
lab = Input (4, dynamicAxis = labelAxis)
enc = BS.RNNs.RecurrentLSTMP (2, x, inputDim = 3)
m = [ H = BS.Seq2Seq.CreateAugmentWithFixedWindowAttentionHook (5, 3, lab, enc,
                                                                enableSelfStabilization = STAB)
      dec = BS.RNNs.RecurrentLSTMP (2, lab, inputDim = 4, augmentInputHook = H,
                                    augmentInputDim = 2) ]
h = m.dec.h
"""
    got = nodes(build(program.replace("STAB", "false")))
    H, A = "m.H", "m.dec.auxInput"
    B = f"{H}.projectedAttentionWindowBroadcast"
    assert got[f"{H}.attentionWindow.value"] == ("Reshape", (3, 2), [
        f"{H}.attentionWindow.value.x"])
    assert got[f"{B}.W"] == ("LearnableParameter", (2, 5), [])  # WeightParam (5, enc.dim)
    for member, shape in (("projectedValue", (3, 1, 5)), ("value", (3, 1, 2)),
                          ("valid", (3, 1, 1))):
        P = f"{B}.{member}"
        assert got[f"{P}.out"] == ("If", shape, [f"{P}.out.cond", f"{P}.dataPadded",
                                                  f"{P}.out.elseVal"])
        assert got[f"{P}.dataPadded"][0] == "ScatterPacked"
        assert got[f"{P}.data1"][:2] == ("Reshape", shape)  # SplitDimension (·, 1, 1)
    assert got[f"{B}.projectedValue.data1"][2] == [f"{B}.projectedValue.data1.node"]
    assert got[f"{B}.projectedValue.data1.node"] == ("Times", (3, 5), [
        f"{B}.W", f"{H}.attentionWindow.value"])
    # per call of the hook, at A = the LSTMP's auxInput
    assert got[f"{A}.W"] == ("LearnableParameter", (2, 5), [])
    assert got[f"{A}.projectedH"] == ("Times", (5,), [f"{A}.W", "m.dec.prevState.h"])
    assert got[f"{A}.tanHOut"] == ("Tanh", (3, 1, 5), [f"{A}.tanHOut.z"])
    assert got[f"{A}.tanHOut.z"] == ("Plus", (3, 1, 5), [f"{B}.projectedValue.out",
                                                           f"{A}.projectedH"])
    assert got[f"{A}.v.h"] == ("LearnableParameter", (5, 1), [])
    assert got[f"{A}.u"] == ("Times", (3, 1, 1), [f"{A}.v.h", f"{A}.u.TimesArgs[1].x"])
    assert got[f"{A}.u.TimesArgs[1].x"] == ("ElementTimes", (3, 1, 5), [f"{A}.tanHOut",
                                                                        f"{B}.valid.out"])
    assert got[f"{A}.uValid"] == ("Plus", (3, 1, 1), [f"{A}.u", f"{A}.uValid.PlusArgs[1]"])
    assert got[f"{A}.uValid.PlusArgs[1]"] == ("Log", (3, 1, 1), [f"{B}.valid.out"])
    assert got[f"{A}.attentionWeights.P"] == ("Exp", (3, 1, 1), [f"{A}.attentionWeights.P._"])
    assert got[f"{A}.attentionWeights.P._"][0] == "Minus"
    assert got[f"{A}.attentionWeights.Z.r"][:2] == ("ReduceElements", (1, 1, 1))
    assert got[f"{A}.weightedAttentionWindow"] == ("ElementTimes", (3, 1, 2), [
        f"{B}.value.out", f"{A}.attentionWeights.P"])
    avg = f"{A}.weightedAttentionAverage.x"
    assert got[avg] == ("Times", (1, 2), [f"{A}.weightedAttentionWindow", f"{avg}.y"])
    assert got[f"{avg}.y"] == ("LearnableParameter", (3,), [])  # OnesTensor (attentionSpan)
    # the LSTMP's extra input term A · aux
    assert avg in {i for n, (op, _, ins) in got.items() if op == "Times" for i in ins}

    got = nodes(build(program.replace("STAB", "true")))
    node = f"{B}.projectedValue.data1.node"
    assert got[node] == ("Times", (3, 5), [f"{B}.W", f"{node}.TimesArgs[1].result"])
    assert got[f"{node}.TimesArgs[1].x"] == ("ElementTimes", (3, 2), [
        f"{H}.attentionWindow.value", f"{H}.attentionWindow.valid"])
    assert got[f"{A}.projectedH"][2] == [f"{A}.W", f"{A}.projectedH.TimesArgs[1].result"]
    S = f"{A}.weightedAttentionAverage"
    assert got[f"{S}.result"] == ("ElementTimes", (1, 2), [f"{S}.beta", f"{S}.x"])
    assert got[f"{S}.fInv"] == ("Reciprocal", (1,), [f"{S}.f"])


def test_greedy_decoder_feeds_its_own_output_back(build):
    from netsurgeon.runtime import evaluate

    net = decoder(build, "BS.Seq2Seq.GreedySequenceDecoderFrom (model)")
    got = nodes(net)
    assert got["network.decodeOut"] == ("Pass", (1, 4), ["network.decodeOut._"])  # beam of 1
    assert got["network.decodeOut._"] == ("Hardmax", (1, 4), ["z"])
    assert got["network.inputsOut"] == ("Pass", (3,), ["inputSequence"])
    assert got["network.labelsOut"] == ("Pass", (4,), ["labelSequence"])
    assert {n.name for n in net.groups()["output"]} == {
        "network.decodeOut", "network.inputsOut", "network.labelsOut"}
    # the edited copies form the loop: the delay reads decoderHistoryFromOutput, one node of
    # each name (no original left beside its copy)
    assert got["decoderInput.elseVal"] == ("PastValue", (1, 4), ["decoderHistoryFromOutput"])
    assert "decoderHistoryHook" not in got and not any(n.startswith("_") for n in got)
    data = feeds()
    out = evaluate(net, data, ["network.decodeOut"], lengths=LENGTHS)["network.decodeOut"]
    want = numpy_decode(net, data, None)
    np.testing.assert_array_equal(out.reshape(want.shape), want)
    forced = evaluate(net, data, ["network.labelsOut"], lengths=LENGTHS)["network.labelsOut"]
    assert not np.array_equal(want, forced)  # the output differs from the fed labels


def test_beam_search_decoder_names(build):
    net = decoder(build, "BS.Seq2Seq.BeamSearchSequenceDecoderFrom (model, 3)")
    got = nodes(net)
    Q = "network"
    init = f"{Q}.initialPathScores.out"
    assert got[f"{init}.out"] == ("RowStack", (3, 1), [f"{init}._[0]", f"{init}._[1]"])
    assert got[f"{init}._[0]"] == ("LearnableParameter", (1, 1), [])
    assert got[f"{init}._[1]"] == ("LearnableParameter", (2, 1), [])  # [1 x D-1]
    assert got[f"{Q}.finalHyp.out"] == ("RowStack", (3,), [f"{Q}.finalHyp.out.inputs[0]",
                                                           f"{Q}.finalHyp.out.inputs[1]"])
    assert got[f"{Q}.logLLs.out.out"] == ("RowStack", (3, 4), [
        f"{Q}.logLLs.cols[{d}]" for d in range(3)])
    assert got[f"{Q}.logLLs.cols[1]"] == ("LogSoftmax", (1, 4), [f"{Q}.logLLs.cols[1].z"])
    assert got[f"{Q}.logLLs.cols[1].z"] == ("Slice", (1, 4), ["z"])
    # registry axes: -k is CNTK axis k
    assert net.node(f"{Q}.logLLs.cols[1].z").attrs["axis"] == (-2,)  # Slice (1, 2, axis=2)
    assert net.node(f"{Q}.logLLs.cols[1].z").attrs["begin"] == (1,)
    assert net.node(f"{Q}.topPaths.spliced.out").attrs["axis"] == -3
    assert net.node(f"{Q}.tokens.from").attrs["output_rank"] == 0
    assert net.node(f"{Q}.decodeHyp").attrs["output_rank"] == 2
    e = f"{Q}.expandedPathScores"
    assert got[e] == ("Plus", (3, 4), [f"{Q}.logLLs.out.out", f"{e}.PlusArgs[1]"])
    assert got[f"{e}.PlusArgs[1]"] == ("If", (3, 1), [f"{e}.PlusArgs[1].cond", f"{init}.out",
                                                      f"{e}.PlusArgs[1].elseVal"])
    assert got[f"{e}.PlusArgs[1].cond"][0] == "PastValue"  # IsFirst
    assert got[f"{e}.PlusArgs[1].elseVal"] == ("PastValue", (3, 1), [f"{Q}.tokens.score"])
    assert got[f"{Q}.topPaths.spliced.out"] == ("RowStack", (3, 3, 4), [
        f"{Q}.topPaths.recursion[{n}].best" for n in range(3)])
    assert got[f"{Q}.topPathScores"] == ("ElementTimes", (3, 3, 4), [
        f"{Q}.topPaths.spliced.out", e])
    assert got[f"{Q}.tokens.from"] == ("Times", (3, 3), [f"{Q}.tokens.from.x",
                                                         f"{Q}.topPaths.spliced.out"])
    assert got[f"{Q}.tokens.from.x"] == ("LearnableParameter", (4,), [])
    # verified in CNTK's G2P log: the TransposeDimensions clashes with the OnesTensor
    assert got[f"{Q}.tokens.word"] == ("Times", (3, 4), [f"{Q}.tokens.word.x",
                                                         f"_{Q}.tokens.word.x"])
    assert got[f"{Q}.tokens.word.x"] == ("LearnableParameter", (3,), [])
    assert got[f"_{Q}.tokens.word.x"] == ("TransposeDimensions", (3, 4, 3), [
        f"{Q}.topPaths.spliced.out"])
    assert got[f"{Q}.tokens.score"] == ("Times", (3, 1), [f"{Q}.tokens.score.TimesArgs[0]",
                                                          f"{Q}.topPathScores"])
    assert got[f"{Q}.traceback"][:2] == ("If", (3,))
    assert got[f"{Q}.decodeHyp"] == ("Times", (3, 4), [f"{Q}.topPaths.spliced.out",
                                                       f"{Q}.traceback"])
    assert got[f"{Q}.decode"][:2] == ("Times", (4,))
    for out, fed in (("decodeOut", f"{Q}.decode"), ("inputsOut", "inputSequence"),
                     ("labelsOut", "labelSequence")):
        assert got[f"{Q}.{out}"][0] == "Pass" and got[f"{Q}.{out}"][2] == [fed]
    # the model's hooks now carry the beam; its delays were widened to [dims x 3]
    assert got["decoderInput.elseVal"] == ("PastValue", (3, 4), [f"{Q}.tokens.word"])
    assert got["h.z.PlusArgs[1].TimesArgs[1].input"] == ("Times", (3, 5), [
        "h", f"{Q}.tokens.from"])
    assert got["h.z.PlusArgs[1].TimesArgs[1]"][:2] == ("PastValue", (3, 5))
    assert got["z"] == ("Times", (3, 4), ["O", "h"])


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_beam_search_decodes_as_numpy(build, depth):
    from netsurgeon.runtime import evaluate

    net = decoder(build, f"BS.Seq2Seq.BeamSearchSequenceDecoderFrom (model, {depth})")
    data = feeds()
    out = evaluate(net, data, ["network.decodeOut"], lengths=LENGTHS)["network.decodeOut"]
    want = numpy_decode(net, data, depth)
    np.testing.assert_array_equal(out, want)
    if depth == 1:  # a beam of one is greedy decoding
        np.testing.assert_array_equal(want, numpy_decode(net, data, None))
    if depth == 2:  # and a wider beam finds another path on these inputs
        assert not np.array_equal(want, numpy_decode(net, data, None))
