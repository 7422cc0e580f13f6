"""What ONNX export refuses, in one line naming the node and the op, before anything is
written; outputs, opsets and options that do not apply; import stays light."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import netsurgeon.formats.onnx as nx
from netsurgeon import formats
from netsurgeon.cli import main
from netsurgeon.errors import FormatError, GraphError
from netsurgeon.graph import Network


def _unsupported() -> Network:
    net = Network("u")
    x = net.add("x", "InputValue", shape=(4,))
    h = net.add("h", "Tanh", inputs=[x])
    net.add("where1", "Where", inputs=[h])
    net.validate()
    return net


def test_unsupported_op_is_one_line_naming_node_and_op_and_writes_nothing(tmp_path):
    target = tmp_path / "m.onnx"
    target.write_bytes(b"old")
    with pytest.raises(FormatError) as err:
        formats.save(_unsupported(), target)
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("cannot export node 'where1' (Where) to ONNX: dynamic-axis")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # no temp files


def test_cli_unsupported_and_unknown_output_exit_1_with_one_line(tmp_path, cntk_dir, capsys):
    path = tmp_path / "u.nsm"
    formats.save(_unsupported(), path)
    assert main(["convert", str(path), str(tmp_path / "u.onnx")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("netsurgeon: error: cannot export node 'where1' (Where) to ONNX: dynamic-axis "
                   "reshaping (Where/PackedIndex/GatherPacked/ScatterPacked) makes a new "
                   "sequence axis, which the ONNX export does not model")
    assert main(["convert", str(cntk_dir / "models/MC.dnn"), str(tmp_path / "m.onnx"),
                 "--outputs", "zz"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no node named 'zz'" in err and "did you mean: z?" in err
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "u.onnx").exists()


def test_outputs_export_only_what_they_need(cntk_dir):
    net = formats.load(cntk_dir / "models/MC.dnn")
    model = nx.to_model(net, ["z.PlusArgs[0]"])
    assert [i.name for i in model.graph.input] == ["features"]
    with pytest.raises(GraphError, match="did you mean: z"):
        nx.to_model(net, ["zz"])


def test_default_outputs_without_an_output_group_skip_criteria():
    net = Network("roots")
    x = net.add("x", "InputValue", shape=(3,))
    y = net.add("y", "InputValue", shape=(3,))
    s = net.add("s", "Sigmoid", inputs=[x])
    ce = net.add("ce", "CrossEntropyWithSoftmax", inputs=[y, s])
    net.add_to_group("criterion", ce)
    net.add_parameter("unused", np.zeros(2, np.float32))
    net.validate()
    assert [n.name for n in nx.select_outputs(net)] == ["s"]
    assert [n.name for n in nx.select_outputs(net, keep_criteria=True)] == ["s", "ce"]


def test_opset_and_options_are_checked(cntk_dir, tmp_path, capsys):
    net = formats.load(cntk_dir / "models/MC.dnn")
    with pytest.raises(FormatError, match="opset 12 is not supported; use 18 to"):
        nx.to_model(net, opset=12)
    assert nx.to_model(net).opset_import[0].version == nx.DEFAULT_OPSET == 26
    with pytest.raises(FormatError, match="ONNX export only"):
        formats.save(net, tmp_path / "m.nsm", keep_criteria=True)
    assert main(["convert", str(cntk_dir / "models/MC.dnn"), str(tmp_path / "m.nsm"),
                 "--opset", "20"]) == 1
    assert "--opset: options of ONNX export" in capsys.readouterr().err


def test_locally_connected_convolution_is_refused_by_name():
    net = Network("local")
    x = net.add("x", "InputValue", shape=(1, 4, 4))
    w = net.add_parameter("w", np.ones((2, 3, 3, 1, 2, 2), np.float32))
    net.add("conv", "Convolution", inputs=[w, x],
            attrs={"kernel_shape": (1, 2, 2), "map_count": (2,), "sharing": (True, False, False),
                   "auto_padding": (False,)})
    net.validate()
    with pytest.raises(FormatError, match=r"^cannot export node 'conv' \(Convolution\) to ONNX: "
                                          "a locally connected"):
        nx.to_model(net)


def test_import_netsurgeon_does_not_import_onnx():
    code = ("import sys, netsurgeon, netsurgeon.formats, netsurgeon.formats.onnx; "
            "print('onnx' in sys.modules, 'onnxruntime' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
