"""Untrusted native files: every defect is one FormatError naming the file (and the key).

Regressions of issue 10 (a dtype from the file that asks for gigabytes, JSON nested past the
interpreter's recursion limit, structures of the wrong type), then structure-aware property
tests: a valid saved model whose header or graph JSON has subtrees replaced, deleted or
nested deeply, loaded in a subprocess under ``RLIMIT_AS`` (bounded memory) and a timeout.
"""

from __future__ import annotations

import copy
import json
import math
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netsurgeon.errors import FormatError, NetsurgeonError
from netsurgeon.formats import load, native, save
from netsurgeon.graph import Network

ROOT = Path(__file__).resolve().parents[2]


# ---- files -----------------------------------------------------------------------------------
def rich_model() -> Network:
    """A small network using every part of the format: attributes, values of three dtypes,
    a multiplier, tags, a location, file fields, groups and tagged metadata values."""
    from netsurgeon.errors import SourceLocation

    net = Network("rich")
    x = net.add("features", "InputValue", shape=(4,), tags={"feature"})
    w = net.add_parameter("L1.W", np.arange(12, dtype=np.float32).reshape(4, 3))
    b = net.add_parameter("L1.B", np.ones(3, np.float64), learning_rate_multiplier=0.0)
    net.add_parameter("__metadata__", np.zeros(2, np.int32))
    t = net.add("L1.T", "Times", inputs=(w, x), attrs={"output_rank": 1},
                location=SourceLocation("net.ndl", 3, 7), file_fields={"cntk_v1.tag": (1, "a")})
    p = net.add("L1.P", "Plus", inputs=(t, b))
    z = net.add("z", "Sigmoid", inputs=(p,))
    net.add_to_group("feature", x)
    net.add_to_group("output", z)
    net.metadata["origin"] = {"tuple": (1, 2), "inf": float("inf"), "raw": b"\x00\x01",
                              "table": np.arange(6, dtype=np.int16).reshape(2, 3)}
    return net


def split(raw: bytes) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    """(header without the graph, graph document, data section) of a native file."""
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    graph = json.loads(header["__metadata__"].pop("graph"))
    return header, graph, raw[8 + n:]


def join(header: Any, graph: Any, data: bytes, graph_text: str | None = None) -> bytes:
    """A native file from its parts (``graph_text`` replaces the graph's JSON as given)."""
    header = copy.deepcopy(header)
    if isinstance(header, dict) and isinstance(header.get("__metadata__"), dict):
        header["__metadata__"]["graph"] = graph_text if graph_text is not None else \
            json.dumps(graph)
    blob = json.dumps(header).encode()
    return struct.pack("<Q", len(blob)) + blob + data


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> tuple[dict[str, Any], dict[str, Any], bytes]:
    path = tmp_path_factory.mktemp("base") / "m.nsm"
    net = rich_model()
    net.validate()
    save(net, path)
    return split(path.read_bytes())


def expect_error(path: Path, data: bytes, *match: str) -> FormatError:
    path.write_bytes(data)
    with pytest.raises(FormatError) as info:
        load(path)
    text = str(info.value)
    assert text.startswith(f"{path}: "), text  # names the file
    assert "\n" not in text and len(text) < 600, text
    for m in match:
        assert m in text, text
    return info.value


# ---- regressions of issue 10 ------------------------------------------------------------------
def _graph_with_attr_array(graph: dict[str, Any], array: Any) -> dict[str, Any]:
    g = copy.deepcopy(graph)
    for _, rec in g["extra"]:
        if "attrs" in rec and "output_rank" in rec["attrs"]:
            rec["attrs"]["output_rank"] = array
    return g


@pytest.mark.parametrize("dtype", ["U100000000", "<U100000000", "S2000000000", "V2000000000",
                                   "O", "object", "complex128", "datetime64[s]", "M8", "str",
                                   "float", 5, None, ["f4"]])
def test_array_dtype_from_the_file_is_whitelisted(base, tmp_path, dtype):
    """Issue 10.2: a 488-byte file whose attribute array named dtype U100000000 made numpy
    allocate 11.2 GiB. Only numeric dtypes are accepted, before any array is made."""
    header, graph, data = base
    g = _graph_with_attr_array(graph, {"__array__": [1, 2], "dtype": dtype})
    expect_error(tmp_path / "m.nsm", join(header, g, data), "graph JSON key 'extra[",
                 "attrs.output_rank.dtype'", "not a numeric dtype")


def test_metadata_array_dtype_is_whitelisted_too(base, tmp_path):
    header, graph, data = base
    g = copy.deepcopy(graph)
    g["metadata"]["origin"]["table"]["dtype"] = "U100000000"
    expect_error(tmp_path / "m.nsm", join(header, g, data),
                 "key 'metadata.origin.table.dtype'", "not a numeric dtype")


@pytest.mark.parametrize("array, why", [
    ([["a"]], "must hold only numbers"),
    ([[1], [1, 2]], "is not a int16 array"),
    ([1000000], "is not a int16 array"),
    ([10 ** 30], "is not a int16 array"),
    ({"x": 1}, "must hold only numbers"),
])
def test_array_contents_must_be_numbers_of_a_regular_shape(base, tmp_path, array, why):
    header, graph, data = base
    g = copy.deepcopy(graph)
    g["metadata"]["origin"]["table"]["__array__"] = array
    expect_error(tmp_path / "m.nsm", join(header, g, data), "metadata.origin.table.__array__",
                 why)


def test_numeric_arrays_still_round_trip(tmp_path):
    net = rich_model()
    net.metadata["all"] = [np.arange(3).astype(d) for d in ("bool", "int8", "uint64", "float16")]
    net.metadata["nan"] = np.array([np.nan, np.inf, 1.0])
    save(net, tmp_path / "m.nsm")
    back = load(tmp_path / "m.nsm").metadata
    for a, b in zip(net.metadata["all"], back["all"]):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    np.testing.assert_array_equal(back["nan"], net.metadata["nan"])
    np.testing.assert_array_equal(back["origin"]["table"], net.metadata["origin"]["table"])
    assert back["origin"]["raw"] == b"\x00\x01"


@pytest.mark.parametrize("where", ["graph", "header", "metadata", "attrs", "names"])
def test_deep_json_is_a_format_error(base, tmp_path, where):
    """Issue 10.6: JSON nested ~1,100 deep in a 2.2 KB file raised RecursionError."""
    header, graph, data = base
    path = tmp_path / "m.nsm"
    deep = "[" * 1100 + "]" * 1100
    if where == "graph":
        expect_error(path, join(header, graph, data, graph_text=deep), "the graph JSON",
                     "nested too deeply")
    elif where == "header":
        blob = ('{"x":' + deep + "}").encode()
        expect_error(path, struct.pack("<Q", len(blob)) + blob, "the JSON header",
                     "nested too deeply")
    else:
        g = copy.deepcopy(graph)
        nested = json.loads("[" * 150 + "]" * 150)  # within json's limit, beyond ours
        if where == "metadata":
            g["metadata"]["deep"] = nested
        elif where == "attrs":
            g = _graph_with_attr_array(g, nested)
        else:
            g["names"][0] = nested
        err = expect_error(path, join(header, g, data))
        assert ("nested more than 100 levels" in str(err)) or "must be a string" in str(err)


def test_saving_what_loading_refuses_is_a_format_error(tmp_path):
    """What load would refuse, save refuses too (and the old file is kept)."""
    path = tmp_path / "m.nsm"
    save(rich_model(), path)
    before = path.read_bytes()
    deep: list = []
    for _ in range(150):
        deep = [deep]
    for bad, match in (({"deep": deep}, "nested more than 100"),
                       ({"words": np.array(["a", "b"])}, "only numeric arrays"),
                       ({"objects": np.array([None, 1], dtype=object)}, "only numeric arrays")):
        net = rich_model()
        net.metadata.update(bad)
        with pytest.raises(FormatError, match=match) as info:
            save(net, path)
        assert str(info.value).startswith(f"{path}: ")
        assert path.read_bytes() == before
    net = rich_model()
    net.set_attrs("L1.T", output_rank=1)
    net.update("L1.T", file_fields={"cntk_v1.x": np.array(["s"])})
    with pytest.raises(FormatError, match=r"node 'L1.T': its file fields.* only numeric"):
        save(net, path)


def _set(doc: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    target = doc
    parts = key.split("/")
    for part in parts[:-1]:
        target = target[int(part) if isinstance(target, list) else part]
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    elif value is _DELETE:
        del target[last]
    else:
        target[last] = value
    return doc


_DELETE = object()

# (graph key to set, value, text the error holds): issue 10.6 and its neighbours
GRAPH_CASES = [
    ("names", {"a": 1}, "key 'names' must be a list of strings"),
    ("names/0", 7, "key 'names[0]' must be a string, not the number 7"),
    ("names", _DELETE, "key 'names' is missing"),
    ("ops", "Times", "key 'ops' must be a list of strings"),
    ("op/2", 99, "key 'op[2]' is 99; the greatest value allowed is"),
    ("op/2", True, "key 'op[2]' must be an integer, not true/false"),
    ("arity/3", -1, "key 'arity[3]' is -1; the least value allowed is 0"),
    ("arity/3", 3, "key 'inputs' has"),
    ("inputs/0", 10 ** 6, "key 'inputs[0]' is 1000000"),
    ("inputs/0", -2, "key 'inputs[0]' is -2"),
    ("shapes/0/0", -4, "key 'shapes[0][0]' is -4"),
    ("shapes/0", [1] * 65, "key 'shapes[0]' has 65 dimensions"),
    ("shapes/0", "4", "key 'shapes[0]' must be a list of integers"),
    ("shape/0", 50, "key 'shape[0]' is 50"),
    ("shape", [0], "key 'shape' has 1 entries for 7 nodes"),
    ("dynamic", "1x00000", "key 'dynamic' must hold only the characters"),
    ("dynamic", [1], "key 'dynamic' must be a string"),
    ("extra", {"0": {}}, "key 'extra' must be a list"),
    ("extra/0", 5, "key 'extra[0]' must be [node index, record], not the number 5"),
    ("extra/0/1", 5, "key 'extra[0][1]' must be an object, not the number 5"),
    ("extra/0/0", 99, "key 'extra[0][0]' is 99"),
    ("extra/1/1/value", 3, "key 'extra[1][1].value' must be a tensor name"),
    ("extra/1/1/value", "nope", "tensor 'nope', the value of node 'L1.W', is not in the header"),
    ("extra/1/1/value", "L1.B", "tensor 'L1.B' is the value of node 'L1.W' and of node"),
    ("extra/2/1/lr", "fast", "key 'extra[2][1].lr' must be a number"),
    ("extra/2/1/lr", {"__float__": "fast"}, "key 'extra[2][1].lr.__float__' is not a number"),
    ("extra/2/1/dtype", "U99", "key 'extra[2][1].dtype' is the string 'U99', not a numeric"),
    ("extra/0/1/tags", "feature", "key 'extra[0][1].tags' must be a list of strings"),
    ("extra/0/1/tags", [1], "key 'extra[0][1].tags[0]' must be a string"),
    ("extra/4/1/loc", [{}, 1, 2], "key 'extra[4][1].loc' must be [file, line, column]"),
    ("extra/4/1/loc", "net.ndl", "key 'extra[4][1].loc' must be [file, line, column]"),
    ("extra/4/1/attrs", [1], "key 'extra[4][1].attrs' must be an object"),
    ("extra/4/1/fields", {"x": {"__bytes__": "%%%"}}, "fields.x.__bytes__' is not base64"),
    ("extra/4/1/fields", {"x": {"__tuple__": 5}}, "fields.x.__tuple__' must be a list"),
    ("groups", [1], "key 'groups' must be an object, not a list"),
    ("groups/output", [99], "key 'groups.output[0]' is 99"),
    ("groups/output", "z", "key 'groups.output' must be a list of integers"),
    ("metadata", "x", "key 'metadata' must be an object, not the string 'x'"),
    ("name", 5, "key 'name' must be a string"),
    ("version", 3, "graph format version the number 3 is not supported"),
    ("version", [2], "graph format version a list is not supported"),
]


@pytest.mark.parametrize("key, value, match", GRAPH_CASES, ids=[c[0] for c in GRAPH_CASES])
def test_malformed_graph_structures(base, tmp_path, key, value, match):
    header, graph, data = base
    expect_error(tmp_path / "m.nsm", join(header, _set(graph, key, value), data), match)


def test_a_graph_that_is_not_an_object(base, tmp_path):
    header, _, data = base
    for graph, match in (([1, 2], "is a list, not an object"), ("x", "is the string"),
                         (None, "is null")):
        expect_error(tmp_path / "m.nsm", join(header, graph, data), "the graph JSON", match)
    expect_error(tmp_path / "m.nsm", join(header, None, data, graph_text="{"), "malformed")
    expect_error(tmp_path / "m.nsm", join(header, None, data, graph_text="1" * 5000),
                 "malformed")  # beyond int()'s digit limit


HEADER_CASES = [
    ("__metadata__", "abc", "header key '__metadata__' must be an object"),
    ("__metadata__/format", "other", "without a netsurgeon graph"),
    ("L1.W", [1], "header key 'L1.W' must be an object"),
    ("L1.W/dtype", "U8X", "header key 'L1.W.dtype' is the string 'U8X', not a safetensors"),
    ("L1.W/shape", [-4, -3], "header key 'L1.W.shape[0]' is -4"),
    ("L1.W/shape", [4, 3.0], "header key 'L1.W.shape[1]' must be an integer"),
    ("L1.W/shape", [2 ** 20, 2 ** 20], "header key 'L1.W.data_offsets'"),
    ("L1.W/shape", [2 ** 40, 2 ** 40], "header key 'L1.W.shape' [1099511627776, "
                                       "1099511627776] is too big for any array"),
    ("L1.W/shape", [0, 2 ** 61], "header key 'L1.W.shape' [0, 2305843009213693952] is too big"),
    ("L1.W/data_offsets", [0, 10 ** 12], "is not inside the data section"),
    ("L1.W/data_offsets", [-48, 0], "is not inside the data section"),
    ("L1.W/data_offsets", [0], "must be [begin, end], two integers"),
    ("L1.W/data_offsets", [0, 40], "holds 40 bytes; shape [4, 3] of F32 needs 48"),
    ("L1.B/data_offsets", [0, 24], "overlaps tensor"),
    ("L1.W/dtype", "BF16", "needs 24"),
]


@pytest.mark.parametrize("key, value, match", HEADER_CASES, ids=[c[0] for c in HEADER_CASES])
def test_malformed_header_structures(base, tmp_path, key, value, match):
    header, graph, data = base
    if key == "__metadata__":
        raw = json.dumps({**header, "__metadata__": value}).encode()
        data_ = struct.pack("<Q", len(raw)) + raw + data
    else:
        data_ = join(_set(header, key, value), graph, data)
    expect_error(tmp_path / "m.nsm", data_, match)


def test_header_that_is_not_an_object_or_not_utf8(tmp_path):
    path = tmp_path / "m.nsm"
    for blob, match in ((b"[1, 2]", "is a list, not an object"),
                        (b'{"a": "\xff\xfe"}', "is malformed"),
                        (b"{" + b" " * 20, "is malformed"),
                        (b'{"a": 1' + b"1" * 5000 + b"}", "is malformed")):
        path.write_bytes(struct.pack("<Q", len(blob)) + blob)
        with pytest.raises(FormatError, match=match) as info:
            native.load(path)
        assert str(info.value).startswith(f"{path}: ")
    expect_error(path, struct.pack("<Q", 100) + b"{}", "does not fit the file")


def test_an_unused_tensor_may_sit_in_the_header(base, tmp_path):
    """Tensors no node uses are checked but allowed (any safetensors writer may add some)."""
    header, graph, data = base
    h = _set(header, "extra", {"dtype": "U8", "shape": [0], "data_offsets": [0, 0]})
    (tmp_path / "m.nsm").write_bytes(join(h, graph, data))
    assert load(tmp_path / "m.nsm").node("L1.W").value.shape == (4, 3)


def test_a_node_named_like_its_neighbours_tensor_key(tmp_path):
    """``__metadata__`` stores its value under another key; a node already called that gets a
    key of its own (before, the two shared one tensor)."""
    net = Network("m")
    net.add_parameter("__metadata__", np.full(2, 1.0, np.float32))
    net.add_parameter("__metadata__.value", np.full(3, 2.0, np.float32))
    save(net, tmp_path / "m.nsm")
    back = load(tmp_path / "m.nsm")
    np.testing.assert_array_equal(back.node("__metadata__").value, np.full(2, 1.0))
    np.testing.assert_array_equal(back.node("__metadata__.value").value, np.full(3, 2.0))


def test_version_1_records_are_checked(tmp_path):
    from tests.formats.test_native import _v1_file

    path = tmp_path / "old.nsm"
    _v1_file(path)
    header, graph, data = split(path.read_bytes())
    for key, value, match in (
        ("nodes", {}, "key 'nodes' must be a list"),
        ("nodes/0", 3, "key 'nodes[0]' must be an object"),
        ("nodes/0/name", 3, "key 'nodes[0].name' must be a string"),
        ("nodes/2/inputs", "W", "key 'nodes[2].inputs' must be a list"),
        ("nodes/2/inputs/0", "nobody", "key 'nodes[2].inputs[0]' is the string 'nobody', which "
                                       "names no node"),
        ("nodes/2/inputs/0", 5, "which names no node"),
        ("nodes/1/shape", [-1], "key 'nodes[1].shape[0]' is -1"),
        ("nodes/1/dynamic", "yes", "key 'nodes[1].dynamic' must be true, false or null"),
        ("nodes/1/attrs", [], "key 'nodes[1].attrs' must be an object"),
        ("nodes/0/lr", "x", "key 'nodes[0].lr' must be a number"),
        ("groups/output", ["nobody"], "key 'groups.output[0]'"),
        ("groups", [], "key 'groups' must be an object"),
    ):
        expect_error(path, join(header, _set(graph, key, value), data), match)


def test_every_native_error_names_the_file(tmp_path):
    path = tmp_path / "m.nsm"
    for raw in (b"", b"1234567", struct.pack("<Q", 2) + b"{}", struct.pack("<Q", 2) + b"[]"):
        path.write_bytes(raw)
        with pytest.raises(FormatError) as info:
            native.load(path)
        assert str(info.value).startswith(f"{path}: "), str(info.value)
    with pytest.raises(FormatError, match=f"^{path.with_name('none.nsm')}: .*not found"):
        native.load(path.with_name("none.nsm"))


# ---- property tests ---------------------------------------------------------------------------
SPECIAL_STRINGS = ["", "U100000000", "S2000000000", "V2000000000", "O", "float32", "int8",
                   "F32", "BF16", "__metadata__", "__array__", "__tuple__", "__bytes__",
                   "__float__", "L1.W", "L1.B", "Times", "Tims", "nan", "inf", "-", "1", "10-",
                   "feature", "output", "\x00", "ä"]
SPECIAL_INTS = [-(2 ** 63), -2, -1, 0, 1, 2, 3, 7, 255, 2 ** 31, 2 ** 62, 2 ** 63, 2 ** 64,
                10 ** 30]

scalars = (st.none() | st.booleans() | st.sampled_from(SPECIAL_INTS)
           | st.integers(-(2 ** 70), 2 ** 70) | st.floats() | st.sampled_from(SPECIAL_STRINGS)
           | st.text(max_size=8))


def _tagged(children):
    dtypes = st.sampled_from(["float32", "int8", "bool", "uint64", "float16", "U100000000",
                              "O", "complex128", "V8"]) | scalars
    return st.one_of(
        st.fixed_dictionaries({"__array__": children, "dtype": dtypes}),
        st.fixed_dictionaries({"__tuple__": children}),
        st.fixed_dictionaries({"__bytes__": st.text(max_size=12) | scalars}),
        st.fixed_dictionaries({"__float__": st.sampled_from(["inf", "-inf", "nan", "1e999",
                                                             "x"]) | scalars}),
    )


json_values = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=5)
                      | st.dictionaries(st.sampled_from(SPECIAL_STRINGS) | st.text(max_size=5),
                                        children, max_size=4)
                      | _tagged(children)),
    max_leaves=25,
)


#: ``__array__`` values, many with a dtype that asks numpy for gigabytes per element
arrays = st.fixed_dictionaries({
    "__array__": st.lists(st.integers(0, 9), min_size=1, max_size=3) | json_values,
    "dtype": st.sampled_from(["U100000000", "<U50000000", "S2000000000", "V2000000000", "O",
                              "float32", "int8", "bool", "float16"]),
})


def _deep(depth: int, kind: str) -> str:
    """JSON text nested ``depth`` levels (spliced in after the rest is serialized)."""
    opening, closing = {"list": ("[", "]"), "dict": ('{"k":', "}"),
                        "tuple": ('{"__tuple__":[', "]}")}[kind]
    return opening * depth + "0" + closing * depth


deep_values = st.builds(_deep, st.sampled_from([99, 100, 101, 400, 1500, 4000]),
                        st.sampled_from(["list", "dict", "tuple"]))


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a subtree of ``doc`` (dict keys and list indices)."""
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:12]):  # long lists: their first items stand for the rest
            out += _paths(v, prefix + (i,))
    return out


def _replace(doc: Any, path: tuple, value: Any, how: str) -> Any:
    if not path:
        return value if how != "delete" else {}
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if how == "delete":
        del parent[last]
    elif how == "insert" and isinstance(parent, list):
        parent.insert(last, value)
    elif how == "insert":
        parent[f"{last}_extra"] = value
    else:
        parent[last] = value
    return doc


def _nudge(value: Any) -> list[Any]:
    """Values near ``value`` that a careless reader would mishandle."""
    if isinstance(value, bool) or value is None:
        return [not value, 0, 1, "true"]
    if isinstance(value, int):
        return [value - 1, value + 1, -value - 1, value * 2 ** 40, float(value), str(value)]
    if isinstance(value, float):
        return [math.inf, -math.inf, math.nan, -value, int(value) if math.isfinite(value) else 0]
    if isinstance(value, str):
        return [value + "x", value[:-1], value.upper(), "", 5]
    if isinstance(value, list):
        return [value[:-1], value + value[:1], value[::-1], value * 3, [value]]
    return [dict(list(value.items())[:-1]), list(value.values()), {**value, "": 0}]


@st.composite
def mutated_files(draw, bases: list[tuple[dict, dict, bytes]]) -> bytes:
    """A valid native file with one to three structure-aware defects."""
    header, graph, data = copy.deepcopy(draw(st.sampled_from(bases)))
    deep: dict[str, str] = {}  # placeholder string (as JSON) -> deeply nested JSON text
    for _ in range(draw(st.integers(1, 3))):
        target = draw(st.sampled_from(["graph", "graph", "graph", "header"]))
        doc = graph if target == "graph" else header
        path = draw(st.sampled_from(_paths(doc)))
        old = doc
        for step in path:
            old = old[step]
        how = draw(st.sampled_from(["replace", "replace", "nudge", "nudge", "deep", "delete",
                                    "insert", "array"]))
        if how == "delete" and not path:
            how = "replace"
        if how == "nudge":
            value = draw(st.sampled_from(_nudge(old)))
        elif how == "deep":
            value = f"<deep {len(deep)}>"
            deep[json.dumps(value)] = draw(deep_values)
        elif how == "array":
            value = draw(arrays)
        else:
            value = draw(json_values)
        new = _replace(doc, path, value, "replace" if how in ("nudge", "deep", "array") else how)
        if target == "graph":
            graph = new
        else:
            header = new
    graph_text = json.dumps(graph)
    for token, text in deep.items():
        graph_text = graph_text.replace(token, text)
    raw = join(header, graph, data, graph_text)
    for token, text in deep.items():
        raw = _splice(raw, token, text)
    tail = draw(st.sampled_from(["keep", "keep", "keep", "cut", "grow", "length"]))
    if tail == "cut":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif tail == "grow":
        raw += b"\0" * draw(st.integers(1, 64))
    elif tail == "length":
        raw = struct.pack("<Q", draw(st.sampled_from([0, 2, 9, len(raw), 2 ** 31, 2 ** 64 - 1]))
                          ) + raw[8:]
    return raw


def _splice(raw: bytes, token: str, text: str) -> bytes:
    """``raw`` with the header's ``token`` replaced by ``text`` (the length field fixed)."""
    (n,) = struct.unpack("<Q", raw[:8])
    blob = raw[8:8 + n].replace(token.encode(), text.encode())
    return struct.pack("<Q", len(blob)) + blob + raw[8 + n:]


def _bases(tmp: Path) -> list[tuple[dict, dict, bytes]]:
    from tests.formats.test_native import _v1_file, model

    out = []
    for net in (rich_model(), model()):
        net.validate()
        save(net, tmp / "b.nsm")
        out.append(split((tmp / "b.nsm").read_bytes()))
    _v1_file(tmp / "v1.nsm")
    out.append(split((tmp / "v1.nsm").read_bytes()))
    return out


def check_load(path: Path, raw: bytes) -> str:
    """Load ``raw`` from ``path``: a network, or one FormatError line naming the file."""
    path.write_bytes(raw)
    try:
        net = load(path)
    except FormatError as exc:
        text = str(exc)
        assert text.startswith(f"{path}: ") and "\n" not in text, text
        return "error"
    try:
        net.lint()
        net.validate()
    except NetsurgeonError:
        pass
    return "loaded"


def run_batch(examples: int, tmp: str, seed: int, limit_mb: int) -> None:
    """The property test in this process, under an address-space limit (a subprocess entry
    point: a huge allocation raises MemoryError, which fails the run). Prints a summary."""
    import resource

    tmp_dir = Path(tmp)
    bases = _bases(tmp_dir)
    path = tmp_dir / "fuzz.nsm"
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) for line in f if line.startswith("VmSize:")) * 1024
    cap = vm + limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    counts = {"error": 0, "loaded": 0}
    slowest = [0.0]
    header, graph, data = bases[0]
    for dtype in ("U100000000", "S2000000000", "V2000000000"):  # issue 10.2, under the cap
        g = _graph_with_attr_array(graph, {"__array__": [1, 2], "dtype": dtype})
        assert check_load(path, join(header, g, data)) == "error"

    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(raw=mutated_files(bases))
    def prop(raw: bytes) -> None:
        start = time.perf_counter()
        counts[check_load(path, raw)] += 1
        slowest[0] = max(slowest[0], time.perf_counter() - start)

    from hypothesis import seed as hseed

    hseed(seed)(prop)()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"examples": sum(counts.values()), **counts, "slowest_s": slowest[0],
                      "peak_rss_mb": round(peak, 1), "address_space_cap_mb": cap >> 20}))


def _run_in_subprocess(tmp_path: Path, examples: int, timeout: int) -> dict[str, Any]:
    code = ("import sys; from tests.formats.test_native_untrusted import run_batch; "
            f"run_batch({examples}, {str(tmp_path)!r}, {int(time.time()) % 10000}, 768)")
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)  # the hang guard
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-6000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["examples"] >= examples * 0.9, summary
    assert summary["error"] > 0 and summary["slowest_s"] < 20, summary
    return summary


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc are Linux's")
def test_mutated_files_only_raise_format_errors_with_bounded_memory(tmp_path):
    """2,000 structure-aware mutations of three valid files, 768 MiB of address space."""
    print(_run_in_subprocess(tmp_path, 2000, timeout=600))


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc are Linux's")
def test_mutated_files_many(tmp_path):
    """The same with 30,000 mutations."""
    print(_run_in_subprocess(tmp_path, 30000, timeout=3600))


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory) -> tuple[Path, list[tuple[dict, dict, bytes]]]:
    tmp = tmp_path_factory.mktemp("fuzz")
    return tmp, _bases(tmp)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_files_in_process(fuzz_dir, data):
    """A smaller in-process run (its failures shrink and print as usual)."""
    tmp, bases = fuzz_dir
    check_load(tmp / "f.nsm", data.draw(mutated_files(bases)))
