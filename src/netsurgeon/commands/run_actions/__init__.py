"""The actions of ``netsurgeon run`` (cntk-config-driver.md §4), one module per family, and
the check of every command before anything runs (also what ``--dry-run`` prints)."""

from __future__ import annotations

from collections.abc import Callable

from netsurgeon.commands.run_actions._common import (
    BUILDER_KEYS,
    RunContext,
    Section,
    builder_key,
    command_section,
    reader_spec,
)
from netsurgeon.errors import ArgumentError, ParseError
from netsurgeon.lang.config import ConfigDict
from netsurgeon.lang.config_assembly import is_block

__all__ = ["ACTIONS", "REFUSED", "plan", "run_action", "RunContext", "Section",
           "command_section"]


def _train(sec: Section) -> None:
    from netsurgeon.commands.run_actions.train import do_train

    do_train(sec)


def _test(sec: Section) -> None:
    from netsurgeon.commands.run_actions.evaluation import do_test

    do_test(sec)


def _cv(sec: Section) -> None:
    from netsurgeon.commands.run_actions.evaluation import do_cv

    do_cv(sec)


def _write(sec: Section) -> None:
    from netsurgeon.commands.run_actions.evaluation import do_write

    do_write(sec)


def _other(name: str) -> Callable[[Section], None]:
    def action(sec: Section) -> None:
        from netsurgeon.commands.run_actions import other

        getattr(other, name)(sec)

    return action


#: action name (case-sensitive, as CNTK) -> handler
ACTIONS: dict[str, Callable[[Section], None]] = {
    "train": _train, "trainRNN": _train,
    "test": _test, "eval": _test,
    "cv": _cv,
    "write": _write,
    "dumpNode": _other("do_dump_node"), "dumpnode": _other("do_dump_node"),
    "dumpNodes": _other("do_dump_node"),
    "edit": _other("do_edit"),
    "plot": _other("do_plot"),
    "createLabelMap": _other("do_create_label_map"),
}

#: CNTK actions netsurgeon does not run, and why
REFUSED = {
    "adapt": "KL adaptation, marked broken in CNTK's own source",
    "writeWordAndClass": "class-based language-model vocabularies for LMSequenceReader",
    "SVD": "SVD factorisation of trained weights is not implemented",
    "bnstat": "re-estimating BatchNormalization statistics is not implemented",
    "convertdbn": "legacy DBN.exe models", "exportdbn": "legacy DBN.exe models",
    "devtest": "CNTK's internal test",
}


def actions_of(sec: Section) -> list[str]:
    """The ``:``-separated ``action`` list of a command section (default ``train``)."""
    value = sec.str("action", "train") or "train"
    return [a.strip() for a in value.split(":") if a.strip()]


def check_action(sec: Section, action: str, commands: list[str]) -> None:
    if action in ACTIONS:
        return
    why = REFUSED.get(action)
    text = (f"action '{action}' of section '{sec.command}' is not supported by netsurgeon run"
            f" ({why})") if why else \
        f"unknown action: {action} in command set: {':'.join(commands)}"
    raise ParseError(text, location=sec.location("action"))


def resolve_all(scope: ConfigDict) -> None:
    """Resolve every ``$var$`` of a command section (builder blocks too), so that a variable
    never defined is an error before anything runs."""
    stack = [scope]
    while stack:
        s = stack.pop()
        for key, value in s.items():
            if any(key.lower() == b.lower() for b in BUILDER_KEYS) and key.lower() != \
                    "ndlnetworkbuilder" and key.lower() != "simplenetworkbuilder":
                s.locate_value(key)
                continue
            if is_block(value):
                child = s.section(key)
                if child is not None:
                    stack.append(child)
            else:
                s.get(key)


def plan(sec: Section, action: str, commands: list[str]) -> list[str]:
    """Check an action's configuration and say what it would do (raises the errors a real
    run would, before anything is written)."""
    from netsurgeon.commands.run_actions import evaluation, other

    check_action(sec, action, commands)
    resolve_all(sec.scope)
    lines: list[str] = []
    if action in ("train", "trainRNN"):
        key = builder_key(sec)
        if key is None:
            raise sec.error(f"No network builder found in the config file for section "
                            f"'{sec.command}': give NDLNetworkBuilder=[...], "
                            "BrainScriptNetworkBuilder=[...] or SimpleNetworkBuilder=[...]")
        if key == "NDLNetworkBuilder":
            block = sec.block(key)
            assert block is not None
            desc = block.str("networkDescription")
            run = block.str("run")
            if not desc and not run:
                block.required("networkDescription")
            path = sec.ctx.path(desc) if desc else None
            if path is not None and not path.is_file():
                raise block.error(f"cannot read the networkDescription {desc} ({path}): no "
                                  "such file", "networkDescription")
            if path is None:
                for which in ("load", "run"):
                    name = block.str(which)
                    if name and not is_block(block.scope.raw(name)):
                        raise block.error(f"the configuration parameter '{which}={name}' "
                                          "doesn't specify another section in this "
                                          "configuration file", which)
            macros = block.str("ndlMacros") or ""
            shown = path if path is not None else f"section {run} of the config"
            lines.append(f"network: NDL {shown}" + (f" with ndlMacros {macros}" if macros
                                                    else ""))
        else:
            lines.append(f"network: {key}")
        spec = reader_spec(sec)
        lines.append(f"reader: {spec.file}" + (" (randomized)" if spec.randomize else ""))
        if sec.block("cvReader"):
            lines.append(f"cvReader: {reader_spec(sec, 'cvReader', randomize=False).file}")
        sgd = sec.block("SGD") or sec
        model_name = sgd.str("modelPath") or sec.required("modelPath")
        model = str(sec.ctx.path(model_name))
        sgd.required("maxEpochs")
        epochs = sgd.int("maxEpochs", 0)
        files = [f"{model}.{i}" for i in range(epochs)] + [model]
        lines.append(f"writes: {files[0]} ... {model}" if len(files) > 3 else
                     "writes: " + ", ".join(files))
    elif action in ("test", "eval", "cv"):
        spec = reader_spec(sec, randomize=False if action != "cv" else None)
        key = builder_key(sec)
        source = f"built by {key}" if key else str(sec.file("modelPath") or
                                                     sec.required("modelPath"))
        if action == "cv":
            sec.required("crossValidationInterval")
        lines.append(f"network: {source}")
        lines.append(f"reader: {spec.file}")
        evaluation.check_minibatch(sec)
    elif action == "write":
        out, names = evaluation.write_targets(sec)
        spec = reader_spec(sec, randomize=False)
        evaluation._Format(sec)  # checks the format block and its labelMappingFile
        key = builder_key(sec)
        source = f"built by {key}" if key else str(sec.file("modelPath") or
                                                     sec.required("modelPath"))
        lines.append(f"network: {source}")
        lines.append(f"reader: {spec.file}")
        shown = ", ".join(names) if names else "the output nodes"
        lines.append(f"writes: {sec.ctx.path(out) if out != '-' else 'stdout'}.<node> for "
                     f"{shown}")
    elif action in ("dumpNode", "dumpnode", "dumpNodes"):
        model, _node, out = other.dump_target(sec)
        lines.append(f"network: {model}")
        lines.append(f"writes: {out}")
    elif action == "edit":
        if builder_key(sec) is not None and not sec.has("editPath"):
            lines.append(f"edit: BrainScript -> {sec.ctx.path(sec.required('outputModelPath'))}")
        else:
            script = sec.ctx.path(sec.required("editPath"))
            if not script.is_file():
                raise sec.error(f"cannot read the MEL script {sec.str('editPath')} ({script}): "
                                "no such file", "editPath")
            lines.append(f"edit: MEL {script}")
    elif action == "plot":
        model, dot, out = other.plot_targets(sec)
        lines.append(f"network: {model}")
        lines.append(f"writes: {dot}" + (f", {out}" if out else ""))
    elif action == "createLabelMap":
        target = command_section(sec.ctx, sec.required("section"))
        spec = reader_spec(target)
        raise sec.error(f"createLabelMap: the reader of section '{target.command}' is "
                        f"CNTKTextFormatReader ({spec.file.name}); CNTK creates label maps only "
                        "for its legacy readers (UCIFastReader, HTKMLFReader), and CTF labels "
                        "need none", "section", ArgumentError)
    return lines


def run_action(sec: Section, action: str) -> None:
    ACTIONS[action](sec)
