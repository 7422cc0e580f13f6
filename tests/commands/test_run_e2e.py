"""``netsurgeon run`` of CNTK's own configs end to end, with the SGD engine
(``netsurgeon.runtime.cntk_sgd``): model/checkpoint names, output files, log lines."""

from __future__ import annotations

import re

import pytest
from tests.conftest import CNTK

from netsurgeon.cli import main

pytest.importorskip("netsurgeon.runtime.cntk_sgd")

HELLO = CNTK / "configs" / "HelloWorld-LogisticRegression"
SIMPLE2D = CNTK / "configs" / "Simple2d"


@pytest.mark.parametrize("config, model, out, crit", [
    ("lr_bs.cntk", "LR_reg.dnn", "LR.txt.p", r"err = \d\.\d{8} \* 500; lr = \d\.\d{8} \* 500"),
    ("3Classes_bs.cntk", "MC.dnn", "MC.txt.z",
     r"errs = \d+\.\d{3}% \* 500; ce = \d\.\d{8} \* 500; perplexity = \d\.\d{8}"),
])
def test_hello_world_configs(hello, capsys, config, model, out, crit):
    assert main(["run", str(HELLO / config), "Train=[SGD=[maxEpochs=3]]"]) == 0
    text = capsys.readouterr().out
    names = sorted(p.name for p in (hello / "Models").iterdir())
    assert {model, f"{model}.0", f"{model}.1", f"{model}.2",
            f"{model}.__AllNodes__.txt"} <= set(names)
    assert re.search(r"^Finished Epoch\[ 3 of 3\]: \[Training\] .*totalSamplesSeen = 3000; "
                     r"learningRatePerSample = 0\.039999999; epochTime=", text, re.M)
    assert re.search(rf"^Final Results: Minibatch\[1-1\]: {crit}$", text, re.M), text
    assert len((hello / out).read_text().splitlines()) == 500
    assert text.rstrip().endswith("COMPLETED.")
    # the trained model evaluates as the log says
    from netsurgeon import formats

    net = formats.load(hello / "Models" / model)
    assert len(net) > 5


@pytest.mark.slow
def test_one_hidden_run_test(tmp_path, capsys):
    """Simple2d/OneHidden with run-test's command line (SimpleNetworkBuilder) gives CNTK's
    numbers."""
    data = SIMPLE2D / "Data"
    argv = ["run", f"configFile={SIMPLE2D / 'OneHidden.cntk'}", f"currentDirectory={data}",
            f"RunDir={tmp_path}", f"DataDir={data}", f"ConfigDir={SIMPLE2D}",
            f"OutputDir={tmp_path}", "DeviceId=-1", "timestamping=true",
            "Simple_Demo_Train=[SGD=[maxEpochs=3]]"]
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 0, err
    stamp = r"\d\d/\d\d/\d{4} \d\d:\d\d:\d\d: "
    assert re.search(rf"^{stamp}Model has 25 nodes\. Using CPU\.$", out, re.M)
    assert re.search(rf"^{stamp}Training criterion:   CrossEntropyWithSoftmax = "
                     r"CrossEntropyWithSoftmax$", out, re.M)
    assert re.search(rf"^{stamp}Evaluation criterion: EvalClassificationError = "
                     r"ClassificationError$", out, re.M)
    params = re.findall(rf"^{stamp}\tNode '(\w+)' \(LearnableParameter operation\) : "
                        r"\[(\d+ x \d+)\]$", out, re.M)
    assert params == [("B0", "50 x 1"), ("B1", "50 x 1"), ("B2", "2 x 1"), ("W0", "50 x 2"),
                      ("W1", "50 x 50"), ("W2", "2 x 50")]
    assert re.search(rf"^{stamp}Precomputing --> 3 PreCompute nodes found\.$", out, re.M)
    epochs = re.findall(rf"^{stamp}Finished Epoch\[ (\d) of 3\]: \[Training\] "
                        r"CrossEntropyWithSoftmax = (\d\.\d{8}) \* 10000; "
                        r"EvalClassificationError = (\d\.\d{8}) \* 10000; "
                        r"totalSamplesSeen = \d+; learningRatePerSample = [\d.]+; epochTime=",
                        out, re.M)
    assert [e[0] for e in epochs] == ["1", "2", "3"]
    final = re.findall(rf"^{stamp}Final Results: Minibatch\[1-1\]: EvalClassificationError = "
                       r"(\d\.\d{8}) \* 603; CrossEntropyWithSoftmax = (\d\.\d{8}) \* 603; "
                       r"perplexity = (\d\.\d{8})$", out, re.M)
    # CNTK's numbers (baseline.cpu.txt): the same minibatches, so every error count is CNTK's;
    # the cross-entropies differ from float32 summation order only (MKL vs torch), well
    # inside 5 significant digits (measured: 2.7e-6 relative at most)
    base = (SIMPLE2D / "OneHidden" / "baseline.cpu.txt").read_text()
    ref = re.findall(r"Finished Epoch\[ (\d) of 3\]: \[Training\] CrossEntropyWithSoftmax = "
                     r"([\d.]+) \* 10000; EvalClassificationError = ([\d.]+) ", base)
    assert len(ref) == 3
    for (_, ce, err), (_, ref_ce, ref_err) in zip(epochs, ref):
        assert err == ref_err
        assert float(ce) == pytest.approx(float(ref_ce), rel=5e-6)
    ref_final = re.findall(r"Final Results: Minibatch\[1-1\]: EvalClassificationError = "
                           r"([\d.]+) \* 603; CrossEntropyWithSoftmax = ([\d.]+) \* 603; "
                           r"perplexity = ([\d.]+)", base)
    assert len(final) == len(ref_final) == 1
    assert final[0][0] == ref_final[0][0]  # 0.05140962: 31 of 603 wrong, as CNTK
    for got, want in zip(final[0][1:], ref_final[0][1:]):
        assert float(got) == pytest.approx(float(want), rel=5e-6)
    assert sorted(p.name for p in (tmp_path / "Models").iterdir()) == [
        "simple.dnn", "simple.dnn.0", "simple.dnn.1", "simple.dnn.2", "simple.dnn.ckp"]
    lines = (tmp_path / "SimpleOutput.PosteriorProb").read_text().splitlines()
    assert len(lines) == 603 and lines[0].endswith("\t// PosteriorProb")


@pytest.mark.slow
def test_slu_hands_on(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(CNTK / "configs" / "SLUHandsOn" / "SLUHandsOn.cntk"),
                 f"DataDir={CNTK / 'data'}", "TrainTagger=[SGD=[maxEpochs=2;epochSize=700]]"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "Models").iterdir()) == [
        "slu.cmf", "slu.cmf.0", "slu.cmf.1", "slu.cmf.ckp"]
    assert re.search(r"^Finished Epoch\[ 2 of 2\]: \[Training\] ce = \d\.\d{8} \* \d+; "
                     r"errs = \d+\.\d{3}% \* \d+; totalSamplesSeen = \d+; "
                     r"learningRatePerSample = 0\.003; epochTime=", out, re.M)
    assert re.search(r"^Final Results: Minibatch\[1-1\]: errs = \d+\.\d{3}% \* 10984; "
                     r"ce = \d\.\d{8} \* 10984; perplexity = ", out, re.M)


def test_dpt_recipe_with_the_engine(tmp_path, monkeypatch, capsys):
    """NDL with a top-level ndlMacros, add_layer.mel into models/Pre2/ and models/Pre3/ (not
    existing), train after each step: each training starts from the edited model."""
    from tests.commands.test_run_command import _dpt

    cfg = _dpt(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(cfg)]) == 0
    out = capsys.readouterr().out
    for step in ("Pre2", "Pre3"):
        assert f"Starting from checkpoint. Loading network from '{tmp_path}/models/{step}/dnn.0'" \
            in out
    assert out.count("Finished Epoch[ 1 of 1]: [Training] CE = ") == 3
    for step in ("Pre1", "Pre2", "Pre3"):
        assert (tmp_path / "models" / step / "dnn").is_file()


def test_precision_double_trains_in_float64(hello):
    """precision=double: the network is built and trained in float64 and saved so."""
    import numpy as np

    from netsurgeon import formats

    assert main(["run", str(HELLO / "lr_bs.cntk"), "precision=double",
                 "Train=[SGD=[maxEpochs=1]]"]) == 0
    net = formats.load(hello / "Models" / "LR_reg.dnn")
    values = [n.value for n in net.nodes if n.op == "LearnableParameter"]
    assert values and all(v.dtype == np.float64 for v in values)
    # trained in float64: the values are not float32 numbers widened
    assert any(np.any(v != v.astype(np.float32)) for v in values)


_CV = ("CV=[action=cv; crossValidationInterval=0:1:3; reader=[readerType=CNTKTextFormatReader; "
       "file=Test_cntk_text.txt; input=[features=[dim=2; format=dense]; "
       "labels=[dim=1; format=dense]]]]")


def test_cv_action_over_checkpoints(hello, capsys):
    """cv evaluates modelPath.<i> of crossValidationInterval; a missing one is reported and the
    final model stands in for it once; the final model's results equal the test action's."""
    assert main(["run", str(HELLO / "lr_bs.cntk"), "command=Train:CV:Test",
                 "Train=[SGD=[maxEpochs=2]]", _CV]) == 0
    out = capsys.readouterr().out
    model = "Models/LR_reg.dnn"
    assert re.findall(r"^Model (\S+) does not exist\.$", out, re.M) == [f"{model}.2",
                                                                       f"{model}.3"]
    assert re.findall(r"^Model (\S+) --> $", out, re.M) == [f"{model}.0", f"{model}.1", model]
    finals = re.findall(r"^Final Results: Minibatch\[1-1\]: err = (\S+) \* 500; "
                        r"lr = (\S+) \* 500", out, re.M)
    assert len(finals) == 4  # three cv models, then the test action
    assert finals[2] == finals[3]
    assert finals[0] != finals[2]  # the untrained model differs
    best = re.findall(r"^Based on Err\[(\d)\]: Best model = (\S+) with min err (\S+)$", out,
                      re.M)
    errs = [min(float(f[j]) for f in finals[:3]) for j in (0, 1)]
    assert [(b[0], float(b[2])) for b in best] == [("0", pytest.approx(errs[0], rel=1e-6)),
                                                   ("1", pytest.approx(errs[1], rel=1e-6))]
