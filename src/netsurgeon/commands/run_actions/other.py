"""``dumpNode`` (§7.3), ``edit`` (§8), ``plot`` and ``createLabelMap`` (§10)."""

from __future__ import annotations

import re
import shlex
import subprocess

from netsurgeon.commands.run_actions._common import (
    Section,
    build_network,
    builder_key,
    command_section,
    load_model,
    reader_spec,
    save_model,
)
from netsurgeon.errors import ArgumentError, EditError
from netsurgeon.lang.config_assembly import visible_values

__all__ = ["do_dump_node", "do_edit", "do_plot", "do_create_label_map", "dump_target",
           "plot_targets"]


def dump_target(sec: Section) -> tuple[str, str, str]:
    """(modelPath, nodeName, outputFile) of a dumpNode action."""
    model = str(sec.file("modelPath") or sec.required("modelPath"))
    node = sec.str("nodeName", "__AllNodes__") or "__AllNodes__"
    out = sec.str("outputFile")
    return model, node, str(sec.ctx.path(out)) if out else f"{model}.{node}.txt"


def do_dump_node(sec: Section) -> None:
    """Write CNTK's Dump text of all nodes, of ``nodeName`` or of ``nodeNameRegex``."""
    from netsurgeon.commands._common import make_parent_dirs, write_text
    from netsurgeon.formats.dump import dump_text

    model, node, out = dump_target(sec)
    values = sec.bool("printValues", True)
    metadata = sec.bool("printMetadata", True)
    if not values and not metadata:
        raise sec.error("dumpNode: printValues and printMetadata are both false: nothing to "
                        "print", "printValues")
    net = load_model(model)
    regex = sec.str("nodeNameRegex", "")
    if regex:
        try:
            pattern = re.compile(regex)
        except re.error as exc:
            raise sec.error(f"nodeNameRegex '{regex}': {exc}", "nodeNameRegex") from None
        nodes = [n for n in net.sorted_nodes() if pattern.fullmatch(n.name)]
    elif node != "__AllNodes__":
        nodes = [net.node(node)]
    else:
        nodes = None
    make_parent_dirs(out)
    write_text(dump_text(net, include_data=values, nodes=nodes), out)
    sec.ctx.written.append(out)


def do_edit(sec: Section) -> None:
    """A BrainScript edit (``BrainScriptNetworkBuilder`` + ``outputModelPath``) or a MEL
    script (``editPath``, ``$var$`` from this section's scope, ``ndlMacros``)."""
    key = builder_key(sec)
    if key is not None and not sec.has("editPath"):
        out = str(sec.ctx.path(sec.required("outputModelPath")))
        from pathlib import Path

        if sec.bool("makeMode", True) and Path(out).exists():
            sec.ctx.log(f"'{out}' exists, skipping. Specify makeMode=false to force executing "
                        "the action.")
            return
        net = build_network(sec, key)
        save_model(net, out)
        sec.ctx.written.append(out)
        sec.ctx.log(f"Model with {len(net)} nodes saved as '{out}'.")
        return
    from netsurgeon.lang import mel

    script = sec.ctx.path(sec.required("editPath"))
    if not script.is_file():
        raise sec.error(f"cannot read the MEL script {sec.str('editPath')} ({script}): no such "
                        "file", "editPath", EditError)
    macros = [str(sec.ctx.path(p.strip())) for p in (sec.str("ndlMacros") or "").split("+")
              if p.strip()]
    result = mel.run(script, visible_values(sec.scope), macros=macros or None, make_dirs=True,
                     warn=sec.ctx.plain)
    for path in result.written:
        sec.ctx.written.append(path)
        sec.ctx.plain(f"MEL: wrote {path}")


def plot_targets(sec: Section) -> tuple[str, str, str]:
    model = str(sec.file("modelPath") or sec.required("modelPath"))
    dot = sec.str("outputDotFile")
    out = sec.str("outputFile", "") or ""
    return model, str(sec.ctx.path(dot)) if dot else f"{model}.dot", out


def do_plot(sec: Section) -> None:
    """Graphviz DOT of ``modelPath``; ``renderCmd`` (``<IN>``/``<OUT>``) renders it."""
    from netsurgeon.commands._common import make_parent_dirs, write_text

    try:
        from netsurgeon.graph.plot import to_dot  # type: ignore[import-not-found]
    except ImportError:
        raise sec.error("the plot action needs netsurgeon.graph.plot, which this version does "
                        "not have", cls=ArgumentError) from None
    model, dot, out = plot_targets(sec)
    render = sec.str("renderCmd", "") or ""
    if out and not render:
        raise sec.error("plot: outputFile needs renderCmd (with <IN> and <OUT>)", "outputFile")
    net = load_model(model)
    make_parent_dirs(dot)
    write_text(to_dot(net), dot)
    sec.ctx.written.append(dot)
    sec.ctx.log(f"Created network description in dot format: {dot}")
    if out:
        out_path = str(sec.ctx.path(out))
        make_parent_dirs(out_path)
        cmd = render.replace("<IN>", shlex.quote(dot)).replace("<OUT>", shlex.quote(out_path))
        done = subprocess.run(cmd, shell=True, cwd=sec.ctx.config.base_dir, check=False)
        if done.returncode:
            raise sec.error(f"plot: renderCmd failed with exit status {done.returncode}: {cmd}",
                            "renderCmd")
        sec.ctx.written.append(out_path)
        sec.ctx.log("Done.")


def do_create_label_map(sec: Section) -> None:
    """CNTK's createLabelMap works only for its legacy readers; with CTF it is an error."""
    other = sec.required("section")
    target = command_section(sec.ctx, other)
    spec = reader_spec(target)
    raise sec.error(f"createLabelMap: the reader of section '{other}' is CNTKTextFormatReader "
                    f"({spec.file.name}); CNTK creates label maps only for its legacy readers "
                    "(UCIFastReader, HTKMLFReader), and CTF labels need none", "section",
                    ArgumentError)
