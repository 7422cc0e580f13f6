"""Fuzzing the whole CNTK v2 reader (bytes to network), not only the wire codec.

Every real v2 file, truncated at many offsets and with bytes flipped (seeded, so every run
tries the same cases), either reads as a network or raises a one-line FormatError: never
another exception, never a hang, never a large allocation. Truncations are the codec's
errors and name the byte offset. Then the Dictionary itself is corrupted (a dropped operand,
an unknown uid, op code 999, cycles, a wrong value shape or type...): each is a one-line
FormatError naming the function or variable concerned. The wire codec's own fuzzing is in
test_wire.py.
"""

from __future__ import annotations

import copy
import random
import re
import resource
import signal
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from netsurgeon.errors import FormatError
from netsurgeon.formats._protobuf import read_varint
from netsurgeon.formats.cntk_v2 import wire
from netsurgeon.formats.cntk_v2.reader import read_bytes_model
from netsurgeon.formats.cntk_v2.wire import Shape, SizeT, Tensor, WireError
from netsurgeon.graph import Network

NAMES = ("LR_reg", "MC", "01_OneHidden", "cifar10.pretrained", "cifar10.ResNet",
         "slu.forward.nobn", "blocks/mlp_dense", "blocks/conv_bn_pool", "blocks/lstm_tagger",
         "blocks/nested_seq", "blocks/avgpool")
BIG = 100_000  # files from this size on get fewer flips, mostly outside the tensor payloads
CASE_SECONDS = 5.0  # one read taking longer than this counts as a hang
MEMORY_FACTOR, MEMORY_CONSTANT = 50, 1 << 20  # the peak allowed for one read of n bytes


@pytest.fixture(scope="module")
def files(cntk_dir: Path) -> dict[str, bytes]:
    root = cntk_dir / "v2"
    listed = {p.relative_to(root).with_suffix("").as_posix() for p in root.rglob("*.model")}
    assert listed == set(NAMES), "a v2 file was added or removed: update NAMES"
    found = {n: (root / f"{n}.model").read_bytes() for n in NAMES}
    for name, data in found.items():  # each reads; and the one-time costs (schema, caches)
        assert isinstance(read_bytes_model(data, name), Network)  # stay out of the peaks
    return found


class _Hang(Exception):
    """A read that ran past CASE_SECONDS."""


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Raise _Hang in the block after ``seconds`` (a no-op off the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(*_: object) -> None:
        raise _Hang(f"still reading after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _read(data: bytes, where: str) -> Network | FormatError:
    """The network of ``data``, or the FormatError it raised (any other exception, a hang
    or a peak allocation over the bound fails the test). Call under tracemalloc."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    try:
        with _deadline(CASE_SECONDS):
            result: Network | FormatError = read_bytes_model(data, where)
    except FormatError as err:
        result = err
    peak = tracemalloc.get_traced_memory()[1] - before
    assert peak < MEMORY_FACTOR * len(data) + MEMORY_CONSTANT, (where, len(data), peak)
    if isinstance(result, FormatError):
        assert "\n" not in str(result) and str(result).startswith(where), str(result)
    return result


def _run(cases: list[tuple[str, bytes]]) -> dict[str, Network | FormatError]:
    """Every case read once, under tracemalloc, with the process's peak RSS checked too
    (tracemalloc sees Python and numpy, not protobuf's own arena)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    tracemalloc.start()
    try:
        outcomes = {label: _read(data, label) for label, data in cases}
    finally:
        tracemalloc.stop()
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss
    assert grown < 256 << 10, f"peak RSS grew by {grown} KiB"
    return outcomes


def _top_boundaries(data: bytes) -> list[int]:
    """The offsets where a top-level record of the Dictionary ends (but the last)."""
    ends, pos = [], 0
    while pos < len(data):
        tag, pos = read_varint(data, pos)
        if tag & 7 == 0:
            pos = read_varint(data, pos)[1]
        else:  # wire type 2: version is the only varint at the top
            length, pos = read_varint(data, pos)
            pos += length
        ends.append(pos)
    return ends[:-1]


# ---- truncations ------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_truncations_are_located_format_errors(files, name):
    """40 seeded offsets plus 0, 1 and len-1: each a WireError naming a byte offset no
    further than the cut (a cut inside any record cannot decode)."""
    data = files[name]
    boundaries = set(_top_boundaries(data))
    rng = random.Random(f"cut {name}")
    offsets = sorted({0, 1, len(data) - 1, *rng.sample(range(2, len(data) - 1), 40)}
                     - boundaries)
    t0 = time.perf_counter()
    outcomes = _run([(f"{name}[:{n}]", data[:n]) for n in offsets])
    assert time.perf_counter() - t0 < 5
    for n, (label, err) in zip(offsets, outcomes.items()):
        assert isinstance(err, WireError), (label, err)
        assert err.offset is not None and err.offset <= n, str(err)
        assert f"byte {err.offset}" in str(err), str(err)
    assert "empty input" in str(outcomes[f"{name}[:0]"])
    assert "truncated" in str(outcomes[f"{name}[:{len(data) - 1}]"])


@pytest.mark.parametrize("name", ["LR_reg", "blocks/nested_seq", "slu.forward.nobn"])
def test_truncations_at_top_level_boundaries(files, name):
    """Cut between two entries of the top Dictionary the bytes still decode, with fewer
    keys: the reader then names the first required key missing, or reads the network when
    only optional entries went."""
    data = files[name]
    for n in _top_boundaries(data):
        top = wire.decode(data[:n]).top
        outcome = _run([(name, data[:n])])[name]
        missing = [k for k in ("type", "root", "inputs", "primitive_functions")
                   if k not in top]
        if not missing:
            assert isinstance(outcome, Network), (n, outcome)
        elif missing[0] == "type":
            assert "not a CompositeFunction" in str(outcome), (n, outcome)
        else:
            assert f"the CompositeFunction has no '{missing[0]}'" in str(outcome), (n, outcome)


# ---- byte flips -------------------------------------------------------------------------
def _flips(data: bytes, seed: str) -> list[tuple[int, bytes]]:
    """100 seeded single-byte flips; in a big file 24, mostly in the metadata (the tensor
    payloads, which wire cuts out of the parse, only change values; and each read of a
    big file costs more)."""
    rng = random.Random(seed)
    if len(data) < BIG:
        spots = rng.sample(range(len(data)), 100)
    else:
        cut = wire._cut(data)
        assert cut is not None and cut.blocks
        blocks = sorted(cut.blocks)
        starts, ends = [0] + [b for _, b in blocks], [a for a, _ in blocks] + [len(data)]
        meta = [i for a, b in zip(starts, ends) for i in range(a, b)]
        spots = rng.sample(meta, 20) + [rng.randrange(a, b) for a, b in rng.choices(blocks, k=4)]
    cases = []
    for i in spots:
        bad = bytearray(data)
        bad[i] ^= rng.choice((0xFF, 0x01, 0x02, 0x08, 0x80, 0x7F, 0x10))
        cases.append((i, bytes(bad)))
    return cases


@pytest.mark.parametrize("name", NAMES)
def test_byte_flips_read_or_raise_format_error(files, name):
    cases = _flips(files[name], f"flip {name}")
    t0 = time.perf_counter()
    outcomes = _run([(f"{name}^{i}", bad) for i, bad in cases])
    assert time.perf_counter() - t0 < 8
    errors = [o for o in outcomes.values() if isinstance(o, FormatError)]
    assert errors, "no flip was refused"
    for err in errors:
        if isinstance(err, WireError):
            assert err.offset is not None and 0 <= err.offset <= len(files[name]), str(err)


# ---- semantic corruption of the Dictionary ----------------------------------------------
def _function(top: dict, uid: str) -> dict:
    return next(f for f in top["primitive_functions"] if f["uid"] == uid)


def _variable(top: dict, uid: str) -> dict:
    return next(v for v in top["inputs"] if v["uid"] == uid)


def _placeholder(top: dict, uid: str) -> None:
    top["inputs"].append({"version": SizeT(1), "type": "Variable", "uid": uid,
                          "kind": SizeT(4), "data_type": SizeT(1), "dynamic_axis": [],
                          "is_sparse": False, "needs_gradient": False, "shape": Shape([2])})


def _bind(top: dict, block: str, values: list[str]) -> None:
    _function(top, block)["block_function_composite_arguments_map_values"] = values


def _set(get: Callable[[dict, str], dict], uid: str, key: str, value: Any
         ) -> Callable[[dict], None]:
    return lambda top: get(top, uid).__setitem__(key, value)


LR, MLP, NESTED = "LR_reg", "blocks/mlp_dense", "blocks/nested_seq"
F, V = _function, _variable
SEMANTIC: list[tuple[str, str, Callable[[dict], None], str]] = [
    ("dropped operand", LR, lambda t: F(t, "Times7")["inputs"].pop(),
     r"\(uid Times7\): Times takes 2 operands, the file gives 1"),
    ("no inputs key", LR, lambda t: F(t, "Times7").pop("inputs"),
     r"\(uid Times7\): Times takes 2 operands, the file gives 0"),
    ("unknown uid", LR, lambda t: F(t, "Times7")["inputs"].__setitem__(1, "Nowhere42"),
     r"\(uid Times7\) reads 'Nowhere42': there is no input corresponding"),
    ("op code 999", LR, _set(F, "Times7", "op", SizeT(999)),
     r"\(uid Times7\) has op code 999"),
    ("op a String", LR, _set(F, "Times7", "op", "Times"),
     r"function 'Times7': 'op' is a String, not an integer"),
    ("op None", LR, _set(F, "Times7", "op", None),
     r"function 'Times7': 'op' is None, not an integer"),
    ("inputs None", LR, _set(F, "Times7", "inputs", None),
     r"function 'Times7': 'inputs' is None, not a Vector"),
    ("an operand uid not a String", LR,
     lambda t: F(t, "Times7")["inputs"].__setitem__(1, SizeT(3)),
     r"function 'Times7': 'inputs' holds a SizeT, not a String"),
    ("attributes a String", LR, _set(F, "Times7", "attributes", "x"),
     r"function 'Times7': 'attributes' is a String, not a Dictionary"),
    ("an infinite Double attribute", LR,
     lambda t: F(t, "Times7")["attributes"].__setitem__("outputRank", float("inf")),
     r"\(uid Times7\) \(Times\): malformed attributes \(cannot convert float infinity"),
    ("reads its own output", LR,
     lambda t: F(t, "Plus11")["inputs"].__setitem__(0, "Plus11_Output_0"),
     r"\(uid Plus11\) reads 'Plus11_Output_0' before the function producing it"),
    ("binding cycle", MLP,
     lambda t: (_bind(t, "Block14", ["Placeholder34"]), _bind(t, "Block32", ["Placeholder16"])),
     r"block argument bindings through 'Placeholder(16|34)' form a cycle"),
    ("binding itself", MLP, lambda t: _bind(t, "Block14", ["Placeholder16"]),
     r"bindings through 'Placeholder16' form a cycle"),
    ("bindings short", MLP, lambda t: _bind(t, "Block14", []),
     r"block 'Block14' has 1 argument placeholders but 0 bindings"),
    ("block root itself", MLP,
     lambda t: F(t, "Block14")["block_function_composite"].__setitem__("root", "Block14"),
     r"block 'Block14': the inner roots of blocks form a cycle through 'Block14'"),
    ("block roots cycle", NESTED,
     lambda t: F(t, "Block385")["block_function_composite"].__setitem__("root", "Block391"),
     r"block 'Block385': the inner roots of blocks form a cycle"),
    ("block root unknown", MLP,
     lambda t: F(t, "Block14")["block_function_composite"].__setitem__("root", "Zz9"),
     r"block 'Block14': its inner root 'Zz9' is not a function"),
    ("rank-0 TransposeTimes operand", MLP,
     lambda t: F(t, "TransposeTimes63")["inputs"].__setitem__(0, "Constant66"),
     r"TransposeTimes.*must have rank 1 or 2"),
    ("value shape differs", LR,
     _set(V, "Parameter5", "value", Tensor.of(np.zeros((3, 1), np.float32))),
     r"the value of 'w' \(uid Parameter5\) is \[3, 1\], its variable \[2, 1\]"),
    ("parameter without value", LR, lambda t: V(t, "Parameter5").pop("value"),
     r"parameter 'w' \(uid Parameter5\) has no value"),
    ("value a String", LR, _set(V, "Parameter5", "value", "w"),
     r"variable 'Parameter5': 'value' is a String, not an NDArrayView"),
    ("kind 1 (Output)", LR, _set(V, "Input6", "kind", SizeT(1)),
     r"variable 'Input6' has kind 1"),
    ("kind None", LR, _set(V, "Input6", "kind", None),
     r"variable 'Input6': 'kind' is None, not an integer"),
    ("shape a String", LR, _set(V, "Input6", "shape", "ab"),
     r"variable 'Input6': 'shape' is a String, not an NDShape"),
    ("dynamic axis a SizeT", LR, _set(V, "Input6", "dynamic_axis", [SizeT(1)]),
     r"variable 'Input6': 'dynamic_axis' holds a SizeT, not an Axis"),
    ("data type Int8", LR, _set(V, "Input6", "data_type", SizeT(5)),
     r"variable 'Input6' has data type 5"),
    ("no root", LR, lambda t: t.pop("root"), r"the CompositeFunction has no 'root'"),
    ("root unknown", LR, lambda t: t.__setitem__("root", "Q7"), r"the root 'Q7' is not a"),
    ("root a SizeT", LR, lambda t: t.__setitem__("root", SizeT(3)),
     r"the CompositeFunction: 'root' is a SizeT, not a String"),
    ("inputs a SizeT", LR, lambda t: t.__setitem__("inputs", SizeT(1)),
     r"the CompositeFunction: 'inputs' is a SizeT, not a Vector"),
    ("duplicate variable uid", LR, _set(V, "Input6", "uid", "Input1"),
     r"two variables have uid 'Input1'"),
    ("duplicate function uid", LR, _set(F, "Plus11", "uid", "Times7"),
     r"two functions have uid 'Times7'"),
    ("an input with an output's uid", LR, _set(V, "Sigmoid14_Output_0", "kind", SizeT(0)),
     r"variable 'Sigmoid14_Output_0' \(kind 0\) has the uid of output 0 of function "
     r"'Sigmoid14'"),
    ("placeholder bound to nothing", LR,
     lambda t: (_placeholder(t, "Placeholder99"),
                F(t, "Times7")["inputs"].__setitem__(1, "Placeholder99")),
     r"placeholder 'Placeholder99' is bound to nothing"),
    ("forward reference never produced", LR, _set(F, "Sigmoid14", "uid", "Sigmoid99"),
     r"placeholder 'Sigmoid14_Output_0' is bound to nothing"),
    ("a loop through a forward reference without a delay", LR,
     lambda t: F(t, "Plus11")["inputs"].__setitem__(1, "Sigmoid14_Output_0"),
     r"node 'p': cycle without a delay node \(PastValue/FutureValue\): p -> p\._ -> p"),
    ("NoOp without operand", LR,
     lambda t: F(t, "Plus11").update(op=SizeT(62), inputs=[]),
     r"NoOp 'Plus11' has no built operand"),
]


@pytest.fixture(scope="module")
def tops(files: dict[str, bytes]) -> dict[str, dict]:
    return {n: wire.decode(files[n]).top for n in (LR, MLP, NESTED)}


@pytest.mark.parametrize("name", [LR, MLP, NESTED])
def test_the_unmutated_dictionaries_read(tops, name):
    """The control: decode, copy and encode alone change nothing the reader minds."""
    assert isinstance(read_bytes_model(wire.encode(copy.deepcopy(tops[name]))), Network)


@pytest.mark.parametrize(("case", "name", "mutate", "text"), SEMANTIC,
                         ids=[c[0] for c in SEMANTIC])
def test_semantic_corruption_is_a_one_line_format_error(tops, case, name, mutate, text):
    top = copy.deepcopy(tops[name])
    mutate(top)
    data = wire.encode(top)
    outcome = _run([("bad.model", data)])["bad.model"]
    assert isinstance(outcome, FormatError), (case, outcome)
    assert not isinstance(outcome, WireError), str(outcome)
    assert str(outcome).startswith("bad.model: ") and "\n" not in str(outcome)
    assert re.search(text, str(outcome)), str(outcome)
