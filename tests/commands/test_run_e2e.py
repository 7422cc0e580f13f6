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


def test_one_hidden_run_test(tmp_path, capsys):
    """Simple2d/OneHidden with run-test's command line (SimpleNetworkBuilder)."""
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
    assert float(epochs[2][1]) < 0.3  # trains (baseline: 0.15792301)
    assert re.search(rf"^{stamp}Final Results: Minibatch\[1-1\]: EvalClassificationError = "
                     r"\d\.\d{8} \* 603; CrossEntropyWithSoftmax = \d\.\d{8} \* 603; "
                     r"perplexity = \d\.\d{8}$", out, re.M)
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
