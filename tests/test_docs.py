"""Issue 15: the documentation's code examples run as written (README's Python, mel.md's
commands and Python, brainscript.md's Python API), every ```python block compiles, and the
torch version the docs name is the pinned one unless they say otherwise."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from netsurgeon.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(path: Path, lang: str, after: str | None = None) -> list[str]:
    text = path.read_text(encoding="utf-8")
    if after is not None:
        text = text.split(after, 1)[1]
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


@pytest.fixture
def workdir(tmp_path, monkeypatch, cntk_dir):
    """A folder like the repository root: examples/ and ../shared/cntk beside it."""
    root = tmp_path / "main"
    root.mkdir()
    shutil.copytree(ROOT / "examples", root / "examples")
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "cntk").symlink_to(cntk_dir)
    monkeypatch.chdir(root)
    return root


def _run_python(code: str, name: str) -> None:
    exec(compile(code, name, "exec"), {"__name__": "__doc_example__"})


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_python_block_compiles(doc):
    for i, code in enumerate(_blocks(doc, "python")):
        compile(code, f"{doc.name} block {i + 1}", "exec")


def test_readme_python(workdir):
    _run_python(_blocks(ROOT / "README.md", "python")[0], "README.md")
    assert (workdir / "seed4.dnn").is_file() and (workdir / "four_layers.nsm").is_file()


def test_mel_md_commands_then_python(workdir, capsys):
    doc = ROOT / "docs/mel.md"
    commands = _blocks(doc, "sh")[0].replace("\\\n", " ").splitlines()
    for line in filter(str.strip, commands):
        argv = shlex.split(line)
        assert argv[0] == "netsurgeon"
        assert main(argv[1:]) == 0, (line, capsys.readouterr().err)
    assert (workdir / "dnn.2.nsm").is_file()
    _run_python(_blocks(doc, "python")[0], "mel.md")
    assert (workdir / "out.nsm").is_file()


def test_brainscript_md_python_api(workdir):
    _run_python(_blocks(ROOT / "docs/brainscript.md", "python", after="## Python API")[0],
                "brainscript.md")


def test_docs_name_the_pinned_torch():
    pin = re.search(r'"torch==([\d.]+)"', (ROOT / "pyproject.toml").read_text())[1]
    assert f"torch=={pin}" in (ROOT / "README.md").read_text()
    for doc in DOCS:
        for paragraph in doc.read_text(encoding="utf-8").split("\n\n"):
            for version in re.findall(r"\btorch (\d+\.\d+(?:\.\d+)?)", paragraph):
                if not pin.startswith(version):
                    assert "not the project's pinned" in paragraph, (doc.name, version)
