"""MEL with NDL: the seed documentation's example end to end, real scripts' shapes, snippets."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from netsurgeon import formats
from netsurgeon.errors import NetsurgeonError
from netsurgeon.lang.mel import Editor, run

ndl = pytest.importorskip("netsurgeon.lang.ndl")
if not hasattr(ndl, "NdlScript") or not hasattr(ndl, "build_network"):
    pytest.skip("netsurgeon.lang.ndl is not complete yet", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
SEED_DOC = ROOT.parent / "shared" / "spec" / "seeds" / "ModelEditingLanguage.md"


def build(ndl_file: Path, macros: Path | None = None):
    table = ndl.MacroTable.standard()
    if macros is not None:
        table.load_file(str(macros))
    return ndl.build_network(ndl_file.read_text(), source=str(ndl_file), macros=table)


def wiring(net):
    return {n.name: (n.op, tuple(None if i is None else i.name for i in n.inputs))
            for n in net.nodes}


def seed_script() -> str:
    """The MEL example as printed in the seed document (first code block)."""
    blocks = re.findall(r"```\n(.*?)```", SEED_DOC.read_text(encoding="utf-8"), re.S)
    assert "LoadModel" in blocks[0]
    return blocks[0]


def test_seed_example_end_to_end(tmp_path):
    net = build(EXAMPLES / "seed.ndl")
    before = wiring(net)
    for layer in ("L1", "L2", "L3"):
        assert {n.name for n in net.match(f"{layer}.*")} == {
            f"{layer}.RL", f"{layer}.BFF.B", f"{layer}.BFF.W", f"{layer}.BFF.FF.T",
            f"{layer}.BFF.FF.P"}
    src = tmp_path / "mymodel.dnn"
    formats.save(net, src, format="cntk")
    script = seed_script()
    script = (script.replace(r"c:\models\mymodel.dnn", str(src))
              .replace(r"c:\temp\originalModel.dmp", str(tmp_path / "originalModel.dmp"))
              .replace(r"c:\models\mymodel4HiddenWithMeanVarNorm.dnn", str(tmp_path / "out.dnn")))
    result = run(script)
    assert list(result) == ["model1"] and result.default == "model1"
    assert "L1.BFF.W=LearnableParameter" in (tmp_path / "originalModel.dmp").read_text()

    out = formats.load(tmp_path / "out.dnn")
    out.validate()
    after = wiring(out)
    added = {"L4.RL", "L4.BFF.B", "L4.BFF.W", "L4.BFF.FF.T", "L4.BFF.FF.P",
             "meanVal", "invstdVal", "inputVal"}
    assert set(after) == set(before) | added
    expected = dict(before)
    expected.update({
        "L4.BFF.W": before["L3.BFF.W"], "L4.BFF.B": before["L3.BFF.B"],
        "L4.BFF.FF.T": ("Times", ("L4.BFF.W", "L3.RL")),
        "L4.BFF.FF.P": ("Plus", ("L4.BFF.FF.T", "L4.BFF.B")),
        "L4.RL": ("RectifiedLinear", ("L4.BFF.FF.P",)),
        "CE.BFF.FF.T": ("Times", ("CE.BFF.W", "L4.RL")),
        "meanVal": ("Mean", ("features",)),
        "invstdVal": ("InvStdDev", ("features",)),
        "inputVal": ("PerDimMeanVarNormalization", ("features", "meanVal", "invstdVal")),
        "L1.BFF.FF.T": ("Times", ("L1.BFF.W", "inputVal")),
    })
    for name, wires in expected.items():
        assert after[name] == wires, name
    for p in ("W", "B"):
        a, b = out.get(f"L3.BFF.{p}").value, out.get(f"L4.BFF.{p}").value
        assert np.array_equal(a, b) and not np.shares_memory(a, b)
    assert [n.name for n in out.group("output")] == ["CE.F"]


def test_examples_seed_mel_with_variables(tmp_path):
    net = build(EXAMPLES / "seed.ndl")
    formats.save(net, tmp_path / "m.dnn", format="cntk")
    run(EXAMPLES / "seed.mel", {"inModel": tmp_path / "m.dnn", "dumpFile": tmp_path / "d.txt",
                                "outModel": tmp_path / "m4.nsm"})
    out = formats.load(tmp_path / "m4.nsm")
    assert out.get("CE.BFF.FF.T").inputs[1].name == "L4.RL"


@pytest.fixture
def dnn(tmp_path):
    net = build(EXAMPLES / "dnn.ndl", EXAMPLES / "dnn_macros.ndl")
    formats.save(net, tmp_path / "dnn.1.nsm")
    return tmp_path / "dnn.1.nsm"


def test_add_layer_script(dnn, tmp_path):
    """CNTK speech add_layer.mel: load, in-line NDL with a macro-file macro, SetInput, save."""
    out = tmp_path / "dnn.2.nsm"
    run(EXAMPLES / "add_layer.mel",
        {"CurrModel": dnn, "NewModel": out, "CurrLayer": 1, "NewLayer": 2},
        macros=EXAMPLES / "dnn_macros.ndl")
    w = wiring(formats.load(out))
    assert w["HL2.t"] == ("Times", ("HL2.W", "HL1.y"))
    assert w["HL2.z"] == ("Plus", ("HL2.t", "HL2.b"))
    assert w["HL2.y"] == ("Sigmoid", ("HL2.z",))
    assert w["OL.t"] == ("Times", ("OL.W", "HL2.y"))


def test_swap_criterion_script(dnn, tmp_path):
    run(EXAMPLES / "swap_criterion.mel", {"in": dnn, "out": tmp_path / "mse.nsm"})
    net = formats.load(tmp_path / "mse.nsm")
    assert [n.name for n in net.group("criterion")] == ["CE"]
    assert wiring(net)["CE"] == ("SquareError", ("labels", "P"))
    assert wiring(net)["P"] == ("Softmax", ("OL.z",))


def test_delete_rename_script(tmp_path):
    net = build(EXAMPLES / "seed.ndl")
    formats.save(net, tmp_path / "m.nsm")
    run(EXAMPLES / "delete_rename.mel", {"in": tmp_path / "m.nsm", "out": tmp_path / "s.nsm"})
    w = wiring(formats.load(tmp_path / "s.nsm"))
    assert not any(k.startswith(("L3.", "L2.")) for k in w)
    assert w["CE.BFF.FF.T"] == ("Times", ("CE.BFF.W", "Top.RL"))
    assert w["Top.BFF.FF.T"] == ("Times", ("Top.BFF.W", "L1.RL"))


def test_inline_ndl_forward_reference_and_constant_symbol(dnn, tmp_path):
    r = run(f'm = LoadModel("{dnn}")\ny = Plus(a, OL.z)\na = Times(OL.W, HL1.y)\nk = 3\n'
            f'SetInput(y, 1, OL.z)\nSetInput(OL.t, 1, k)')
    net = r["m"]
    assert wiring(net)["y"] == ("Plus", ("a", "OL.z"))
    assert net.get("k").op == "LearnableParameter" and float(net.get("k").value.ravel()[0]) == 3.0


def test_snippets_define_models_and_macros(tmp_path):
    (tmp_path / "lib.ndl").write_text(
        "ndlMacros = [\n  Sq(x) = [ y = ElementTimes(x, x) ]\n]\n"
        "net = [\n  features = Input($dim$, tag=feature)\n  s = Sq(features)\n"
        "  OutputNodes = (s)\n]\n"
        "dim = 5\n")
    r = run(f'''
mac = [
  Double(x) = [ d = Plus(x, x) ]
]
m2 = [
  features = Input(4, tag=feature)
  o = Double(features)
]
LoadNDLSnippet(lib, "{tmp_path / 'lib.ndl'}", section=ndlMacros)
LoadNDLSnippet(m3, "{tmp_path / 'lib.ndl'}", section=net)
SetDefaultModel(m2)
z = Double(o.d)
SaveModel(m2, "{tmp_path / 'm2.nsm'}")
''')
    assert set(r) == {"mac", "m2", "m3", "lib"}
    assert wiring(r["m2"])["z.d"] == ("Plus", ("o.d", "o.d"))
    assert r["m3"].get("features").shape == (5,)
    assert wiring(r["m3"])["s.y"] == ("ElementTimes", ("features", "features"))


def test_inline_ndl_needs_a_default_model():
    with pytest.raises(NetsurgeonError, match=r"<string>:2:1: NDL Command cannot be executed"):
        run("\nx = Times(a, b)")


def test_editor_add_ndl(dnn):
    ed = Editor()
    ed.load(dnn)
    made = ed.add_ndl("P = Softmax(OL.z)\nMSE = SquareError(labels, P)")
    assert sorted(n.name for n in made) == ["MSE", "P"]
    ed.set_property("MSE", "criterion", True)
    ed.check()


def test_inline_ndl_errors_have_locations(dnn):
    with pytest.raises(NetsurgeonError, match=r"<string>:2:1: Undefined function or macro 'Foo'"):
        run(f'm = LoadModel("{dnn}")\nx = Foo(OL.z)')
    with pytest.raises(NetsurgeonError, match=r"<string>:2:\d+: .*'nothere'"):
        run(f'm = LoadModel("{dnn}")\nx = Plus(OL.z, nothere)\nSetInput(OL.t, 1, x)')
    with pytest.raises(NetsurgeonError,
                       match=r"<string>:2:1: wildcards .* not allowed in in-line NDL"):
        run(f'm = LoadModel("{dnn}")\nx = Plus(HL1.*, OL.z)')


def test_trailing_inline_ndl_is_completed(dnn):
    r = run(f'm = LoadModel("{dnn}")\nP = Softmax(OL.z)')
    assert wiring(r["m"])["P"] == ("Softmax", ("OL.z",))


def test_load_and_edit_sections(dnn, tmp_path):
    """CNTK's sectioned MEL file (C.1): load= sections give macros, edit= lists what runs."""
    script = tmp_path / "sections.mel"
    script.write_text(f'''
load = ndlMacroDefine
edit = first:second
ndlMacroDefine = [
    Twice(x) = [ t = Plus(x, x) ]
]
second = [
    SaveModel(m, "{tmp_path / 'out.nsm'}")
]
first = [
    m = LoadModel("{dnn}")
    y = Twice(OL.z)
]
''')
    r = run(script)
    assert wiring(formats.load(tmp_path / "out.nsm"))["y.t"] == ("Plus", ("OL.z", "OL.z"))
    assert list(r) == ["m"]
    script.write_text("load = a\na = [\n  F(x) = [ y = Plus(x, x) ]\n]\n")
    with pytest.raises(NetsurgeonError,
                       match=r"sections.mel:1:1: this MEL file has load= but no edit="):
        run(script)


def test_docs_python_example(tmp_path):
    """The Python example of docs/mel.md, on the seed network."""
    formats.save(build(EXAMPLES / "seed.ndl"), tmp_path / "in.nsm")
    ed = Editor()
    ed.load(tmp_path / "in.nsm", name="m")
    ed.copy("L3.*", "L4.*")
    ed.set_input("L4.*.T", 1, "L3.RL")
    ed.set_input("CE.*.T", 1, "L4.RL")
    made = ed.add_ndl(
        "norm = PerDimMeanVarNormalization(features, Mean(features), InvStdDev(features))")
    assert sorted(n.op for n in made) == ["InvStdDev", "Mean", "PerDimMeanVarNormalization"]
    ed.set_input("L1.BFF.FF.T", 1, "norm")
    ed.freeze("L1.*")
    ed.rename("L4.*", "Extra.*")
    assert ed.save(tmp_path / "out.nsm") == "native"
    out = formats.load(tmp_path / "out.nsm")
    assert wiring(out)["L1.BFF.FF.T"] == ("Times", ("L1.BFF.W", "norm"))
    assert wiring(out)["CE.BFF.FF.T"] == ("Times", ("CE.BFF.W", "Extra.RL"))


def test_cli_edit_with_macros(dnn, tmp_path, capsys):
    from netsurgeon.cli import main

    out = tmp_path / "cli.nsm"
    argv = ["edit", str(EXAMPLES / "add_layer.mel"), "--macros", str(EXAMPLES / "dnn_macros.ndl"),
            "--set", f"CurrModel={dnn}", "--set", f"NewModel={out}", "--set", "CurrLayer=1",
            "--set", "NewLayer=2"]
    assert main(argv) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert wiring(formats.load(out))["OL.t"] == ("Times", ("OL.W", "HL2.y"))
    assert main(argv[:2] + argv[4:]) == 1  # without the macro file DNNLayer is unknown
    assert "DNNLayer" in capsys.readouterr().err
