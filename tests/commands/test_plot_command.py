"""``netsurgeon plot``: files of every format, the renderer fallback, one-line errors, and a
screenshot test: the SVG rendered to pixels shows one box per non-parameter node."""

from __future__ import annotations

import io
import json
import os
import re
import stat

import numpy as np
import pytest
from tests.commands.helpers import one_error

from netsurgeon.cli import main
from netsurgeon.formats import load
from netsurgeon.graph.plot import GROUP_COLORS, NODE_COLOR, find_renderer
from netsurgeon.ops import Category

needs_renderer = pytest.mark.skipif(find_renderer() is None, reason="no Graphviz renderer "
                                    "(dot or graphviz-pure) installed")


def _plot(capsys, *argv) -> dict:
    assert main(["plot", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_dot_file(cntk_dir, tmp_path, capsys):
    out = tmp_path / "mc.dot"
    report = _plot(capsys, cntk_dir / "models" / "MC.dnn", "-o", out)
    assert report["nodes"] == 6 and report["folded_parameters"] == 2
    assert report["edges"] == 6 and report["renderer"] is None
    text = out.read_text()
    assert text.startswith('digraph "MC" {') and text.count("fillcolor=") == 6 + 5
    assert main(["plot", str(cntk_dir / "models" / "MC.dnn"), "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}: 6 nodes, 6 edges, 2 parameters folded\n"


@needs_renderer
def test_svg_png_html(cntk_dir, tmp_path, capsys):
    model = cntk_dir / "models" / "slu.forward.nobn.cmf"
    report = _plot(capsys, model, "-o", tmp_path / "slu.svg")
    assert report["loops"] == 1 and report["nodes"] == 26 and report["renderer"]
    svg = (tmp_path / "slu.svg").read_text()
    assert "<svg" in svg and "cluster_loop_1" in svg and "z.x.lstmState._.ct" in svg
    _plot(capsys, model, "-o", tmp_path / "slu.png")
    assert (tmp_path / "slu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    _plot(capsys, model, "-o", tmp_path / "slu.html")
    page = (tmp_path / "slu.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<?xml" not in page
    assert "z.x.lstmState._.ct" in page and "<script" not in page  # self-contained


@needs_renderer
def test_files_get_the_umask(cntk_dir, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        _plot(capsys, cntk_dir / "models" / "MC.dnn", "-o", tmp_path / "a.svg")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.svg").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["a.svg"]  # no temporary file left


def test_no_renderer_is_one_line_or_falls_back_to_dot(cntk_dir, tmp_path, capsys,
                                                      monkeypatch):
    monkeypatch.setenv("NETSURGEON_GRAPHVIZ", "none")
    model = str(cntk_dir / "models" / "MC.dnn")
    out = tmp_path / "g.svg"
    assert main(["plot", model, "-o", str(out)]) == 1
    msg = one_error(capsys.readouterr().err)
    assert "no Graphviz renderer" in msg and "apt-get install graphviz" in msg
    assert "pip install graphviz-pure" in msg and "write a .dot file" in msg
    assert not out.exists()
    report = _plot(capsys, model, "-o", out, "--fallback-dot")
    assert report["fallback_dot"] and report["output"] == str(tmp_path / "g.dot")
    assert (tmp_path / "g.dot").read_text().startswith("digraph")
    assert not out.exists()
    assert main(["plot", model, "-o", str(tmp_path / "h.png"), "--fallback-dot"]) == 0
    assert "wrote " + str(tmp_path / "h.dot") in capsys.readouterr().err


def test_renderer_errors_are_one_line(cntk_dir, tmp_path, capsys, monkeypatch):
    model = str(cntk_dir / "models" / "MC.dnn")
    script = tmp_path / "fake-dot"
    script.write_text("#!/bin/sh\necho 'Error: something broke' >&2\necho more >&2\nexit 3\n")
    script.chmod(0o755)
    monkeypatch.setenv("NETSURGEON_GRAPHVIZ", str(script))
    assert main(["plot", model, "-o", str(tmp_path / "g.svg")]) == 1
    assert one_error(capsys.readouterr().err) == (
        "fake-dot could not draw the graph as svg: Error: something broke")
    slow = tmp_path / "slow-dot"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(0o755)
    monkeypatch.setenv("NETSURGEON_GRAPHVIZ", str(slow))
    assert main(["plot", model, "-o", str(tmp_path / "g.svg"), "--timeout", "0.3"]) == 1
    assert "slow-dot took more than 0.3 s" in one_error(capsys.readouterr().err)
    assert not (tmp_path / "g.svg").exists()


@pytest.mark.parametrize("argv, text", [
    (["-o", "g.jpg"], "cannot tell the picture format of g.jpg (give a name ending in .dot"),
    (["-o", "g.dot", "--depth", "2"], "--depth needs --node PATTERN"),
    (["-o", "g.dot", "--node", "zz"], "no node matches 'zz' (did you mean: z"),
])
def test_usage_errors(cntk_dir, tmp_path, capsys, monkeypatch, argv, text):
    monkeypatch.chdir(tmp_path)
    assert main(["plot", str(cntk_dir / "models" / "MC.dnn"), *argv]) == 1
    assert one_error(capsys.readouterr().err).startswith(text)


def test_node_and_depth(cntk_dir, tmp_path, capsys):
    report = _plot(capsys, cntk_dir / "models" / "01_OneHidden.dnn", "-o", tmp_path / "a.dot",
                   "--node", "h1", "--depth", "1")
    assert report["nodes"] == 3  # h1._.z, h1, z.z.PlusArgs[0]
    text = (tmp_path / "a.dot").read_text()
    assert "penwidth=3" in text and 'label="h1._.z.PlusArgs[0]", tooltip=' in text


# ---- the screenshot test --------------------------------------------------------------------

def _pixels(svg: str) -> np.ndarray:
    """The SVG as an RGB array, rendered by resvg (a real SVG renderer, Rust)."""
    resvg_py = pytest.importorskip("resvg_py", reason="resvg-py renders the SVG to pixels")
    image = pytest.importorskip("PIL.Image", reason="pillow decodes the PNG")
    # resvg-py 0.5.0 refuses the 'pt' units of Graphviz's width/height: use the same numbers
    # as pixels (the viewBox is in points already)
    head, body = svg.split("<svg", 1)
    tag, rest = body.split(">", 1)
    tag = re.sub(r'\b(width|height)="([0-9.]+)pt"', r'\1="\2"', tag)
    png = bytes(resvg_py.svg_to_bytes(svg_string=head + "<svg" + tag + ">" + rest,
                                      background="#ffffff"))
    return np.asarray(image.open(io.BytesIO(png)).convert("RGB"))


def _regions(mask: np.ndarray, min_area: int = 200) -> int:
    """Connected regions (4-neighbour) of True pixels of at least ``min_area`` pixels
    (smaller ones are the inside of glyphs like 'o' where fonts are installed)."""
    seen = np.zeros_like(mask)
    h, w = mask.shape
    count = 0
    for y0, x0 in zip(*map(np.ndarray.tolist, np.nonzero(mask))):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        stack, area = [(y0, x0)], 0
        while stack:
            y, x = stack.pop()
            area += 1
            for yy, xx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= yy < h and 0 <= xx < w and mask[yy, xx] and not seen[yy, xx]:
                    seen[yy, xx] = True
                    stack.append((yy, xx))
        count += area >= min_area
    return count


def _rgb(color: str) -> np.ndarray:
    return np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)], np.uint8)


@needs_renderer
@pytest.mark.parametrize("name", ["MC.dnn", "01_OneHidden.dnn", "slu.forward.nobn.cmf"])
def test_screenshot_shows_one_box_per_node(cntk_dir, tmp_path, capsys, name):
    model = cntk_dir / "models" / name
    _plot(capsys, model, "-o", tmp_path / "g.svg")
    pixels = _pixels((tmp_path / "g.svg").read_text())
    net = load(model)
    params = net.registry.op_set(Category.PARAMETER)
    boxes = [n for n in net.nodes if n.op not in params]
    colour_of = {}
    for group in GROUP_COLORS:  # the colour priority of the picture
        for n in net.group(group):
            colour_of.setdefault(n, group)
    counted = 0
    for group, color in [*GROUP_COLORS.items(), (None, NODE_COLOR)]:
        found = _regions((pixels == _rgb(color)).all(-1))
        members = sum(1 for n in boxes if colour_of.get(n) == group)
        legend = 1 if group is not None and members else 0  # one legend swatch per group
        assert found == members + legend, (group, found, members)
        counted += found - legend
    assert counted == len(boxes)
