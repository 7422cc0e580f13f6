"""``test``/``eval``, ``cv`` (cntk-config-driver.md §6) and ``write`` (§7.1, §7.2)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

from netsurgeon.commands.run_actions._common import (
    Section,
    load_model,
    network_for_eval,
    reader_spec,
)
from netsurgeon.errors import ParseError

__all__ = ["do_test", "do_cv", "do_write", "log_criterion", "evaluate_criteria",
           "default_eval_nodes"]

_PERPLEXITY_OPS = {"CrossEntropyWithSoftmax", "CrossEntropy", "ClassBasedCrossEntropyWithSoftmax",
                   "NoiseContrastiveEstimation"}


def _engine():
    try:
        from netsurgeon.runtime import cntk_sgd  # type: ignore[attr-defined]
    except ImportError:
        return None
    return cntk_sgd


def _number(value: float, digits: int) -> str:
    """CNTK's GeneratePaddedFloatOrExpFormat: fixed unless ``%g`` would use an exponent."""
    probe = f"{value:.{digits}g}"
    return f"{value:.{digits}e}" if "e" in probe else f"{value:.{digits}f}"


def log_criterion(name: str, total: float, count: int) -> str:
    """``name = avg * count`` as CNTK's Criterion.h prints it (a name ending in ``s`` is a
    percentage)."""
    engine = _engine()
    if engine is not None and hasattr(engine, "log_criterion"):
        return engine.log_criterion(name, total, count)
    avg = total / count if count else 0.0
    if name.endswith("s"):
        probe = f"{100 * avg:.3g}"
        text = f"{100 * avg:2.3e}" if "e" in probe else f"{100 * avg:2.3f}"
        return f"{name} = {text}% * {count}"
    return f"{name} = {_number(avg, 8)} * {count}"


def default_eval_nodes(network) -> list[str]:
    """The evaluation nodes, then the criterion nodes not among them (CNTK's order)."""
    names: list[str] = []
    for group in ("evaluation", "criterion"):
        for node in network.group(group):
            if node.name not in names:
                names.append(node.name)
    return names


def _results(network, nodes: Sequence[str], values: dict[str, tuple[float, int]]) -> str:
    parts = []
    for name in nodes:
        total, count = values[name]
        text = log_criterion(name, total, count)
        if network.node(name).op in _PERPLEXITY_OPS:
            avg = total / count if count else 0.0
            text += f"; perplexity = {math.exp(avg):.8f}"
        parts.append(text)
    return "; ".join(parts)


def evaluate_criteria(network, nodes: Sequence[str], batches: Iterable, *, log=print,
                      num_mbs_to_show: int = 100) -> dict[str, tuple[float, int]]:
    """Sum each node over the minibatches (value, samples) and print CNTK's
    ``Final Results: Minibatch[1-N]: ...`` line (the SGD engine's version when present)."""
    engine = _engine()
    if engine is not None and hasattr(engine, "evaluate_criteria"):
        return engine.evaluate_criteria(network, nodes, batches, log=log)
    from netsurgeon.runtime.evaluate import Evaluator

    ev = Evaluator(network, list(nodes))
    totals = {n: [0.0, 0] for n in nodes}
    shown = dict.fromkeys(nodes, (0.0, 0))
    count = last = 0
    for mb in batches:
        raw = ev.run(mb)
        samples = int(np.asarray(mb.lengths).sum())
        count += 1
        for name in nodes:
            totals[name][0] += float(raw[name].detach().double().sum())
            totals[name][1] += samples
        if count - last >= num_mbs_to_show:
            _progress(network, nodes, totals, shown, last, count, log)
            last = count
    if count > last:
        _progress(network, nodes, totals, shown, last, count, log)
    final = {n: (t, c) for n, (t, c) in totals.items()}
    log(f"Final Results: Minibatch[1-{count}]: {_results(network, nodes, final)}")
    return final


def _progress(network, nodes, totals, shown, first, last, log) -> None:
    since = {}
    for n in nodes:
        since[n] = (totals[n][0] - shown[n][0], totals[n][1] - shown[n][1])
        shown[n] = (totals[n][0], totals[n][1])
    parts = "; ".join(log_criterion(n, *since[n]) for n in nodes)
    log(f"Minibatch[{first + 1}-{last}]: {parts}")


def _eval_nodes(sec: Section, network, key: str = "evalNodeNames") -> list[str]:
    names = sec.list(key)
    if not names:
        sec.ctx.plain("evalNodeNames are not specified, using all the default evalnodes and "
                      "training criterion nodes.")
        names = default_eval_nodes(network)
    for name in names:
        network.node(name)
    if not names:
        raise sec.error("the network has no evaluation or criterion node to test; give "
                        "evalNodeNames=NODE:NODE", key)
    return names


def do_test(sec: Section) -> None:
    """``test``/``eval``: evaluate the criteria on the reader's data."""
    reader = reader_spec(sec, randomize=False)
    network, _source = network_for_eval(sec, "evalNodeNames")
    nodes = _eval_nodes(sec, network)
    mb = int(sec.list("minibatchSize")[0]) if sec.list("minibatchSize") else 40960
    epoch = sec.int("epochSize", 0)
    evaluate_criteria(network, nodes, reader.minibatches(network, mb, 0, epoch),
                      log=sec.ctx.log)


def do_cv(sec: Section) -> None:
    """``cv``: evaluate ``modelPath.<i>`` for each epoch of ``crossValidationInterval``."""
    interval = sec.required("crossValidationInterval")
    parts = [p.strip() for p in interval.split(":")]
    if len(parts) != 3 or not all(p.lstrip("-").isdigit() for p in parts):
        raise sec.error(f"crossValidationInterval={interval}: give start:step:end",
                        "crossValidationInterval")
    start, step, end = (int(p) for p in parts)
    if step <= 0:
        raise sec.error("crossValidationInterval: the step must be positive",
                        "crossValidationInterval")
    reader = reader_spec(sec)
    model = sec.required("modelPath")  # logged as written, read from currentDirectory
    mb = int(sec.list("minibatchSize")[0]) if sec.list("minibatchSize") else 40960
    results: list[tuple[str, list[float]]] = []
    substituted = False
    nodes: list[str] = []
    for i in range(start, end + 1, step):
        path = f"{model}.{i}"
        if not sec.ctx.path(path).is_file():
            sec.ctx.log(f"Model {path} does not exist.")
            if substituted or not sec.ctx.path(model).is_file():
                continue
            path, substituted = model, True
        network = load_model(str(sec.ctx.path(path)))
        nodes = nodes or _eval_nodes(sec, network)
        sec.ctx.log(f"Model {path} --> ")
        values = evaluate_criteria(network, nodes, reader.minibatches(network, mb),
                                   log=sec.ctx.log)
        results.append((path, [t / c if c else 0.0 for t, c in values.values()]))
    if results:
        sec.ctx.log("Best models:")
        sec.ctx.log("------------")
        for j in range(len(results[0][1])):
            best = min(results, key=lambda r: r[1][j])
            sec.ctx.log(f"Based on Err[{j}]: Best model = {best[0]} with min err "
                        f"{best[1][j]:.8g}")


# ---- write (§7.1, §7.2) ---------------------------------------------------------------------
def _unescape(text: str) -> str:
    out = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            rep = {"n": "\n", "r": "\r", "t": "\t", "s": " ", "\\": "\\"}.get(nxt)
            if rep is not None:
                out.append(rep)
                i += 2
                continue
        out.append(c)
        i += 1
    return "".join(out)


class _Format:
    """``format=[...]`` of a write action."""

    def __init__(self, sec: Section) -> None:
        block = sec.block("format") if sec.scope.has_local("format") else None
        get = (lambda k, d: block.str(k, d)) if block is not None else (lambda _k, d: d)
        self.type = (block.scope.get("type") if block is not None and block.has_local("type")
                     else None) or "real"
        self.type = self.type.strip('"').lower()
        if self.type not in ("real", "category", "sparse"):
            raise sec.error(f"format type '{self.type}': give real, category or sparse",
                            "format")
        mapping = get("labelMappingFile", "")
        self.labels: list[str] | None = None
        if mapping:
            path = sec.ctx.path(mapping)
            if not path.is_file():
                raise (block or sec).error(f"cannot read the labelMappingFile {mapping}: no "
                                           "such file", "labelMappingFile")
            self.labels = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        self.transpose = to_bool_text(get("transpose", "true"))
        self.prologue = _unescape(get("prologue", ""))
        self.epilogue = _unescape(get("epilogue", ""))
        self.sequence_separator = _unescape(get("sequenceSeparator", ""))
        self.sequence_prologue = _unescape(get("sequencePrologue", ""))
        self.sequence_epilogue = _unescape(get("sequenceEpilogue", "\\n"))
        self.element_separator = _unescape(get("elementSeparator", " "))
        self.sample_separator = _unescape(get("sampleSeparator", "\\n"))
        self.precision = get("precisionFormat", "")

    def named(self, text: str, node: str, mb: int) -> str:
        return text.replace("%s", node).replace("%n", str(mb))

    def sample(self, values: np.ndarray) -> str:
        flat = np.asarray(values, np.float64).reshape(-1)
        if self.type in ("category", "sparse"):
            index = int(np.argmax(flat)) if flat.size else 0
            if self.labels is not None and index < len(self.labels):
                return f"%{self.precision}s" % self.labels[index]
            return f"%{self.precision}u" % index
        fmt = f"%{self.precision}f"
        return self.element_separator.join(fmt % v for v in flat)

    def sequence(self, frames: np.ndarray, node: str, mb: int) -> str:
        if self.transpose or self.type != "real":
            body = self.sample_separator.join(self.sample(f) for f in frames)
        else:
            cols = np.asarray(frames, np.float64).reshape(len(frames), -1)
            fmt = f"%{self.precision}f"
            body = self.sample_separator.join(self.element_separator.join(fmt % v for v in row)
                                              for row in cols.T)
        return (self.named(self.sequence_prologue, node, mb) + body
                + self.named(self.sequence_epilogue, node, mb))


def to_bool_text(text: str) -> bool:
    from netsurgeon.lang.config import to_bool

    return to_bool(text, "transpose")


def write_targets(sec: Section) -> tuple[str, list[str]]:
    """(outputPath, node names or [] for the default outputs) of a write action."""
    out = sec.str("outputPath")
    if out is None:
        if sec.has("writer"):
            raise sec.error("write: writer=[...] plugins (HTKMLFWriter, ...) are not supported; "
                            "give outputPath=FILE", "writer")
        raise sec.error("write command: You must specify either 'writer'or 'outputPath'")
    return out, sec.list("outputNodeNames")


def do_write(sec: Section) -> None:
    """``write``: one text file ``<outputPath>.<node>`` per output node."""
    from netsurgeon.commands._common import make_parent_dirs, write_text
    from netsurgeon.runtime.evaluate import Evaluator

    out, names = write_targets(sec)
    reader = reader_spec(sec, randomize=False)
    fmt = _Format(sec)
    network, _source = network_for_eval(sec, "outputNodeNames")
    if not names:
        names = [n.name for n in network.group("output")]
        if not names:
            raise sec.error("the network has no output nodes; give outputNodeNames=NODE:NODE",
                            "outputNodeNames")
    nodes = [network.node(n).name for n in names]
    mb_size = int(sec.list("minibatchSize")[0]) if sec.list("minibatchSize") else 2048
    texts = {n: [fmt.named(fmt.prologue, n, 0)] for n in nodes}
    first = dict.fromkeys(nodes, True)
    ev = Evaluator(network, nodes)
    total = 0
    for index, mb in enumerate(reader.minibatches(network, mb_size, 0,
                                                  sec.int("epochSize", 0))):
        raw = ev.run(mb)
        lengths = np.asarray(mb.lengths)
        total += int(lengths.sum())
        for name in nodes:
            value = raw[name].detach().double().cpu().numpy()
            steps = int(lengths.max()) if len(lengths) else 0
            value = value.reshape((len(lengths), steps, -1)) if value.shape[0] == \
                len(lengths) * steps else value.reshape((len(lengths), 1, -1))
            for b, length in enumerate(lengths):
                if not first[name]:
                    texts[name].append(fmt.named(fmt.sequence_separator, name, index))
                first[name] = False
                texts[name].append(fmt.sequence(value[b, :int(length)], name, index))
    for name in nodes:
        texts[name].append(fmt.named(fmt.epilogue, name, 0))
    if out == "-":
        for name in nodes:
            sec.ctx.plain("".join(texts[name]).rstrip("\n"))
    else:
        for name in nodes:
            path = str(sec.ctx.path(out)) + "." + name
            make_parent_dirs(path)
            write_text("".join(texts[name]), path)
            sec.ctx.written.append(path)
    sec.ctx.plain(f"Written to {out}*")
    sec.ctx.plain(f"Total Samples Evaluated = {total}")


def check_minibatch(sec: Section) -> None:
    for value in sec.list("minibatchSize"):
        if not value.isdigit():
            raise ParseError(f"minibatchSize={value}: give a whole number",
                             location=sec.location("minibatchSize"))
