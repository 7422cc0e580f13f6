"""OptimizedRNNStack: CNTK's cuDNN RNN stack, run with PyTorch's own RNN kernels.

The node's inputs are the weights ``W`` (one parameter holding every weight and bias of the
stack) and the sequence ``x``; its output is, per frame, the hidden state of the last layer
(``[forward, backward]`` concatenated when bidirectional), zero initial states, no dropout.

Weight layout. The specs (bs-library.md, cntk-model-format.md, cntk-v2-format.md) say only that
``W`` is one learnable tensor whose dimensions are inferred (``ParameterTensor {0:0}``,
``initFilterRank=0, initOutputRank=-1``); CNTK hands its memory to cuDNN unchanged. So the
layout is cuDNN's canonical one (``cudnnGetRNNLinLayerMatrixParams`` /
``cudnnGetRNNLinLayerBiasParams`` of the legacy single-buffer API, as CNTK 2.7 used it), read
from the flattened ``W`` (numpy C order = CNTK's column-major memory):

1. every weight matrix first, for each layer, for each direction (forward, then backward):
   the input matrices of the gates, then the recurrent matrices of the gates; each matrix is
   ``(hidden, in)`` row-major (``in`` = the input dimension for layer 0, ``hidden`` x
   directions above), so the gates of one kind together read as PyTorch's ``weight_ih``
   ``(gates * hidden, in)`` and ``weight_hh`` ``(gates * hidden, hidden)``;
2. then every bias, in the same layer/direction order: the input biases of the gates, then the
   recurrent biases of the gates (two bias vectors per gate, as cuDNN).

Gate order is cuDNN's, which is also PyTorch's: LSTM i, f, g (cell candidate), o; GRU r, z, n
with ``n = tanh(W_n x + b_Wn + r * (R_n h + b_Rn))``; rnnReLU / rnnTanh one gate. The element
count is therefore ``sum over layers and directions of gates * hidden * (in + hidden + 2)``.

Sequences: the frames ``(batch x time, *sample)`` are packed by their lengths
(``pack_padded_sequence``), so padding never reaches the backward direction; padded output
frames are 0. No CNTK oracle: CNTK 2.7's CPU build cannot run OptimizedRNNStack (cuDNN only),
so the kernel is checked against a numpy reference only (tests/runtime/
test_op_reference_rnn_stack.py).
"""

from __future__ import annotations

from math import prod

from netsurgeon.errors import EvaluationError
from netsurgeon.graph import Node
from netsurgeon.runtime.lowerings import lowering

__all__ = ["GATES", "rnn_mode", "weight_layout", "weight_count"]

#: gates per cell of each mode (canonical spelling; see :func:`rnn_mode`)
GATES = {"lstm": 4, "gru": 3, "rnnReLU": 1, "rnnTanh": 1}
_FUNCTIONS = {"lstm": "torch.lstm", "gru": "torch.gru", "rnnReLU": "torch.rnn_relu",
              "rnnTanh": "torch.rnn_tanh"}
_SPELLINGS = {"lstm": "lstm", "gru": "gru", "rnnrelu": "rnnReLU", "rnntanh": "rnnTanh",
              "rnn_relu": "rnnReLU", "rnn_tanh": "rnnTanh"}


def rnn_mode(recurrent_op: str, node: str | None = None) -> str:
    """The canonical mode of a ``recurrent_op`` (v >= 14 spellings or the older LSTM, GRU,
    RNN_RELU, RNN_TANH)."""
    mode = _SPELLINGS.get(str(recurrent_op).lower())
    if mode is None:
        raise EvaluationError(f"unknown recurrent_op {recurrent_op!r} (lstm, gru, rnnReLU or "
                              "rnnTanh)", node=node)
    return mode


def weight_layout(mode: str, input_size: int, hidden: int, layers: int,
                  bidirectional: bool) -> list[tuple[int, tuple[int, ...]]]:
    """(offset, shape) in the flat cuDNN weights of each tensor PyTorch's RNN functions take,
    in their order: per layer, per direction, ``weight_ih, weight_hh, bias_ih, bias_hh``."""
    gates, dirs = GATES[mode], 2 if bidirectional else 1
    rows = gates * hidden
    matrices, offset = [], 0
    for layer in range(layers):
        width = input_size if layer == 0 else hidden * dirs
        for _ in range(dirs):
            matrices.append(((offset, (rows, width)), (offset + rows * width, (rows, hidden))))
            offset += rows * (width + hidden)
    out = []
    for w_ih, w_hh in matrices:
        out += [w_ih, w_hh, (offset, (rows,)), (offset + rows, (rows,))]
        offset += 2 * rows
    return out


def weight_count(mode: str, input_size: int, hidden: int, layers: int,
                 bidirectional: bool) -> int:
    """Number of elements of the weights of a stack (cuDNN's ``cudnnGetRNNParamsSize`` / 4)."""
    last_offset, last_shape = weight_layout(mode, input_size, hidden, layers, bidirectional)[-1]
    return last_offset + prod(last_shape)


def _fail(node: Node, message: str) -> EvaluationError:
    return EvaluationError(f"OptimizedRNNStack: {message}", node=node.name)


@lowering("OptimizedRNNStack")
def _rnn_stack(em, node, args):
    w, x = args
    a = node.attrs
    mode = rnn_mode(a["recurrent_op"], node.name)
    hidden, layers, bidir = int(a["hidden_size"]), int(a["num_layers"]), bool(a["bidirectional"])
    if a["axis"] != 1:
        raise _fail(node, f"only the dynamic axis is supported as the recurrence axis (axis "
                          f"{a['axis']})")
    if em.in_loop:
        raise _fail(node, "cannot run inside a recurrent loop (its input depends on its "
                          "own output through a delay)")
    if not x.dynamic:
        raise _fail(node, "the input has no sequence axis")
    if w.dynamic:
        raise _fail(node, "the weights must not have a sequence axis")
    if hidden <= 0 or layers <= 0:
        raise _fail(node, f"hidden_size {hidden} and num_layers {layers} must be positive")
    if 0 in x.shape or 0 in w.shape:
        raise _fail(node, f"the input {x.shape} or weights {w.shape} have unknown dimensions")
    size = prod(x.shape)
    need = weight_count(mode, size, hidden, layers, bidir)
    if prod(w.shape) != need:
        raise _fail(node, f"the weights have {prod(w.shape)} elements; a {layers}-layer "
                          f"{'bidirectional ' if bidir else ''}{mode} stack of hidden size "
                          f"{hidden} over inputs of dimension {size} needs {need} (cuDNN's "
                          "canonical layout)")
    flat = f"{w}.reshape(-1)"
    pieces = ", ".join(f"{flat}[{o}:{o + prod(s)}].reshape{s}".replace(",)", ")")
                       for o, s in weight_layout(mode, size, hidden, layers, bidir))
    params = em.static(f"[{pieces}]", node.name + "_weights")
    rnn = "torch.nn.utils.rnn"
    packed, h0, out = em.tmp("packed"), em.tmp("h0"), em.tmp("out")
    em.pre(f"{packed} = {rnn}.pack_padded_sequence({x}.reshape({em.batch}, {em.steps}, {size}), "
           f"{em.lengths}.cpu(), batch_first=True, enforce_sorted=False)")
    dirs = 2 if bidir else 1
    em.pre(f"{h0} = {packed}.data.new_zeros(({layers * dirs}, {em.batch}, {hidden}))")
    state = f"({h0}, {h0})" if mode == "lstm" else h0
    em.pre(f"{out} = {_FUNCTIONS[mode]}({packed}.data, {packed}.batch_sizes, {state}, {params}, "
           f"True, {layers}, 0.0, {em.training}, {bidir})[0]")
    return (f"{rnn}.pad_packed_sequence({rnn}.PackedSequence({out}, {packed}.batch_sizes, "
            f"{packed}.sorted_indices, {packed}.unsorted_indices), batch_first=True, "
            f"total_length={em.steps})[0].reshape({em.batch} * {em.steps}, {dirs * hidden})")
