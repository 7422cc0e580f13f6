"""Assembling a CNTK command line into one config (cntk-config-driver.md §2.1)."""

from __future__ import annotations

import pytest

from netsurgeon.errors import ParseError
from netsurgeon.lang.config_assembly import assemble


def _write(path, text):
    path.write_text(text)
    return path


def test_overrides_after_the_file_win_and_before_lose(tmp_path):
    cfg = _write(tmp_path / "a.cntk", "x = 1\ny = 2\n")
    got = assemble(["x=0", f"configFile={cfg}", "y=5"])
    assert got.root.get("x") == "1" and got.root.get("y") == "5"


def test_section_override_merges_into_the_section(tmp_path):
    cfg = _write(tmp_path / "a.cntk", "Train = [\n  SGD = [maxEpochs = 10\n lr = 0.1]\n"
                                      "  action = train\n]\n")
    got = assemble([f"configFile={cfg}", "Train=[SGD=[maxEpochs=3]]"])
    sgd = got.root.section("Train").section("SGD")
    assert sgd.get("maxEpochs") == "3" and sgd.get("lr") == "0.1"
    assert got.root.section("Train").get("action") == "train"
    # the value's location is the command line
    assert str(sgd.location_of("maxEpochs")).startswith("<command line>:2")
    assert str(sgd.location_of("lr")) == f"{cfg}:3:7"


def test_several_files_and_the_same_file_twice(tmp_path):
    a = _write(tmp_path / "a.cntk", "x = 1\n")
    b = _write(tmp_path / "b.cntk", "x = 2\nz = 3\n")
    got = assemble([f"configFile={a}+{b}"])
    assert got.root.get("x") == "2" and got.files == [a, b]
    assert str(got.root.location_of("z")) == f"{b}:2:5"
    with pytest.raises(ParseError, match="same config file multiple times"):
        assemble([f"configFile={a}", f"configFile={a}"])


def test_comments_and_variables(tmp_path):
    cfg = _write(tmp_path / "a.cntk", "# a comment\nname = a#b\nv = 1   # note\n"
                                      "w = $v$x\n")
    got = assemble([f"configFile={cfg}"])
    assert got.root.get("name") == "a#b" and got.root.get("v") == "1"
    assert got.root.get("w") == "1x"


def test_current_directory_is_the_base_for_relative_paths(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "data").mkdir()
    _write(tmp_path / "conf" / "a.cntk", "file = train.txt\n")
    got = assemble(["configFile=conf/a.cntk", "currentDirectory=data"], tmp_path)
    assert got.base_dir == tmp_path / "data"
    assert got.path(got.root.get("file")) == tmp_path / "data" / "train.txt"
    with pytest.raises(ParseError, match="no such directory"):
        assemble([f"configFile={tmp_path / 'conf' / 'a.cntk'}", "currentDirectory=nope"],
                 tmp_path)


def test_include_recursive_and_skipped_once(tmp_path):
    _write(tmp_path / "c.cntk", "c = 3\n")
    _write(tmp_path / "b.cntk", "b = 2\ninclude=c.cntk\n")
    a = _write(tmp_path / "a.cntk", "a = 1\ninclude=b.cntk+c.cntk\nafter = 4\n")
    warnings = []
    got = assemble([f"configFile={a}"], warn=warnings.append)
    assert [got.root.get(k) for k in ("a", "b", "c", "after")] == ["1", "2", "3", "4"]
    assert str(got.root.location_of("c")) == f"{tmp_path / 'c.cntk'}:1:5"
    assert len(warnings) == 1 and "already read" in warnings[0]
    assert got.include_dirs == [tmp_path]


def test_include_errors_have_file_and_line(tmp_path):
    a = _write(tmp_path / "a.cntk", "x = 1\ninclude=$x$.cntk\n")
    with pytest.raises(ParseError) as err:
        assemble([f"configFile={a}"])
    assert str(err.value).startswith(f"{a}:2:") and "$variables$" in str(err.value)
    _write(tmp_path / "p.cntk", "p = 1\ninclude=q.cntk\n")
    _write(tmp_path / "q.cntk", "q = 1\n\ninclude=p.cntk\n")
    with pytest.raises(ParseError) as err:
        assemble([f"configFile={tmp_path / 'p.cntk'}"])
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'q.cntk'}:3:") and "circular include" in text
    assert "\n" not in text
