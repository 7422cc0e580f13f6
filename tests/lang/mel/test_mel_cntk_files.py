"""MEL on real CNTK v1 model files (../shared/cntk/models): load, dump, edit, save as .dnn."""

from __future__ import annotations

import pytest

from netsurgeon import formats
from netsurgeon.lang.mel import run


@pytest.mark.parametrize("model", ["LR_reg.dnn", "MC.dnn"])
def test_dump_matches_cntk_and_roundtrips(cntk_dir, tmp_path, model):
    src = cntk_dir / "models" / model
    run(f'm = LoadModel("{src}", format=cntk)\nDumpModel(m, "{tmp_path}/a.txt", includeData=true)\n'
        f'SaveModel(m, "{tmp_path}/b.dnn")\nn = LoadModel("{tmp_path}/b.dnn")\n'
        f'Dump(n, "{tmp_path}/c.txt", includeData=true)')
    expected = (cntk_dir / "dumps" / f"{model}_Expected.txt").read_text()
    assert (tmp_path / "a.txt").read_text() == expected
    assert (tmp_path / "c.txt").read_text() == expected
    assert formats.detect_format(tmp_path / "b.dnn") == "cntk"


def test_freeze_hidden_layer_of_real_mlp(cntk_dir, tmp_path):
    src = cntk_dir / "models" / "01_OneHidden.dnn"
    run(f'''
m = LoadModel("{src}")
SetPropertyForSubTree(h1, needGradient, false)
DumpNode(z.z.PlusArgs[0], "{tmp_path}/node.txt")
SaveModel(m, "{tmp_path}/frozen.dnn")
''')
    net = formats.load(tmp_path / "frozen.dnn")
    mult = {n.name: n.learning_rate_multiplier for n in net.nodes if n.op == "LearnableParameter"}
    assert mult["h1._.W"] == 0 and mult["h1._.b"] == 0
    assert mult["z.W"] == 1 and mult["z.b"] == 1
    dumped = (tmp_path / "node.txt").read_text().strip()
    assert dumped.startswith("z.z.PlusArgs[0]=Times ( z.W , h1 )")
