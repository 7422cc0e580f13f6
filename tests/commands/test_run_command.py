"""``netsurgeon run CONFIG.cntk``: the config driver (cntk-config-driver.md §1–4, 6–8, 10–13).

The SGD engine (``netsurgeon.runtime.cntk_sgd``) is someone else's; the tests of the driver's
wiring use a stand-in with the same API (``engine_stub``), the end-to-end runs with CNTK's
numbers are in test_run_e2e.py.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import CNTK

from netsurgeon.cli import main

CONFIGS = CNTK / "configs"
HELLO = CONFIGS / "HelloWorld-LogisticRegression"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(["run", *argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def engine_stub(monkeypatch):
    """A stand-in SGD engine with cntk_sgd's API: builds (or loads ``modelPath.0``), reads
    every epoch from the source and saves ``modelPath.N`` and ``modelPath``."""
    mod = types.ModuleType("netsurgeon.runtime.cntk_sgd")
    calls: list[dict] = []

    class SGDSettings:
        @classmethod
        def from_lookup(cls, get, where="SGD"):
            s = cls()
            s.model_path = get("modelPath")
            s.max_epochs = int(get("maxEpochs"))
            s.minibatch_size = int((get("minibatchSize") or "256").split(":")[0])
            s.epoch_size = int(get("epochSize") or 0)
            s.where = where
            return s

        def minibatch(self, epoch):
            return self.minibatch_size

    def train(network, settings, source, *, build=None, load_model, save_model, cv_source=None,
              make_mode=True, trace_level=0, log=print):
        path = settings.model_path
        record = {"settings": settings, "samples": []}
        calls.append(record)
        if make_mode and os.path.exists(path):
            log("No further training is necessary.")
            return load_model(path)
        if os.path.exists(path + ".0"):
            log(f"Starting from checkpoint. Loading network from '{path}.0'.")
            net = load_model(path + ".0")
        else:
            net = build()
            save_model(net, path + ".0")
        record["network"] = net
        for epoch in range(settings.max_epochs):
            n = sum(int(mb.lengths.sum()) for mb in source(epoch, settings.minibatch(epoch),
                                                           settings.epoch_size))
            record["samples"].append(n)
            log(f"Finished Epoch[{epoch + 1:2d} of {settings.max_epochs}]: [Training] "
                f"samples = {n}")
            save_model(net, path if epoch + 1 == settings.max_epochs else f"{path}.{epoch + 1}")
        return net

    mod.SGDSettings = SGDSettings
    mod.train = train
    mod.calls = calls
    mod.small_model_threads = lambda net, minibatch_size: None
    mod.restore_threads = lambda count: None
    monkeypatch.setitem(sys.modules, "netsurgeon.runtime.cntk_sgd", mod)
    import netsurgeon.runtime as runtime_pkg

    monkeypatch.setattr(runtime_pkg, "cntk_sgd", mod, raising=False)
    return mod


def _banner(command: str, action: str) -> str:
    title = f" {command} command ({action} action)"
    return "\n".join(["#" * 78, "#" + " " * 76 + "#", "#" + title.ljust(76) + "#",
                      "#" + " " * 76 + "#", "#" * 78])


def test_3classes_write_dump_test_on_cntks_model(hello, capsys):
    (hello / "Models").mkdir()
    shutil.copy(CNTK / "models" / "MC.dnn", hello / "Models" / "MC.dnn")
    status, out, err = run(capsys, str(HELLO / "3Classes_bs.cntk"),
                           "command=Output:dumpNodeInfo:Test")
    assert status == 0, err
    assert _banner("Output", "write") in out and _banner("Test", "test") in out
    # the numbers CNTK's own log gives for MC.dnn on the test set (ce summed in float32: its
    # last printed digit depends on the CPU's summation order)
    final = re.search(r"^Final Results: Minibatch\[1-1\]: errs = 10\.200% \* 500; "
                      r"ce = (\S+) \* 500; perplexity = (\S+)$", out, re.M)
    assert final, out
    assert float(final[1]) == pytest.approx(0.24347002, rel=1e-6)
    assert float(final[2]) == pytest.approx(1.27566807, rel=1e-6)
    assert "Written to MC.txt*\nTotal Samples Evaluated = 500" in out
    assert out.rstrip().endswith("COMPLETED.")
    lines = (hello / "MC.txt.z").read_text().splitlines()
    assert len(lines) == 500
    assert all(re.fullmatch(r"-?\d+\.\d{6} -?\d+\.\d{6} -?\d+\.\d{6}", ln) for ln in lines)
    ref = np.load(CNTK / "reference" / "MC" / "z.first10.frames.npy").reshape(10, 3)
    got = np.array([[float(v) for v in ln.split()] for ln in lines[:10]])
    assert np.abs(got - ref).max() < 1e-5
    dump = (hello / "Models" / "MC.dnn.__AllNodes__.txt").read_text()
    assert dump == (CNTK / "dumps" / "MC.dnn_Expected.txt").read_text()


def test_write_category_format_with_label_names(hello, capsys):
    (hello / "Models").mkdir()
    shutil.copy(CNTK / "models" / "MC.dnn", hello / "Models" / "MC.dnn")
    (hello / "map.txt").write_text("zero\none\ntwo\n")
    status, out, err = run(capsys, str(HELLO / "3Classes_bs.cntk"), "command=Output",
                           "Output=[outputNodeNames=z:labels; outputPath=out/deep/MC]",
                           'Output=[format=[type="category"; labelMappingFile=map.txt; '
                           'sequenceEpilogue="\\t// %s\\n"]]')
    assert status == 0, err
    z = (hello / "out" / "deep" / "MC.z").read_text().splitlines()
    labels = (hello / "out" / "deep" / "MC.labels").read_text().splitlines()
    assert len(z) == len(labels) == 500
    assert z[0].endswith("\t// z") and labels[0].endswith("\t// labels")
    assert {ln.split("\t")[0] for ln in z} <= {"zero", "one", "two"}
    wrong = sum(a.split("\t")[0] != b.split("\t")[0] for a, b in zip(z, labels))
    assert wrong == 51  # MC.dnn's 51 errors


def test_log_file_timestamps_and_trace_level(hello, capsys):
    (hello / "Models").mkdir()
    shutil.copy(CNTK / "models" / "MC.dnn", hello / "Models" / "MC.dnn")
    status, out, err = run(capsys, str(HELLO / "3Classes_bs.cntk"), "command=Test",
                           "stderr=logs/run", "timestamping=true", "traceLevel=1",
                           "doneFile=logs/done")
    assert status == 0, err
    assert out == ""
    log = (hello / "logs" / "run_Test.log").read_text()
    stamp = r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d: "
    assert re.search(rf"^{stamp}Final Results: Minibatch\[1-1\]: errs = 10.200% \* 500",
                     log, re.M)
    assert re.search(rf"^{stamp}Action \"test\" complete\.$", log, re.M)
    assert re.search(rf"^{stamp}__COMPLETED__$", log, re.M)
    assert "configparameters: 3Classes_bs.cntk:labelDimension=3" in log
    assert re.search(rf"^{stamp}Commands: Test$", log, re.M)
    assert (hello / "logs" / "done").read_text().startswith("Successfully finished at ")


def test_dry_run_writes_nothing(hello, capsys):
    before = sorted(os.listdir(hello))
    status, out, err = run(capsys, str(HELLO / "lr_bs.cntk"), "--dry-run")
    assert status == 0, err
    assert "Train (train):\n  network: BrainScriptNetworkBuilder" in out
    assert "Output (write):" in out and "LR.txt.<node>" in out
    assert "dry run: nothing run, nothing written" in out
    assert sorted(os.listdir(hello)) == before


def test_lr_bs_end_to_end_with_the_engine_api(hello, capsys, engine_stub):
    status, out, err = run(capsys, str(HELLO / "lr_bs.cntk"), "Train=[SGD=[maxEpochs=2]]")
    assert status == 0, err
    call = engine_stub.calls[0]
    assert call["settings"].where.endswith("Train:SGD")
    assert call["settings"].model_path == str(hello / "Models" / "LR_reg.dnn")
    assert call["samples"] == [1000, 1000]
    names = sorted(os.listdir(hello / "Models"))
    assert names == ["LR_reg.dnn", "LR_reg.dnn.0", "LR_reg.dnn.1",
                     "LR_reg.dnn.__AllNodes__.txt"]
    assert len((hello / "LR.txt.p").read_text().splitlines()) == 500
    assert "Final Results: Minibatch[1-1]: err = " in out
    assert "Finished Epoch[ 2 of 2]: [Training] samples = 1000" in out


def test_epoch_size_continues_across_sweeps(hello, capsys, engine_stub):
    status, _out, err = run(capsys, str(HELLO / "lr_bs.cntk"), "command=Train",
                            "Train=[SGD=[maxEpochs=3; epochSize=700; minibatchSize=100]]")
    assert status == 0, err
    assert engine_stub.calls[0]["samples"] == [700, 700, 700]


# ---- the DPT-style recipe: NDL with top-level ndlMacros, add_layer.mel twice, train each --
DPT = """\
command = Pre1:AddLayer2:Pre2:AddLayer3:Pre3
deviceId = -1
ndlMacros = {macros}
NDLNetworkBuilder = [ networkDescription = {ndl} ]
SGD = [ minibatchSize = 10 ; learningRatesPerSample = 0.01 ; maxEpochs = 1 ]
reader = [
    readerType = "CNTKTextFormatReader"
    file = "train.ctf"
    input = [ features = [ dim = 363 ; format = "dense" ]
              labels = [ dim = 132 ; format = "dense" ] ]
]
Pre1 = [ action = train ; modelPath = models/Pre1/dnn ]
AddLayer2 = [ action = edit ; editPath = {mel}
              CurrModel = models/Pre1/dnn ; NewModel = models/Pre2/dnn.0
              CurrLayer = 1 ; NewLayer = 2 ]
Pre2 = [ action = train ; modelPath = models/Pre2/dnn ]
AddLayer3 = [ action = edit ; editPath = {mel}
              CurrModel = models/Pre2/dnn ; NewModel = models/Pre3/dnn.0
              CurrLayer = 2 ; NewLayer = 3 ]
Pre3 = [ action = train ; modelPath = models/Pre3/dnn ]
"""

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _dpt(tmp_path):
    r = np.random.default_rng(0)
    rows = []
    for _ in range(20):
        x = " ".join(f"{v:.3f}" for v in r.normal(size=363))
        y = " ".join("1" if i == r.integers(132) else "0" for i in range(132))
        rows.append(f"|features {x} |labels {y}\n")
    (tmp_path / "train.ctf").write_text("".join(rows))
    cfg = tmp_path / "dpt.cntk"
    cfg.write_text(DPT.format(macros=EXAMPLES / "dnn_macros.ndl", ndl=EXAMPLES / "dnn.ndl",
                              mel=EXAMPLES / "add_layer.mel"))
    return cfg


def test_dpt_recipe(tmp_path, monkeypatch, capsys, engine_stub):
    from netsurgeon import formats

    cfg = _dpt(tmp_path)
    monkeypatch.chdir(tmp_path)
    status, out, err = run(capsys, str(cfg))
    assert status == 0, err
    for name in ("Pre1", "Pre2", "Pre3"):
        assert (tmp_path / "models" / name / "dnn").is_file()
    assert "Loading network from 'models/Pre2/dnn.0'" in out or \
        f"Loading network from '{tmp_path}/models/Pre2/dnn.0'" in out
    net = formats.load(tmp_path / "models" / "Pre3" / "dnn")
    assert {"HL1.W", "HL2.W", "HL3.W"} <= {n.name for n in net.nodes}
    assert net.node("OL.t").inputs[1].name == "HL3.y"
    assert [c["samples"] for c in engine_stub.calls] == [[20], [20], [20]]


# ---- bad configs: one line with file:line, exit 1, nothing written -------------------------
GOOD = """\
command = Train:Test
modelPath = "out/Models/m.dnn"
Train = [
    action = "train"
    BrainScriptNetworkBuilder = [
        features = Input (2) ; labels = Input (1)
        w = Parameter (1, 2) ; b = Parameter (1, 1)
        p = Sigmoid (w * features + b)
        lr = Logistic (labels, p)
        criterionNodes = (lr) ; outputNodes = (p)
    ]
    SGD = [ minibatchSize = 25 ; learningRatesPerSample = 0.04 ; maxEpochs = 1 ]
    reader = [
        readerType = "CNTKTextFormatReader"
        file = "Train_cntk_text.txt"
        input = [ features = [ dim = 2 ; format = "dense" ]
                  labels = [ dim = 1 ; format = "dense" ] ]
    ]
]
Test = [
    action = "test"
    reader = [
        readerType = "CNTKTextFormatReader"
        file = "Test_cntk_text.txt"
        input = [ features = [ dim = 2 ; format = "dense" ]
                  labels = [ dim = 1 ; format = "dense" ] ]
    ]
]
"""

BAD = {
    "unknown action": (("action = \"test\"\n    reader", "action = \"tset\"\n    reader"),
                       21, "unknown action: tset in command set: Train:Test"),
    "missing section": (("command = Train:Test", "command = Train:Tets"), 1,
                        "command 'Tets' has no section"),
    "reader file": (('file = "Test_cntk_text.txt"', 'file = "nope.txt"'), 24,
                    "cannot read the reader file nope.txt of section 'Test'"),
    "undefined variable": (("maxEpochs = 1", "maxEpochs = $epochs$"), 12,
                           "No variable found with the name 'epochs'"),
    "other reader": (('readerType = "CNTKTextFormatReader"\n        file = "Test',
                      'readerType = "HTKMLFReader"\n        file = "Test'), 23,
                     "readerType=HTKMLFReader in section 'Test'"),
    "no builder": (("BrainScriptNetworkBuilder", "BrainScriptNetworkBuilderX"), 3,
                   "No network builder found"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_configs_fail_in_one_line_and_write_nothing(hello, capsys, engine_stub, case):
    (old, new), line, message = BAD[case]
    assert old in GOOD
    cfg = hello / "bad.cntk"
    cfg.write_text(GOOD.replace(old, new, 1))
    before = sorted(os.listdir(hello))
    status, out, err = run(capsys, str(cfg))
    assert status == 1
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"EXCEPTION occurred: {cfg}:{line}:"), lines[0]
    assert message in lines[0]
    assert sorted(os.listdir(hello)) == before
    assert engine_stub.calls == []


def test_circular_include(hello, capsys):
    (hello / "a.cntk").write_text("include=b.cntk\n")
    (hello / "b.cntk").write_text("x = 1\ninclude=a.cntk\n")
    status, _out, err = run(capsys, str(hello / "a.cntk"))
    assert status == 1
    assert err.startswith(f"EXCEPTION occurred: {hello / 'b.cntk'}:2:")
    assert "circular include" in err and len(err.splitlines()) == 1


def test_refused_actions_name_themselves(hello, capsys):
    cfg = hello / "a.cntk"
    cfg.write_text("command = S\nS = [\n  action = SVD\n  modelPath = m.dnn\n]\n")
    status, _out, err = run(capsys, str(cfg))
    assert status == 1
    assert err.startswith(f"EXCEPTION occurred: {cfg}:3:")
    assert "action 'SVD' of section 'S' is not supported" in err
    cfg.write_text("command = S\nS = [\n  action = createLabelMap\n  section = T\n]\n"
                   + GOOD.split("Test = [", 1)[1].join(["T = [", ""]))
    status, _out, err = run(capsys, str(cfg))
    assert status == 1 and "createLabelMap: the reader of section 'T' is CNTKTextFormatReader" \
        in err


def test_plot_action_writes_dot(hello, capsys):
    pytest.importorskip("netsurgeon.graph.plot")
    (hello / "Models").mkdir()
    shutil.copy(CNTK / "models" / "MC.dnn", hello / "Models" / "MC.dnn")
    cfg = hello / "p.cntk"
    cfg.write_text("command = P\nmodelPath = Models/MC.dnn\nP = [ action = plot\n"
                   "  outputDotFile = pics/mc.dot ]\n")
    status, out, err = run(capsys, str(cfg))
    assert status == 0, err
    assert "Created network description in dot format: " in out
    assert (hello / "pics" / "mc.dot").read_text().lstrip().startswith("digraph")


# ---- build/edit --config: keys through the enclosing blocks (issue 13, item 4) -------------
def test_build_and_edit_take_top_level_keys(tmp_path, monkeypatch, capsys):
    from netsurgeon import formats

    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "c.cntk"
    cfg.write_text(f"ndlMacros = {EXAMPLES / 'dnn_macros.ndl'}\n"
                   "CurrModel = m/dnn.1.nsm\n"
                   f"Train = [ NDLNetworkBuilder = [ networkDescription = "
                   f"{EXAMPLES / 'dnn.ndl'} ] ]\n"
                   f"AddLayer = [ action = edit ; editPath = {EXAMPLES / 'add_layer.mel'}\n"
                   "  NewModel = m/Pre2/dnn.2.nsm ; CurrLayer = 1 ; NewLayer = 2 ]\n")
    assert main(["build", str(EXAMPLES / "dnn.ndl"), "--config", str(cfg), "--section",
                 "Train", "-o", "m/dnn.1.nsm"]) == 0
    assert main(["edit", "--config", str(cfg), "--section", "AddLayer"]) == 0
    capsys.readouterr()
    net = formats.load(tmp_path / "m" / "Pre2" / "dnn.2.nsm")
    assert net.node("OL.t").inputs[1].name == "HL2.y"


# ---- NDLNetworkBuilder with run=/load= sections of the config (ndl-mel.md B.1) ---------------
NDL_SECTIONS = """\
command = Train
modelPath = "Models/m.dnn"
FeatDim = 2
Train = [
    action = "train"
    NDLNetworkBuilder = [ run = ndlNet ; load = ndlDefs ]
    SGD = [ minibatchSize = 25 ; learningRatesPerSample = 0.04 ; maxEpochs = 1 ]
    reader = [
        readerType = "CNTKTextFormatReader"
        file = "Train_cntk_text.txt"
        input = [ features = [ dim = 2 ; format = "dense" ]
                  labels = [ dim = 1 ; format = "dense" ] ]
    ]
]
ndlDefs = [
    Affine(x, W, b) = [ z = Plus(Times(W, x), b) ]
    features = Input($FeatDim$, tag=feature)
]
ndlNet = [
    labels = Input(1, tag=label)
    W = Parameter(1, $FeatDim$) ; b = Parameter(1, 1)
    p = Sigmoid(Affine(features, W, b))
    lr = Logistic(labels, p, tag=criterion)
    BODY
]
"""


def test_ndl_run_and_load_sections(hello, capsys):
    """The network comes from the config's own sections: load= first (macros, inputs), then
    run=, with $var$ from the config."""
    from netsurgeon import formats

    cfg = hello / "sections.cntk"
    cfg.write_text(NDL_SECTIONS.replace("BODY", "OutputNodes = (p)"))
    status, out, err = run(capsys, str(cfg))
    assert status == 0, err
    net = formats.load(hello / "Models" / "m.dnn")
    assert {"features", "labels", "W", "b", "p", "lr"} <= {n.name for n in net.nodes}
    assert net.node("W").shape == (2, 1)  # numpy order of CNTK's [1 x 2]


@pytest.mark.parametrize("change, message, line", [
    (("run = ndlNet", "run = nowhere"), "'run=nowhere' doesn't specify another section", "6"),
    (("BODY", "q = Sigmoid(nothing)"), "could not be resolved 'nothing'", "24:17"),
])
def test_ndl_sections_errors_point_at_the_config(hello, capsys, change, message, line):
    cfg = hello / "sections.cntk"
    cfg.write_text(NDL_SECTIONS.replace(*change).replace("BODY", "OutputNodes = (p)"))
    status, out, err = run(capsys, str(cfg))
    assert status == 1
    assert len(err.strip().splitlines()) == 1, err
    assert f"{cfg}:{line}:" in err and message in err, err
    assert not list(hello.glob("Models/*"))  # no model file written
