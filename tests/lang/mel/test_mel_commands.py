"""Every MEL command on seed-shaped networks built with the graph API (ndl-mel.md §C.8)."""

from __future__ import annotations

import numpy as np
import pytest
from mel_helpers import go, rbff_network

from netsurgeon import formats
from netsurgeon.errors import EditError, NetsurgeonError, ValidationError
from netsurgeon.lang.mel import Editor, run


def names(net, pattern="*"):
    return sorted(n.name for n in net.match(pattern))


def wiring(net):
    return {n.name: (n.op, tuple(None if i is None else i.name for i in n.inputs))
            for n in net.nodes}



# ---- copy ---------------------------------------------------------------------------------------
def test_copy_layer_new_nodes_own_weights_links_inside_set(model, tmp_path):
    r = go('m = LoadModel("$D/m.nsm")\nCopy(L3.*, L4.*, copy=all)', tmp_path)
    net = r["m"]
    assert names(net, "L4.*") == ["L4.BFF.B", "L4.BFF.FF.P", "L4.BFF.FF.T", "L4.BFF.W", "L4.RL"]
    w = wiring(net)
    assert w["L4.RL"] == ("RectifiedLinear", ("L4.BFF.FF.P",))
    assert w["L4.BFF.FF.P"] == ("Plus", ("L4.BFF.FF.T", "L4.BFF.B"))
    assert w["L4.BFF.FF.T"] == ("Times", ("L4.BFF.W", None))  # outside the copied set
    for p in ("BFF.W", "BFF.B"):
        src, dst = net.get(f"L3.{p}"), net.get(f"L4.{p}")
        assert np.array_equal(src.value, dst.value) and not np.shares_memory(src.value, dst.value)
    assert net.groups_of("L4.RL") == []


def test_copy_onto_existing_keeps_outside_inputs(model, tmp_path):
    net = go('m = LoadModel("$D/m.nsm")\nCopy(L2.*, L3.*)', tmp_path)["m"]
    w = wiring(net)
    assert w["L3.BFF.FF.T"] == ("Times", ("L3.BFF.W", "L2.RL"))  # docs: unchanged, not NULL
    assert np.array_equal(net.get("L3.BFF.W").value, net.get("L2.BFF.W").value)


def test_copy_value_single_to_many_and_across_models(model, tmp_path):
    r = go('''
m1 = LoadModel("$D/m.nsm")
m2 = LoadModel("$D/m.nsm")
SetDefaultModel(m1)
Copy(L1.BFF.B, m2.*.B, copy=value)
Copy(L3.*, m2.X.*)
''', tmp_path)
    src = r["m1"].get("L1.BFF.B").value
    for n in r["m2"].match("*.B"):
        if n.name.startswith("X."):
            continue
        assert np.array_equal(n.value, src), n.name
    assert wiring(r["m2"])["X.BFF.FF.P"] == ("Plus", ("X.BFF.FF.T", "X.BFF.B"))
    assert names(r["m1"], "X.*") == []


def test_copy_errors(model, tmp_path):
    with pytest.raises(EditError, match=r":2:1: copy=value needs existing targets, but 'L9.BFF.B'"):
        go('m = LoadModel("$D/m.nsm")\nCopy(L1.*, L9.*, copy=value)', tmp_path)
    with pytest.raises(EditError, match="one node type to another"):
        go('m = LoadModel("$D/m.nsm")\nCopy(L1.RL, L1.BFF.B)', tmp_path)
    with pytest.raises(EditError, match="copyFlag=\\(all\\|value\\)"):
        go('m = LoadModel("$D/m.nsm")\nCopy(L1.*, L9.*, copy=some)', tmp_path)
    with pytest.raises(EditError, match="same shape"):
        go('m = LoadModel("$D/m.nsm")\nCopy(L1.*, *.X)', tmp_path)


def test_copy_abbreviated_option_and_value(model, tmp_path):
    net = go('m = LoadModel("$D/m.nsm")\nCopy(L2.*, L3.*, copyFlag=val)', tmp_path)["m"]
    assert np.array_equal(net.get("L3.BFF.W").value, net.get("L2.BFF.W").value)


def test_copy_subtree(model, tmp_path):
    r = go('''
m1 = LoadModel("$D/m.nsm")
m2 = CreateModel()
CopySubTree(m1.L2.RL, m2, new_)
''', tmp_path)
    net = r["m2"]
    assert names(net) == sorted("new_" + n for n in [
        "L2.RL", "L2.BFF.FF.P", "L2.BFF.FF.T", "L2.BFF.W", "L2.BFF.B", "L1.RL", "L1.BFF.FF.P",
        "L1.BFF.FF.T", "L1.BFF.W", "L1.BFF.B", "features"])
    assert wiring(net)["new_L2.BFF.FF.T"] == ("Times", ("new_L2.BFF.W", "new_L1.RL"))
    net.validate()


def test_copy_inputs(model, tmp_path):
    net = go('m = LoadModel("$D/m.nsm")\nCopyInputs(L1.BFF.FF.T, L2.BFF.FF.T)\n'
             'CopyNodeInputs(L1.RL, Z)', tmp_path)["m"]
    assert wiring(net)["L2.BFF.FF.T"] == ("Times", ("L1.BFF.W", "features"))
    assert wiring(net)["Z"] == ("RectifiedLinear", ("L1.BFF.FF.P",))


# ---- rewiring -----------------------------------------------------------------------------------
def test_set_input_wildcard_targets_and_append(model, tmp_path):
    net = go('m = LoadModel("$D/m.nsm")\nSetNodeInput(L*.BFF.FF.T, 1, features)', tmp_path)["m"]
    for i in (1, 2, 3):
        assert wiring(net)[f"L{i}.BFF.FF.T"][1][1] == "features"


@pytest.mark.parametrize("cmd, message", [
    ("SetInput(L1.BFF.FF.T, 2, features)",
     r":2:1: input index 2 is out of range for 'L1.BFF.FF.T'.*between 0 and 1"),
    ("SetInput(L1.BFF.FF.T, x, features)", "0-based integer"),
    ("SetInput(L1.BFF.FF.T, 1, L*.RL)", "single node.*matches 3"),
    ("SetInput(L1.BFF.FF.T, 1, L1.RLL)", r"no node matches 'L1.RLL'.*did you mean: L1.RL"),
    ("SetInput(L1.BFF.FF.T, 1)",
     r"Invalid number of parameters for SetNodeInput: expected 3, got 2"),
    ("SetInputs(L1.BFF.FF.T, features)",
     r"Times operation 'L1.BFF.FF.T' expects 2 inputs \(given: 1\)"),
    ("SetInputs(L*.RL, features)", "single node"),
    ("SetProperty(L1.RL, MultiSeq, true)", "Invalid property, 'MultiSeq'"),
    ("Remove(L9.*)", r"no node matches 'L9.\*'.*did you mean"),
    ("Rename(L1.RL, L2.RL)", "already exists"),
    ("Frobnicate(L1.RL)", "Unknown Editor function 'Frobnicate'"),
    ("Dump(nomodel, x.txt)", "Model 'nomodel' does not exist"),
    ("SetDefaultModel(zz)", "Model 'zz' does not exist"),
])
def test_bad_commands(model, tmp_path, cmd, message):
    out = tmp_path / "out.nsm"
    with pytest.raises(NetsurgeonError, match=message) as info:
        go(f'm = LoadModel("$D/m.nsm")\n{cmd}\nSaveModel(m, "$D/out.nsm")', tmp_path)
    assert info.value.location.line == 2
    assert not out.exists()


def test_set_inputs(model, tmp_path):
    net = go('m = LoadModel("$D/m.nsm")\nSetInputs(L2.BFF.FF.T, L1.BFF.W, features)', tmp_path)["m"]
    assert wiring(net)["L2.BFF.FF.T"] == ("Times", ("L1.BFF.W", "features"))


# ---- properties ---------------------------------------------------------------------------------
@pytest.mark.parametrize("prop, group", [
    ("FinalCriterion", "criterion"), ("Criteria", "criterion"), ("criterion", "criterion"),
    ("Evaluation", "evaluation"), ("Eval", "evaluation"), ("Feature", "feature"),
    ("Label", "label"), ("Output", "output"), ("out", "output"),
])
def test_set_property_groups(model, tmp_path, prop, group):
    r = go(f'm = LoadModel("$D/m.nsm")\nSetProperty(L2.RL, {prop}, true)', tmp_path)
    assert group in r["m"].groups_of("L2.RL")
    r = go(f'm = LoadModel("$D/m.nsm")\nSetProperty(CE.F, {prop}, false)', tmp_path)
    assert group not in r["m"].groups_of("CE.F")


@pytest.mark.parametrize("prop, value, mult", [
    ("ComputeGradient", "false", 0.0), ("NeedsGradient", "false", 0.0), ("needGradient", "F", 0.0),
    ("needGradient", "true", 1.0), ("learningRateMultiplier", "0.25", 0.25),
    ("freezeParameters", "true", 0.0),
])
def test_set_property_gradients(model, tmp_path, prop, value, mult):
    net = go(f'm = LoadModel("$D/m.nsm")\nSetProperty(L1.BFF.*, {prop}, {value})'.replace(
        "L1.BFF.*", "L1.BFF.W"), tmp_path)["m"]
    assert net.get("L1.BFF.W").learning_rate_multiplier == mult


def test_set_property_recurrent_accepted_and_freeze_rejects_non_parameters(model, tmp_path):
    go('m = LoadModel("$D/m.nsm")\nSetProperty(L1.RL, recurrent, true)', tmp_path)
    with pytest.raises(EditError, match="not freezable"):
        go('m = LoadModel("$D/m.nsm")\nSetProperty(L1.RL, freezeParameters, true)', tmp_path)


def test_set_property_for_subtree(model, tmp_path):
    net = go('m = LoadModel("$D/m.nsm")\nSetPropertyForSubTree(L2.RL, ComputeGradient, false)',
             tmp_path)["m"]
    frozen = sorted(n.name for n in net.nodes
                    if n.op == "LearnableParameter" and n.learning_rate_multiplier == 0)
    assert frozen == ["L1.BFF.B", "L1.BFF.W", "L2.BFF.B", "L2.BFF.W"]
    net = go('m = LoadModel("$D/m.nsm")\nSetPropertyForSubTree(L1.RL, learningRateMultiplier, 0.5)',
             tmp_path)["m"]
    assert net.get("L1.BFF.W").learning_rate_multiplier == 0.5
    with pytest.raises(EditError, match="SetPropertyForSubTree"):
        go('m = LoadModel("$D/m.nsm")\nSetPropertyForSubTree(L1.RL, output, true)', tmp_path)


# ---- removing and renaming -----------------------------------------------------------------------
def test_remove_several_with_wildcards_and_aliases(model, tmp_path):
    for cmd in ("Remove", "RemoveNode", "Delete", "DeleteNode"):
        net = go(f'm = LoadModel("$D/m.nsm")\n{cmd}(L3.*, labels)', tmp_path)["m"]
        assert names(net, "L3.*") == [] and net.get("labels") is None
        assert wiring(net)["CE.BFF.FF.T"] == ("Times", ("CE.BFF.W", None))
        net.lint()


def test_rename_with_wildcards(model, tmp_path):
    net = go('m = LoadModel("$D/m.nsm")\nRename(L3.*, Top.*)\nRename(CE.F, Out)', tmp_path)["m"]
    assert names(net, "Top.*") == ["Top.BFF.B", "Top.BFF.FF.P", "Top.BFF.FF.T", "Top.BFF.W",
                                   "Top.RL"]
    assert wiring(net)["CE.BFF.FF.T"] == ("Times", ("CE.BFF.W", "Top.RL"))
    assert "output" in net.groups_of("Out")


def test_delete_and_rename_script_then_save(model, tmp_path):
    """A script that deletes a layer, bridges the gap and renames: saves a valid model."""
    go('''
m = LoadModel("$D/m.nsm")
Delete(L2.*)
SetInput(L3.BFF.FF.T, 1, L1.RL)
Rename(L3.*, L2.*)
SaveModel(m, "$D/short.nsm")
''', tmp_path)
    net = formats.load(tmp_path / "short.nsm")
    assert names(net, "L*.RL") == ["L1.RL", "L2.RL"]
    assert wiring(net)["L2.BFF.FF.T"] == ("Times", ("L2.BFF.W", "L1.RL"))
    assert wiring(net)["CE.BFF.FF.T"] == ("Times", ("CE.BFF.W", "L2.RL"))


def test_revise_parameter(model, tmp_path):
    (tmp_path / "b.txt").write_text("\n".join(str(float(i)) for i in range(8)) + "\n")
    (tmp_path / "w.txt").write_text(
        "\n".join(" ".join(str(r * 10 + c) for c in range(6)) for r in range(8)))
    net = go('m = LoadModel("$D/m.nsm")\nReviseParameter(L1.BFF.B, "$D/b.txt")\n'
             'ReviseParameter(L1.BFF.W, "$D/w.txt")', tmp_path)["m"]
    assert net.get("L1.BFF.B").value.tolist() == list(range(8))
    w = net.get("L1.BFF.W").value  # numpy (in=6, out=8); file rows are CNTK rows (out)
    assert w.shape == (6, 8) and w[2, 5] == 52
    with pytest.raises(EditError, match="has 8 values"):
        go('m = LoadModel("$D/m.nsm")\nReviseParameter(L1.BFF.W, "$D/b.txt")', tmp_path)


# ---- models, default model, saving, dumping ------------------------------------------------------
def test_default_model_is_most_recent_until_set(model, tmp_path):
    r = go('a = LoadModel("$D/m.nsm")\nb = LoadModel("$D/m.nsm")\nRemove(L1.RL)', tmp_path)
    assert r.default == "b" and r["b"].get("L1.RL") is None and r["a"].get("L1.RL") is not None
    r = go('a = LoadModel("$D/m.nsm")\nSetDefaultModel(a)\nb = LoadModel("$D/m.nsm")\n'
           'Remove(L1.RL)', tmp_path)
    assert r.default == "a" and r["a"].get("L1.RL") is None
    r = go('LoadModelWithName(a, "$D/m.nsm")\nCreateModelWithName(c)\nCreateModel()\n'
           'UnloadModel(c, nothere)', tmp_path)
    assert sorted(r) == ["a", "default"] and r.default == "default"
    assert any("nothere" in w for w in r.warnings)


def test_no_default_model_error(tmp_path):
    with pytest.raises(EditError, match=":1:1: there is no default model"):
        run("Remove(x)")


def test_save_forms_and_formats(model, tmp_path):
    go('''
m = LoadModel("$D/m.nsm", format=native)
SaveModel("$D/a.nsm")
SaveModel(m, "$D/b.bin", format=nat)
SaveDefaultModel("$D/c.nsm")
Save(m, "$D/d.nsm")
x = LoadModel("$D/a.nsm")
SaveModel(x, "$D/e.nsm")
''', tmp_path)
    for f in "abcde":
        p = tmp_path / (f + (".bin" if f == "b" else ".nsm"))
        assert formats.detect_format(p) == "native"
        assert wiring(formats.load(p)) == wiring(formats.load(model))


def test_save_validates_first_and_names_every_bad_node(model, tmp_path):
    (tmp_path / "out.nsm").write_bytes(b"old")
    with pytest.raises(ValidationError) as info:
        go('m = LoadModel("$D/m.nsm")\nCopy(L3.*, L4.*)\nCopy(L2.*, L5.*)\n'
           'SaveModel(m, "$D/out.nsm")', tmp_path)
    text = str(info.value)
    assert text.startswith(f"{'<string>'}:4:1: model 'm' is not valid")
    assert "L4.BFF.FF.T (Times): input 1 not connected" in text and "L5.BFF.FF.T" in text
    assert (tmp_path / "out.nsm").read_bytes() == b"old"


def test_failing_script_leaves_files_untouched_and_saves_are_staged(model, tmp_path):
    (tmp_path / "a.nsm").write_bytes(b"old")
    with pytest.raises(EditError):
        go('m = LoadModel("$D/m.nsm")\nSaveModel(m, "$D/a.nsm")\nDumpModel(m, "$D/d.txt")\n'
           'Remove(nope)', tmp_path)
    assert (tmp_path / "a.nsm").read_bytes() == b"old" and not (tmp_path / "d.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nsm", "m.nsm"]  # no temp files left


def test_overwriting_the_input_model_in_place(model, tmp_path):
    before = wiring(formats.load(model))
    go('m = LoadModel("$D/m.nsm")\nCopy(L1.BFF.B, L2.BFF.B, copy=value)\nSaveModel(m, "$D/m.nsm")\n'
       'n = LoadModel("$D/m.nsm")', tmp_path)
    after = formats.load(model)
    assert wiring(after) == before
    assert np.array_equal(after.get("L2.BFF.B").value, after.get("L1.BFF.B").value)


def test_dry_run_writes_nothing(model, tmp_path):
    r = go('m = LoadModel("$D/m.nsm")\nSaveModel(m, "$D/x.nsm")\nDump(m, "$D/x.txt")\n'
           'y = LoadModel("$D/x.nsm")', tmp_path, dry_run=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.nsm"] and "y" in r


def test_dump_and_dump_node(model, tmp_path):
    from netsurgeon.formats.dump import dump_text

    go('m = LoadModel("$D/m.nsm")\nDumpNetwork(m, "$D/all.txt", includeData = true)\n'
       'DumpNode(L1.BFF.*, "$D/l1.txt", include=false)', tmp_path)
    net = formats.load(model)
    assert (tmp_path / "all.txt").read_text() == dump_text(net, include_data=True)
    assert (tmp_path / "l1.txt").read_text() == dump_text(net, nodes=net.match("L1.BFF.*"))
    with pytest.raises(EditError, match="Invalid optional parameter 'inc'"):
        go('m = LoadModel("$D/m.nsm")\nDump(m, "$D/x.txt", inc=true)', tmp_path)


def test_format_option_errors(model, tmp_path):
    with pytest.raises(EditError, match=r"format=\(cntk\|cntkv2\|native\|onnx\)"):
        go('m = LoadModel("$D/m.nsm", format=tflite)', tmp_path)
    with pytest.raises(NetsurgeonError, match="not found"):
        go('m = LoadModel("$D/none.nsm")', tmp_path)


def test_weights_copied_exactly_once(model, tmp_path):
    """Copy copies each weight once: count ndarray.copy calls on the sources' values."""
    copies = []

    class Counting(np.ndarray):
        def copy(self, *a, **k):
            copies.append(self.shape)
            return np.asarray(self).copy(*a, **k)

    ed = Editor()
    net = ed.add_model("m", rbff_network(layers=3, width=16))
    for n in net.match("L3.*"):
        if n.value is not None:
            n.update(value=np.array(n.value).view(Counting))
    ed.copy("L3.*", "L4.*")
    assert sorted(copies) == sorted([(16, 16), (16,)])
    ed.set_input("L4.*.T", 1, "L3.RL")
    ed.set_input("CE.*.T", 1, "L4.RL")
    ed.check()
    assert len(copies) == 2
    for p in ("L4.BFF.W", "L4.BFF.B"):
        assert not np.shares_memory(net.get(p).value, net.get(p.replace("L4", "L3")).value)


def test_rename_swap_and_case_change(model, tmp_path):
    net = go('m = LoadModel("$D/m.nsm")\nRename(L1.*, T.*)\nRename(L2.*, L1.*)\nRename(T.*, L2.*)\n'
             'Rename(features, FEATURES)', tmp_path)["m"]
    assert wiring(net)["L1.BFF.FF.T"] == ("Times", ("L1.BFF.W", "L2.RL"))
    assert wiring(net)["L2.BFF.FF.T"] == ("Times", ("L2.BFF.W", "FEATURES"))


def test_copy_subtree_documented_two_argument_forms(model, tmp_path):
    r = go('m1 = LoadModel("$D/m.nsm")\nm2 = CreateModel()\nSetDefaultModel(m1)\n'
           'CopySubTree(L1.RL, new.L1.RL)\nCopySubTree(L1.RL, m2)\n'
           'CopySubTree(L1.RL, m2.x_L1.RL, copy=all)', tmp_path)
    assert wiring(r["m1"])["new.L1.BFF.FF.T"] == ("Times", ("new.L1.BFF.W", "new.features"))
    assert sorted(n.name for n in r["m2"].nodes if not n.name.startswith("x_")) == sorted(
        ["L1.RL", "L1.BFF.FF.P", "L1.BFF.FF.T", "L1.BFF.W", "L1.BFF.B", "features"])
    assert r["m2"].get("x_L1.RL") is not None
    with pytest.raises(EditError, match="the target must be the source root's name with a prefix"):
        go('m1 = LoadModel("$D/m.nsm")\nCopySubTree(L1.RL, L2.RL)', tmp_path)


def test_load_ndl_snippet_whole_file_and_missing_section(tmp_path):
    pytest.importorskip("netsurgeon.lang.ndl")
    (tmp_path / "net.ndl").write_text("features = Input(3, tag=feature)\nh = Sigmoid(features)\n")
    r = run(f'LoadNDLSnippet(mNDL, "{tmp_path / "net.ndl"}")')
    assert wiring(r["mNDL"])["h"] == ("Sigmoid", ("features",)) and r.default == "mNDL"
    with pytest.raises(EditError, match=r":1:1: Section nope specified .* not found"):
        run(f'LoadNDLSnippet(m, "{tmp_path / "net.ndl"}", section=nope)')


def test_every_statement_and_editor_call_is_linted(model, tmp_path, monkeypatch):
    """conftest.py lints every model after each statement and Editor call (IR invariants)."""
    from netsurgeon.graph import Network

    linted = []
    real = Network.lint
    monkeypatch.setattr(Network, "lint", lambda self: (linted.append(self.name), real(self))[1])
    go('m = LoadModel("$D/m.nsm")\nCopy(L3.*, L4.*)\nSetInput(L4.*.T, 1, L3.RL)', tmp_path)
    assert linted.count("m") >= 3  # at least once after each of the three statements


def test_freeze_parameters_puts_batch_normalization_in_inference_mode():
    """SetProperty freezeParameters is the edit layer's freeze: multiplier 0, and batch
    normalization stops updating its running statistics (both time constants infinite)."""
    import math

    ed = Editor()
    net = ed.add_model("m", rbff_network(layers=1))
    stats = [net.add_parameter(f"bn.{k}", np.ones((8,), np.float32)) for k in "sbmv"]
    bn = net.add("bn", "BatchNormalization", (net.get("L1.RL"), *stats),
                 attrs={"normalization_time_constant": 5000.0})
    ed.set_property("bn", "freezeParameters", "true")
    assert bn.learning_rate_multiplier == 0
    assert math.isinf(bn.attrs["normalization_time_constant"])
    assert math.isinf(bn.attrs["blend_time_constant"])
    assert ed.freeze("L1.*") == [net.get("L1.BFF.B"), net.get("L1.BFF.W")]
    assert ed.unfreeze("L1.BFF.W", multiplier=0.5)[0].learning_rate_multiplier == 0.5


def test_booleans_follow_cntk_spellings_case_included(model, tmp_path):
    net = go('m = LoadModel("$D/m.nsm")\nSetProperty(L1.RL, output, True)\n'
             'SetProperty(CE.F, output, F)', tmp_path)["m"]
    assert [n.name for n in net.group("output")] == ["L1.RL"]
    with pytest.raises(EditError, match=r":2:1: boolean argument expected for output, got 'tRuE'"):
        go('m = LoadModel("$D/m.nsm")\nSetProperty(L1.RL, output, tRuE)', tmp_path)


def test_set_input_on_many_targets_is_all_or_nothing():
    ed = Editor()
    net = ed.add_model("m", rbff_network(layers=1))
    rl = net.get("L1.RL")
    a = net.add("A.x", "Plus", (rl, rl))
    net.add("A.y", "Sigmoid", (rl,))
    version = net.version
    with pytest.raises(EditError, match="input index 1 is out of range for 'A.y': Sigmoid takes 1"):
        ed.set_input("A.*", 1, "features")  # A.x accepts it, A.y (one input) does not
    assert a.inputs == (rl, rl)
    ed.set_property("L1.BFF.W", "learningRateMultiplier", 0.5)
    assert net.version > version  # every change is counted by the network itself
