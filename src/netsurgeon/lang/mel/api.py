"""The model-editing API: everything MEL can do, as Python calls.

A Python user never needs a script::

    from netsurgeon.mel import Editor

    ed = Editor()
    ed.load("mnist.nsm", name="m")                    # becomes the default model
    ed.copy("L3.*", "L4.*")                           # new layer, own weights, same values
    ed.set_input("L4.*.T", 1, "L3.RL")
    ed.set_input("CE.*.T", 1, "L4.RL")
    ed.add_ndl("meanVal = Mean(features)\\n invstd = InvStdDev(features)\\n"
               "norm = PerDimMeanVarNormalization(features, meanVal, invstd)")
    ed.set_input("L1.BFF.FF.T", 1, "norm")
    ed.freeze("L1.*")                                  # learning-rate multiplier 0
    ed.save("mnist4.nsm")                             # validated first, written atomically

Node references are MEL patterns (ndl-mel.md §C.5): ``L3.*``, ``*.W``, ``L3.*.P``,
``model1.L3.*``, ``model1`` (the whole model). A name without a model prefix refers to the
default model. Each method checks everything before it changes anything, so a failed call
leaves the models as they were.

The MEL interpreter (:mod:`netsurgeon.lang.mel`) is a thin layer over this class: one method
per command, with the same checks and errors.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netsurgeon.errors import (
    EditError,
    NetsurgeonError,
    SourceLocation,
    ValidationError,
    close_matches,
)
from netsurgeon.graph import (
    Network,
    Node,
    Pattern,
    clone_node,
    copy_nodes,
    map_name,
    reachable_up,
    split_model_prefix,
    topological_order,
)
from netsurgeon.lang.mel._match import fast_match
from netsurgeon.lang.mel._values import (
    PROPERTIES,
    SUBTREE_PROPERTIES,
    canonical_format,
    copy_mode,
    input_index,
    overwrite,
    property_effect,
    to_bool,
    to_float,
)
from netsurgeon.lang.mel._writes import DirectWriter, Writer

__all__ = ["Editor", "Model", "PROPERTIES", "fast_match"]

# wildcards in in-line NDL (a "*" not followed by a repeat count, A.5)
_WILDCARD_IN_NDL = re.compile(r"\*(?!\s*\d)")


@dataclass
class Model:
    """A model known to an editor: its MEL name, network and in-line NDL script."""

    name: str
    network: Network
    script: Any = None  # netsurgeon.lang.ndl.NdlScript, created on first in-line NDL
    path: str | None = None


class Editor:
    """A set of named models with a default one, and every MEL edit as a method.

    Args:
        macros: an NDL ``MacroTable`` or a path (or paths) of macro files for in-line NDL and
            snippets; the standard library is always there.
        writer: where files go (the MEL runner stages them until the script succeeded).
        seed: parameter-initialisation seed for nodes added with NDL.
        warn: called with each warning text (default: collected in ``warnings``).
    """

    def __init__(
        self,
        *,
        macros: Any = None,
        writer: Writer | None = None,
        seed: int = 1,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._models: dict[str, Model] = {}
        self._default: Model | None = None
        self._explicit_default = False
        self._macro_source = macros
        self._macros: Any = None
        self._counter: Any = None
        self.writer: Writer = writer or DirectWriter()
        self.seed = seed
        self.warnings: list[str] = []
        self._warn = warn

    # ---- models and the default model ------------------------------------------------------
    @property
    def models(self) -> dict[str, Network]:
        """Every loaded model by name, in load order."""
        return {m.name: m.network for m in self._models.values()}

    @property
    def default(self) -> Network | None:
        """The default model's network (None before any model exists)."""
        return self._default.network if self._default else None

    @property
    def default_name(self) -> str | None:
        return self._default.name if self._default else None

    def model(self, name: str | None = None) -> Network:
        """The network of model ``name`` (the default model when None)."""
        return self._model(name).network

    def _model(self, name: str | None) -> Model:
        if name is None:
            return self._require_default()
        found = self._models.get(name.lower())
        if found is None:
            raise EditError(f"Model '{name}' does not exist",
                            hint=close_matches(name, [m.name for m in self._models.values()])
                            or self._models_hint())
        return found

    def _models_hint(self) -> str:
        if not self._models:
            return "no model is loaded: use LoadModel or CreateModel first"
        return "models: " + ", ".join(m.name for m in self._models.values())

    def _require_default(self, what: str = "this") -> Model:
        if self._default is None:
            raise EditError(
                f"there is no default model for {what}",
                hint="load or create a model first, call SetDefaultModel(model), or prefix "
                "node names with a model name (model.node)",
            )
        return self._default

    def warn(self, text: str) -> None:
        self.warnings.append(text)
        if self._warn is not None:
            self._warn(text)

    def _register(self, name: str, network: Network, *, recent: bool, path: str | None = None) -> Model:
        """Add a model. ``recent``: loads and creates become the default unless SetDefaultModel
        was called (the seed documentation's rule); snippets only when there is none."""
        if not name or any(c in name for c in ".*"):
            raise EditError(f"invalid model name '{name}': it must not contain '.' or '*'")
        old = self._models.pop(name.lower(), None)
        if old is not None:
            self.warn(f"WARNING: conflicting model name {name}. Deleting the old model with the "
                      "same name.")
            if old is self._default:
                self._default = None
                self._explicit_default = False
        model = Model(name, network, path=path)
        network.name = name
        self._models[name.lower()] = model
        if self._default is None or (recent and not self._explicit_default):
            self._default = model
        return model

    def create(self, name: str = "default") -> Network:
        """A new empty model; it becomes the default unless set_default was called."""
        return self._register(name, Network(name), recent=True).network

    def load(self, path: str | os.PathLike[str], name: str | None = None, format: str | None = None) -> Network:
        """Load a model file (format from the first bytes unless given) under ``name``
        (default: the file's stem); it becomes the default unless set_default was called."""
        from netsurgeon import formats

        path = str(path)
        name = name or Path(path).stem.split(".")[0] or "model"
        fmt = canonical_format(format)
        real = self.writer.resolve(path)
        network = formats.load(real, format=fmt)
        return self._register(name, network, recent=True, path=path).network

    def add_model(self, name: str, network: Network) -> Network:
        """Register an existing Network under ``name`` (becomes the default like a load)."""
        return self._register(name, network, recent=True).network

    def set_default(self, name: str) -> None:
        """Make ``name`` the default model (loads no longer change it)."""
        model = self._models.get(name.lower())
        if model is None:
            raise EditError(f"Model '{name}' does not exist. Cannot set it to default.",
                            hint=self._models_hint())
        self._default = model
        self._explicit_default = True

    def unload(self, *names: str) -> None:
        """Forget models; unknown names only warn (as CNTK)."""
        for name in names:
            model = self._models.pop(name.lower(), None)
            if model is None:
                self.warn(f"WARNING: model {name} does not exist.")
                continue
            if model is self._default:
                self._default = None
                self._explicit_default = False

    # ---- NDL ----------------------------------------------------------------------------------
    @property
    def macros(self) -> Any:
        """The global NDL macro table (standard library plus the user's macros)."""
        if self._macros is None:
            from netsurgeon.lang.ndl import MacroTable

            source = self._macro_source
            if source is not None and hasattr(source, "load_text"):
                self._macros = source
            else:
                table = MacroTable.standard()
                if source is not None:
                    for p in [source] if isinstance(source, (str, os.PathLike)) else source:
                        table.load_file(str(p))
                self._macros = table
        return self._macros

    @property
    def counter(self) -> Any:
        if self._counter is None:
            from netsurgeon.lang.ndl import NameCounter

            self._counter = NameCounter()
        return self._counter

    def _script(self, model: Model) -> Any:
        if model.script is None:
            from netsurgeon.lang.ndl import NdlScript

            model.script = NdlScript(model.network, macros=self.macros, counter=self.counter,
                                     allow_definitions=False, seed=self.seed)
        return model.script

    def ndl_statement(self, text: str, location: SourceLocation | None = None) -> None:
        """Add one in-line NDL statement to the default model (initial pass at once, §C.6)."""
        if self._default is None:
            key = text.split("=", 1)[0].strip()
            raise EditError(
                f"NDL Command cannot be executed until default model is established, cannot set "
                f"'{key}' without a default model", location=location,
                hint="load or create a model first, or call SetDefaultModel(model)",
            )
        if _WILDCARD_IN_NDL.search(text.partition("=")[2]):
            raise EditError(
                "wildcards ('*') are not allowed in in-line NDL; name each node in full",
                location=location, hint="use a MEL command (Copy, SetInput ...) for patterns")
        self._script(self._default).add_statement(text, location)

    def add_ndl(self, text: str, model: str | None = None, *, source: str = "<ndl>") -> list[Node]:
        """Add nodes written in NDL to a model (default: the default model), evaluate all
        passes and return the nodes created. NDL may use the model's nodes by full name."""
        from netsurgeon.lang.mel._script import parse_script, read_mel

        target = self._model(model)
        saved = self._default
        self._default = target
        before = set(target.network.names())
        try:
            src = read_mel(text, source)
            for stmt in parse_script(src):
                if stmt.kind not in ("ndl", "assign"):
                    raise EditError("add_ndl takes in-line NDL statements only (name = ...)",
                                    location=stmt.location)
                self.ndl_statement(stmt.text.strip(), stmt.location)
            self._passes(target, "final")
        finally:
            self._default = saved
        return [n for n in target.network.nodes if n.name not in before]

    def define(self, name: str, ndl: str, *, location: SourceLocation | None = None) -> Network:
        """An NDL snippet (``name = [ ... ]``): a new model from NDL text; macro definitions in
        it become global. It becomes the default only if there is none yet."""
        from netsurgeon.lang.ndl import evaluate_snippet

        network = evaluate_snippet(ndl, macros=self.macros, counter=self.counter,
                                   location=location or SourceLocation("<snippet>", 1, 1), name=name)
        return self._register(name, network, recent=False).network

    def load_snippet(self, name: str, path: str | os.PathLike[str], section: str | None = None) -> Network:
        """LoadNDLSnippet: evaluate section ``section`` of an NDL file (the whole file when
        None, as the documentation promises) as a snippet model called ``name``."""
        from netsurgeon.lang.mel._sections import read_section

        text, location = read_section(str(path), section)
        return self.define(name, text, location=location)

    def finish(self) -> None:
        """Run every pending in-line NDL pass on every model, so each network is complete."""
        for model in list(self._models.values()):
            self._passes(model)

    def _passes(self, model: Model, upto: str = "final") -> None:
        if model.script is not None:
            model.script.run_passes(upto)

    # ---- name resolution (§C.5) ---------------------------------------------------------------
    def _split(self, text: str) -> tuple[Model, str]:
        name, pattern = split_model_prefix(text, [m.name for m in self._models.values()])
        if name is not None:
            return self._models[name.lower()], pattern
        return self._require_default(f"'{text}'"), text

    def select(self, pattern: str) -> list[Node]:
        """Nodes matching a MEL pattern (``L3.*``, ``*.W``, ``m1.L3.*``), in CNTK name order.
        Raises EditError (with close matches) when nothing matches."""
        return self._find(pattern)[1]

    def _find(self, text: str) -> tuple[Model, list[Node]]:
        """CNTK's FindSymbols: match nodes; else an in-line NDL symbol of that model."""
        model, pattern = self._split(text)
        nodes = fast_match(model.network, pattern)
        if nodes:
            return model, nodes
        if model.script is not None and "*" not in pattern:
            symbol = model.script.lookup(pattern)
            if isinstance(symbol, Node):
                return model, [symbol]
            if isinstance(symbol, (int, float)) and not isinstance(symbol, bool):
                return model, [self._constant_node(model, pattern, float(symbol))]
            if symbol is not None:
                raise EditError(f"Matching NDL name found for '{text}', but no corresponding "
                                "computation node found")
        raise self._not_found(model, pattern, text)

    def _constant_node(self, model: Model, name: str, value: float) -> Node:
        import numpy as np

        return model.network.add_parameter(name, np.full((1, 1), value, np.float32),
                                           learning_rate_multiplier=0.0)

    def _not_found(self, model: Model, pattern: str, text: str) -> EditError:
        names = model.network.names()
        if "*" in pattern:
            p = Pattern(pattern)
            pool: set[str] = set()
            for n in names:
                parts = n.split(".")
                pool.add(parts[0] + ".*")
                pool.add("*." + parts[-1])
                if len(n) >= len(p.head):
                    pool.add(n[: len(p.head)] + "*" + p.tail)
            pool.discard(pattern)
            hint = close_matches(pattern, sorted(pool))
        else:
            hint = close_matches(pattern, names)
        where = f" in model '{model.name}'"
        return EditError(f"no node matches '{text}'{where}", node=None,
                         hint=hint or f"the model has {len(names)} nodes; Dump it to see their names")

    def _generate_names(self, src: str, dst: str) -> tuple[Model, Model, list[tuple[Node, str]]]:
        """CNTK's GenerateNames: pair each source node with its target name."""
        src_model, src_pat = self._split(src)
        _, nodes = self._find(src)
        dst_model, dst_pat = self._split(dst)
        src_wild, dst_wild = "*" in src_pat, "*" in dst_pat
        if not src_wild and dst_wild:
            targets = fast_match(dst_model.network, dst_pat)
            if not targets:
                raise EditError(
                    f"Setting a single input to multiple outputs requires the multiple outputs to "
                    f"exist: '{dst}' matches no node", hint=self._not_found(dst_model, dst_pat, dst).hint)
            return src_model, dst_model, [(nodes[0], t.name) for t in targets]
        if src_wild:
            sp, tp = Pattern(src_pat), Pattern(dst_pat)
            if bool(sp.head) != bool(tp.head) or bool(sp.tail) != bool(tp.tail):
                raise EditError(
                    f"the target '{dst}' must have the same shape as the source '{src}' "
                    "(a '*' with text before it exactly when the source has, and after it "
                    "exactly when the source has), e.g. Copy(L1.*, L2.*)")
            pairs = [(n, map_name(sp, tp, n.name)) for n in nodes]
        else:
            pairs = [(nodes[0], dst_pat)]
        seen: dict[str, Node] = {}
        for n, name in pairs:
            other = seen.setdefault(name.lower(), n)
            if other is not n:
                raise EditError(f"'{other.name}' and '{n.name}' would both become '{name}'")
        return src_model, dst_model, pairs

    def _pairs_in_one_model(self, src: str, dst: str, mismatch: Callable[[Model, Model], str]
                            ) -> tuple[Network, list[tuple[Node, str]]]:
        """:meth:`_generate_names` for a command whose source and target must be in one model
        (EditError ``mismatch(src_model, dst_model)`` otherwise); runs that model's passes."""
        src_model, dst_model, pairs = self._generate_names(src, dst)
        if src_model is not dst_model:
            raise EditError(mismatch(src_model, dst_model))
        self._passes(src_model)
        return src_model.network, pairs

    def _single(self, text: str, what: str) -> tuple[Model, Node]:
        model, nodes = self._find(text)
        if len(nodes) != 1:
            raise EditError(f"{what} must be a single node, but '{text}' matches {len(nodes)}: "
                            + ", ".join(n.name for n in nodes[:6]) + (" ..." if len(nodes) > 6 else ""))
        return model, nodes[0]

    # ---- copying -------------------------------------------------------------------------------
    def copy(self, src: str, dst: str, copy: str = "all") -> list[Node]:
        """MEL Copy: copy the nodes matching ``src`` to the names ``dst`` maps them to.

        ``copy="all"``: values (copied once), attributes and the links among the copied nodes;
        a new node's inputs outside the copied set are left unconnected (wire them with
        set_input); an existing target keeps such inputs. ``copy="value"``: only values,
        multipliers and attributes onto existing nodes of the same operation.
        Returns the target nodes in source order.
        """
        mode = copy_mode(copy)
        src_model, dst_model, pairs = self._generate_names(src, dst)
        self._passes(src_model)
        if dst_model is not src_model:
            self._passes(dst_model)
        net = dst_model.network
        existing: dict[int, Node] = {}
        for k, (s, name) in enumerate(pairs):
            t = net.get(name)
            if t is None:
                if mode == "value":
                    raise EditError(
                        f"copy=value needs existing targets, but '{name}' does not exist in model "
                        f"'{dst_model.name}'", hint="use copy=all to create new nodes")
                continue
            if t is s:
                raise EditError(f"cannot copy '{s.name}' onto itself")
            if t.op != s.op:
                raise EditError(f"Cannot copy from one node type to another node type: "
                                f"'{s.name}' is {s.op}, '{t.name}' is {t.op}")
            existing[k] = t
        new = [(s, name) for k, (s, name) in enumerate(pairs) if k not in existing]
        made = copy_nodes([s for s, _ in new], {s: name for s, name in new}, net, with_inputs=False)
        targets: list[Node] = []
        first_target: dict[Node, Node] = {}
        for k, (s, _name) in enumerate(pairs):
            t = existing.get(k) or made[s]
            if k in existing:
                overwrite(t, s, mode)
            targets.append(t)
            first_target.setdefault(s, t)
        if mode == "all":
            for k, (s, _name) in enumerate(pairs):
                t = targets[k]
                old = t.inputs
                ins = []
                for i, inp in enumerate(s.inputs):
                    if inp is not None and inp in first_target:
                        ins.append(first_target[inp])
                    elif k in existing and i < len(old):
                        ins.append(old[i])
                    else:
                        ins.append(None)
                net.set_inputs(t, ins)
        return targets

    def copy_subtree(self, roots: str, prefix: str, to_model: str | None = None, copy: str = "all") -> list[Node]:
        """MEL CopySubTree: copy every node the roots depend on, roots included, inputs first,
        as ``prefix + name`` into ``to_model`` (default: the default model)."""
        mode = copy_mode(copy)
        src_model, nodes = self._find(roots)
        dst_model = self._model(to_model) if to_model else self._require_default()
        self._passes(src_model)
        if dst_model is not src_model:
            self._passes(dst_model)
        net = dst_model.network
        order = topological_order(src_model.network, reachable_up(src_model.network, nodes))
        plan: list[tuple[Node, Node | None, str]] = []
        for s in order:
            name = prefix + s.name
            t = net.get(name)
            if t is not None and (t is s or t.op != s.op):
                raise EditError(f"cannot copy '{s.name}' onto '{t.name}'" +
                                (": it is the same node" if t is s else f" ({s.op} onto {t.op})"))
            if t is None and mode == "value":
                raise EditError(f"copy=value needs existing targets, but '{name}' does not exist",
                                hint="use copy=all to create new nodes")
            plan.append((s, t, name))
        new = [(s, name) for s, t, name in plan if t is None]
        made = copy_nodes([s for s, _ in new], {s: name for s, name in new}, net, with_inputs=False)
        mapping: dict[Node, Node] = {}
        for s, t, _name in plan:
            if t is None:
                t = made[s]
            else:
                overwrite(t, s, mode)
            mapping[s] = t
        if mode == "all":
            for s, t in mapping.items():
                net.set_inputs(t, [None if i is None else mapping.get(i) for i in s.inputs])
        return list(mapping.values())

    def copy_inputs(self, src: str, dst: str) -> list[Node]:
        """MEL CopyInputs: give each target the inputs of its source (same model); a missing
        target is created as a duplicate without a value."""
        net, pairs = self._pairs_in_one_model(src, dst, lambda a, b: (
            f"CopyInputs requires two symbols from the same network, '{src}' and '{dst}' "
            "belong to different networks"))
        for s, name in pairs:
            t = net.get(name)
            if t is not None and t.op != s.op:
                raise EditError(f"CopyInputs: '{s.name}' is {s.op} but '{t.name}' is {t.op}")
        out = []
        for s, name in pairs:
            t = net.get(name)
            if t is None:
                twin = clone_node(s, name, share_value=True)
                twin.value = None
                t = net.adopt(twin)
            net.set_inputs(t, list(s.inputs))
            out.append(t)
        return out

    # ---- rewiring ------------------------------------------------------------------------------
    def set_input(self, target: str, index: int | str, input: str) -> list[Node]:
        """MEL SetInput: input ``index`` (0-based) of every node matching ``target`` becomes
        the single node ``input``; ``index`` equal to the input count appends."""
        in_model, _ = self._split(input)
        self._passes(in_model, "resolve")
        in_model, source = self._single(input, "the input of SetInput")
        t_model, targets = self._find(target)
        if t_model is not in_model:
            raise EditError(f"SetInput requires two symbols from the same network: '{target}' is "
                            f"in model '{t_model.name}', '{input}' in '{in_model.name}'")
        idx = input_index(index)
        registry = t_model.network.registry
        for t in targets:
            count = len(t.inputs)
            high = registry.op(t.op).arity[1] if registry.has_op(t.op) else None
            limit = count if high is None else min(count, high - 1)
            if idx < 0 or idx > limit:
                kinds = f"{t.op} takes {registry.op(t.op).arity_text()} inputs; " if high is not None else ""
                raise EditError(
                    f"input index {idx} is out of range for '{t.name}': {kinds}it has {count} "
                    f"input(s), so the index must be between 0 and {limit}", node=t.name)
            if source.dtype != t.dtype:
                raise EditError(f"precision mismatch: '{source.name}' is {source.dtype}, "
                                f"'{t.name}' is {t.dtype}")
        for t in targets:
            ins = list(t.inputs)
            if idx == len(ins):
                ins.append(source)
            else:
                ins[idx] = source
            t_model.network.set_inputs(t, ins)
        return targets

    def set_inputs(self, target: str, *inputs: str) -> Node:
        """MEL SetInputs: replace all inputs of the single node ``target`` at once."""
        model, _ = self._split(target)
        self._passes(model, "resolve")
        model, node = self._single(target, "the target of SetInputs")
        sources = []
        for text in inputs:
            m, s = self._single(text, "each input of SetInputs")
            if m is not model:
                raise EditError(f"SetInputs requires symbols from the same network: '{text}' is in "
                                f"model '{m.name}', '{target}' in '{model.name}'")
            sources.append(s)
        registry = model.network.registry
        if registry.has_op(node.op) and not registry.op(node.op).accepts_arity(len(sources)):
            raise EditError(f"{node.op} operation '{node.name}' expects "
                            f"{registry.op(node.op).arity_text()} inputs (given: {len(sources)})",
                            node=node.name)
        model.network.set_inputs(node, sources)
        return node

    # ---- properties ----------------------------------------------------------------------------
    def set_property(self, pattern: str, prop: str, value: Any) -> list[Node]:
        """MEL SetProperty (every name and alias of §C.8, CNTK's abbreviation rule)."""
        effect = property_effect(prop)
        model, nodes = self._find(pattern)
        self._passes(model, "initial")
        net = model.network
        if effect == "learningRateMultiplier":
            mult = to_float(value, prop)
            for n in nodes:
                n.learning_rate_multiplier = mult
        elif effect == "recurrent":
            pass
        elif effect == "needGradient":
            on = to_bool(value, prop)
            for n in nodes:
                n.learning_rate_multiplier = 1.0 if on else 0.0
        elif effect == "freezeParameters":
            on = to_bool(value, prop)
            bad = [n for n in nodes if n.op not in ("LearnableParameter", "BatchNormalization")]
            if bad:
                raise EditError(f"'{bad[0].name}' ({bad[0].op}) is not freezable", node=bad[0].name)
            for n in nodes:
                n.learning_rate_multiplier = 0.0 if on else 1.0
                if n.op == "BatchNormalization":
                    n.attrs["frozen"] = on
        else:
            on = to_bool(value, prop)
            for n in nodes:
                if on:
                    net.add_to_group(effect, n)
                else:
                    net.remove_from_group(effect, n)
        net.version += 1
        return nodes

    def set_property_for_subtree(self, roots: str, prop: str, value: Any) -> list[Node]:
        """MEL SetPropertyForSubTree: needGradient or learningRateMultiplier on every
        LearnableParameter the roots depend on."""
        effect = property_effect(prop)
        if effect not in SUBTREE_PROPERTIES:
            raise EditError(f"Invalid property, '{prop}', is not supported by SetPropertyForSubTree",
                            hint="use needGradient (computeGradient) or learningRateMultiplier")
        model, _ = self._split(roots)
        self._passes(model, "resolve")
        model, nodes = self._find(roots)
        mult = to_float(value, prop) if effect == "learningRateMultiplier" else (
            1.0 if to_bool(value, prop) else 0.0)
        params = [n for n in reachable_up(model.network, nodes) if n.op == "LearnableParameter"]
        for n in params:
            n.learning_rate_multiplier = mult
        model.network.version += 1
        return params

    def freeze(self, pattern: str, *, subtree: bool = False) -> list[Node]:
        """Set the learning-rate multiplier of the matched parameters (with ``subtree``: of
        every parameter they depend on) to 0. Returns the parameters frozen."""
        return self._multiplier(pattern, 0.0, subtree)

    def unfreeze(self, pattern: str, *, subtree: bool = False, multiplier: float = 1.0) -> list[Node]:
        """The opposite of :meth:`freeze`."""
        return self._multiplier(pattern, multiplier, subtree)

    def _multiplier(self, pattern: str, mult: float, subtree: bool) -> list[Node]:
        model, nodes = self._find(pattern)
        self._passes(model, "resolve")
        pool = reachable_up(model.network, nodes) if subtree else nodes
        params = [n for n in pool if n.op == "LearnableParameter"]
        if not params:
            raise EditError(f"'{pattern}' matches no LearnableParameter to (un)freeze")
        for n in params:
            n.learning_rate_multiplier = mult
        model.network.version += 1
        return params

    # ---- removing and renaming -----------------------------------------------------------------
    def remove(self, *patterns: str) -> list[Node]:
        """MEL Remove/Delete: remove every matched node; each input that used one becomes
        unconnected (all references, unlike CNTK which left later ones dangling)."""
        models: dict[int, Model] = {}
        for p in patterns:
            m, _ = self._split(p)
            models.setdefault(id(m), m)
        for m in models.values():
            self._passes(m)
        per_model: dict[int, list[Node]] = {}
        for p in patterns:
            m, nodes = self._find(p)
            per_model.setdefault(id(m), []).extend(nodes)
        removed = []
        for key, nodes in per_model.items():
            models[key].network.remove_many(nodes, detach_users="all")
            removed.extend(nodes)
        return removed

    def rename(self, old: str, new: str) -> list[Node]:
        """MEL Rename, with matching wildcards (``Rename(L4.*, L5.*)``)."""
        net, pairs = self._pairs_in_one_model(old, new, lambda a, b: (
            f"Rename requires two names in the same model: '{old}' is in '{a.name}', '{new}' "
            f"in '{b.name}'"))
        olds = {s.name.lower() for s, _ in pairs}
        news = [name.lower() for _, name in pairs]
        if olds.isdisjoint(news):
            # the common case: O(k) single renames, after checking every new name is free
            for s, name in pairs:
                taken = net.get(name)
                if taken is not None:
                    raise EditError(f"cannot rename '{s.name}' to '{name}': a node named "
                                    f"'{taken.name}' already exists (RenameNode: Target name "
                                    "already exists)", node=s.name)
            for s, name in pairs:
                net.rename(s, name)
        else:  # overlapping old and new names (a swap): the whole-network rename
            net.rename_many({s.name: name for s, name in pairs})
        return [s for s, _ in pairs]

    def revise_parameter(self, pattern: str, path: str | os.PathLike[str]) -> list[Node]:
        """MEL ReviseParameter: reload matched parameters' values from a text matrix file
        (one CNTK row per line, as Dump writes them)."""
        import numpy as np

        from netsurgeon.ops.init import read_text_matrix

        model, nodes = self._find(pattern)
        self._passes(model)
        try:
            text = Path(path).read_bytes().decode("utf-8", errors="replace")
            kept = "\n".join(line for line in text.splitlines() if not line.strip().startswith("#"))
            matrix = read_text_matrix(kept, str(path))
        except (OSError, NetsurgeonError) as exc:
            raise EditError(f"cannot read parameter file {path}: {exc}") from exc
        done = []
        for n in nodes:
            if n.op != "LearnableParameter":
                self.warn(f"WARNING: ReviseParameter skips '{n.name}': it is {n.op}, not a "
                          "LearnableParameter")
                continue
            shape = tuple(n.value.shape) if n.value is not None else tuple(n.shape or ())
            if matrix.size != int(np.prod(shape)):
                raise EditError(f"{path} has {matrix.size} values but '{n.name}' needs "
                                f"{int(np.prod(shape))} (shape {shape})", node=n.name)
            dtype = n.value.dtype if n.value is not None else np.dtype(n.dtype)
            # rows are CNTK rows (the last numpy axis): transpose back to numpy order
            n.value = np.ascontiguousarray(matrix.reshape(matrix.shape[0], -1).T.reshape(shape)).astype(dtype)
            done.append(n)
        return done

    # ---- saving and dumping --------------------------------------------------------------------
    def check(self, model: str | None = None) -> None:
        """Validate a model: every input connected, arities, shapes. The error names every
        unconnected or mis-wired node at once."""
        self._validate(self._model(model))

    def _validate(self, model: Model) -> None:
        self._passes(model)
        net = model.network
        registry = net.registry
        problems = []
        for node in net.nodes:
            if registry.has_op(node.op):
                spec = registry.op(node.op)
                if not spec.accepts_arity(len(node.inputs)):
                    problems.append(f"{node.name} ({node.op}) has {len(node.inputs)} inputs, "
                                    f"expects {spec.arity_text()}")
            missing = [str(i) for i, x in enumerate(node.inputs) if x is None]
            if missing:
                problems.append(f"{node.name} ({node.op}): input {', '.join(missing)} not connected")
        if problems:
            shown = problems[:25] + ([f"... {len(problems) - 25} more"] if len(problems) > 25 else [])
            raise ValidationError(
                f"model '{model.name}' is not valid: " + "; ".join(shown),
                hint="connect them with SetInput/SetInputs or remove them")
        try:
            net.validate()
        except ValidationError as exc:
            exc.message = f"model '{model.name}' is not valid: {exc.message}"
            exc.args = (exc._render(),)
            raise

    def save(self, path: str | os.PathLike[str], model: str | None = None, format: str | None = None) -> str:
        """Validate, then write a model (default: the default model) atomically. The format
        comes from ``format`` or the extension (``.dnn``/``.cmf``/``.model``: cntk, else
        native). An invalid model is never written. Returns the format used."""
        from netsurgeon import formats

        m = self._model(model)
        fmt = canonical_format(format) or formats.format_for_path(path)
        self._validate(m)
        self.writer.write(str(path), lambda real: formats.save(m.network, real, format=fmt))
        return fmt

    def dump(self, path: str | os.PathLike[str] | None = None, model: str | None = None,
             include_data: bool = False) -> str:
        """The §D Dump text of a whole model; written to ``path`` when given."""
        from netsurgeon.formats.dump import dump_text

        m = self._model(model)
        self._passes(m)
        text = dump_text(m.network, include_data=include_data)
        if path is not None:
            self._write_text(str(path), text)
        return text

    def dump_nodes(self, pattern: str, path: str | os.PathLike[str] | None = None,
                   include_data: bool = False) -> str:
        """The §D Dump text of the matched nodes, in match order."""
        from netsurgeon.formats.dump import dump_text

        model, _ = self._split(pattern)
        self._passes(model)
        model, nodes = self._find(pattern)
        text = dump_text(model.network, include_data=include_data, nodes=nodes)
        if path is not None:
            self._write_text(str(path), text)
        return text

    def _write_text(self, path: str, text: str) -> None:
        def produce(real: str) -> None:
            from netsurgeon.formats._atomic import atomic_write

            with atomic_write(real) as f:
                f.write(text.encode("utf-8"))

        self.writer.write(path, produce)

    # ---- scripts -------------------------------------------------------------------------------
    def run(self, script: str | os.PathLike[str], variables: dict[str, Any] | None = None) -> dict[str, Network]:
        """Run MEL statements on this editor (files are written as each command runs)."""
        from netsurgeon.lang.mel._interpreter import Interpreter, read_script

        text, file = read_script(script)
        Interpreter(self, variables).execute(text, file)
        return self.models
