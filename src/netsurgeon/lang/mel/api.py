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

The verbs here are thin: models and in-line NDL are the :class:`~netsurgeon.lang.mel._session.
Session`'s, name resolution is :mod:`~netsurgeon.lang.mel._names`, and the edits themselves
are the edit layer's (:mod:`netsurgeon.graph`: ``copy_nodes``, ``freeze``, the ``Network``
rewiring methods). The MEL interpreter (:mod:`netsurgeon.lang.mel`) calls one method per
command.
"""

from __future__ import annotations

import os
from typing import Any

from netsurgeon.errors import EditError, GraphError
from netsurgeon.graph import Network, Node, freeze, reachable_up, topological_order
from netsurgeon.graph.extract import orphaned_by
from netsurgeon.lang.mel import _copying, _files, _names, _properties
from netsurgeon.lang.mel._session import Model, Session
from netsurgeon.lang.mel._values import (
    PROPERTIES,
    canonical_format,
    copy_mode,
    default_format,
    input_index,
)
from netsurgeon.ops import Category

__all__ = ["Editor", "Model", "PROPERTIES"]


class Editor(Session):
    """A set of named models with a default one (a :class:`Session`: same arguments, models
    and in-line NDL), and every MEL edit as a method."""

    # ---- finding nodes ------------------------------------------------------------------------
    def select(self, pattern: str) -> list[Node]:
        """Nodes matching a MEL pattern (``L3.*``, ``*.W``, ``m1.L3.*``), in CNTK name order.
        Raises EditError (with close matches) when nothing matches."""
        return _names.find(self, pattern)[1]

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
        src_model, dst_model, pairs = _names.generate_names(self, src, dst)
        self.run_all_passes([src_model, dst_model])
        net = dst_model.network
        existing = _copying.existing_targets(net, pairs, mode, dst_model.name)
        return _copying.copy_pairs(net, pairs, mode, existing)

    def copy_subtree(self, roots: str, prefix: str, to_model: str | None = None,
                     copy: str = "all") -> list[Node]:
        """MEL CopySubTree: copy every node the roots depend on, roots included, inputs first,
        as ``prefix + name`` into ``to_model`` (default: the default model)."""
        mode = copy_mode(copy)
        src_model, nodes = _names.find(self, roots)
        dst_model = self.entry(to_model) if to_model else self.require_default()
        self.run_all_passes([src_model, dst_model])
        source = src_model.network
        order = topological_order(source, reachable_up(source, nodes))
        pairs = [(s, prefix + s.name) for s in order]
        net = dst_model.network
        existing = _copying.existing_targets(net, pairs, mode, dst_model.name)
        return _copying.copy_pairs(net, pairs, mode, existing)

    def copy_inputs(self, src: str, dst: str) -> list[Node]:
        """MEL CopyInputs: give each target the inputs of its source (same model); a missing
        target is created as a duplicate without a value."""
        net, pairs = _names.pairs_in_one_model(self, src, dst, lambda a, b: (
            f"CopyInputs requires two symbols from the same network, '{src}' and '{dst}' "
            "belong to different networks"))
        return _copying.copy_inputs(net, pairs)

    # ---- rewiring ------------------------------------------------------------------------------
    def set_input(self, target: str, index: int | str, input: str) -> list[Node]:
        """MEL SetInput: input ``index`` (0-based) of every node matching ``target`` becomes
        the single node ``input``; ``index`` equal to the input count appends."""
        in_model, _ = _names.split(self, input)
        self.run_passes(in_model, "resolve")
        in_model, source = _names.single(self, input, "the input of SetInput")
        t_model, targets = _names.find(self, target)
        if t_model is not in_model:
            raise EditError(f"SetInput requires two symbols from the same network: '{target}' is "
                            f"in model '{t_model.name}', '{input}' in '{in_model.name}'")
        idx = input_index(index)
        for t in targets:
            if source.dtype != t.dtype:
                raise EditError(f"precision mismatch: '{source.name}' is {source.dtype}, "
                                f"'{t.name}' is {t.dtype}")
        net = t_model.network
        done: list[tuple[Node, tuple[Node | None, ...]]] = []
        for t in targets:
            old = t.inputs
            try:
                net.set_input(t, idx, source)  # the Network checks the index and the arity
            except GraphError:
                for d, inputs in done:  # all or nothing: undo the targets already changed
                    net.set_inputs(d, inputs)
                raise _index_error(net, t, idx) from None
            done.append((t, old))
        return targets

    def set_inputs(self, target: str, *inputs: str) -> Node:
        """MEL SetInputs: replace all inputs of the single node ``target`` at once."""
        model, _ = _names.split(self, target)
        self.run_passes(model, "resolve")
        model, node = _names.single(self, target, "the target of SetInputs")
        sources = []
        for text in inputs:
            m, s = _names.single(self, text, "each input of SetInputs")
            if m is not model:
                raise EditError(f"SetInputs requires symbols from the same network: '{text}' is in "
                                f"model '{m.name}', '{target}' in '{model.name}'")
            sources.append(s)
        try:
            model.network.set_inputs(node, sources, complete=True)
        except GraphError:
            spec = model.network.registry.op(node.op)
            raise EditError(f"{node.op} operation '{node.name}' expects {spec.arity_text()} "
                            f"inputs (given: {len(sources)})", node=node.name) from None
        return node

    # ---- properties ----------------------------------------------------------------------------
    def set_property(self, pattern: str, prop: str, value: Any) -> list[Node]:
        """MEL SetProperty (every name and alias of §C.8, CNTK's abbreviation rule)."""
        model, nodes = _names.find(self, pattern)
        self.run_passes(model, "initial")
        _properties.set_property(model.network, nodes, prop, value)
        return nodes

    def set_property_for_subtree(self, roots: str, prop: str, value: Any) -> list[Node]:
        """MEL SetPropertyForSubTree: needGradient or learningRateMultiplier on every
        LearnableParameter the roots depend on."""
        mult = _properties.subtree_multiplier(prop, value)
        model, _ = _names.split(self, roots)
        self.run_passes(model, "resolve")
        model, nodes = _names.find(self, roots)
        net = model.network
        params = net.registry.op_set(Category.PARAMETER)
        found = [n for n in reachable_up(net, nodes) if n.op in params]
        for n in found:
            net.update(n, learning_rate_multiplier=mult)
        return found

    def freeze(self, pattern: str, *, subtree: bool = False) -> list[Node]:
        """Freeze the matched parameters and batch normalizations (with ``subtree``: every one
        they depend on): learning-rate multiplier 0, batch normalization in inference mode.
        Returns the nodes frozen."""
        return self._multiplier(pattern, 0.0, subtree)

    def unfreeze(self, pattern: str, *, subtree: bool = False,
                 multiplier: float = 1.0) -> list[Node]:
        """Give the matched parameters (and batch normalizations) a learning-rate multiplier
        again; batch normalization's time constants stay as they are."""
        return self._multiplier(pattern, multiplier, subtree)

    def _multiplier(self, pattern: str, mult: float, subtree: bool) -> list[Node]:
        model, nodes = _names.find(self, pattern)
        self.run_passes(model, "resolve")
        net = model.network
        pool = reachable_up(net, nodes) if subtree else nodes
        freezable = net.registry.op_set(Category.FREEZABLE)
        chosen = [n for n in pool if n.op in freezable]
        if not chosen:
            raise EditError(f"'{pattern}' matches no parameter or batch normalization to "
                            "(un)freeze")
        return freeze(chosen, multiplier=mult)

    # ---- removing and renaming -----------------------------------------------------------------
    def remove(self, *patterns: str) -> list[Node]:
        """MEL Remove/Delete: remove every matched node; each input that used one becomes
        unconnected (all references, unlike CNTK which left later ones dangling)."""
        self.run_all_passes(_names.split(self, p)[0] for p in patterns)
        per_model: dict[int, tuple[Model, list[Node]]] = {}
        for p in patterns:
            m, nodes = _names.find(self, p)
            per_model.setdefault(id(m), (m, []))[1].extend(nodes)
        removed = []
        for m, nodes in per_model.values():
            orphans = orphaned_by(m.network, nodes)
            m.network.remove_many(nodes, detach_users="all")
            removed.extend(nodes)
            if orphans:
                shown = ", ".join(n.name for n in orphans[:8])
                more = f" and {len(orphans) - 8} more" if len(orphans) > 8 else ""
                self.warn(f"WARNING: Remove left {len(orphans)} node"
                          f"{'s' * (len(orphans) != 1)} of model {m.name} that no output, "
                          f"criterion or evaluation node needs: {shown}{more} (netsurgeon "
                          "cleanup MODEL -o OUT drops them)")
        return removed

    def rename(self, old: str, new: str) -> list[Node]:
        """MEL Rename, with matching wildcards (``Rename(L4.*, L5.*)``)."""
        net, pairs = _names.pairs_in_one_model(self, old, new, lambda a, b: (
            f"Rename requires two names in the same model: '{old}' is in '{a.name}', '{new}' "
            f"in '{b.name}'"))
        olds = {s.name.lower() for s, _ in pairs}
        if olds.isdisjoint(name.lower() for _, name in pairs):
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
        model, nodes = _names.find(self, pattern)
        self.run_passes(model)
        matrix = _files.read_matrix(path)
        net = model.network
        params = net.registry.op_set(Category.PARAMETER)
        chosen = []
        for n in nodes:
            if n.op not in params:
                self.warn(f"WARNING: ReviseParameter skips '{n.name}': it is {n.op}, not a "
                          "LearnableParameter")
            else:
                chosen.append(n)
        values = [_files.revised_value(n, matrix, path) for n in chosen]  # all checked first
        for n, value in zip(chosen, values):
            net.update(n, value=value)
        return chosen

    # ---- saving and dumping --------------------------------------------------------------------
    def check(self, model: str | None = None) -> None:
        """Validate a model: every input connected, arities, shapes. The error names every
        unconnected or mis-wired node at once."""
        self._complete(self.entry(model))

    def _complete(self, model: Model) -> None:
        self.run_passes(model)
        _files.validate(model)

    def save(self, path: str | os.PathLike[str], model: str | None = None,
             format: str | None = None) -> str:
        """Validate, then write a model (default: the default model) atomically. The format
        comes from ``format`` (``cntkv2`` for CNTK 2.x files) or the extension
        (``.dnn``/``.cmf``/``.model``: cntk v1, as CNTK's MEL wrote; ``.onnx``: onnx; else
        native). An invalid model is never written. Returns the format used."""
        m = self.entry(model)
        fmt = canonical_format(format) or default_format(path)
        self._complete(m)
        _files.save(self.writer, m, path, fmt)
        return fmt

    def dump(self, path: str | os.PathLike[str] | None = None, model: str | None = None,
             include_data: bool = False) -> str:
        """The §D Dump text of a whole model; written to ``path`` when given."""
        from netsurgeon.formats.dump import dump_text

        m = self.entry(model)
        self.run_passes(m)
        return self._text(dump_text(m.network, include_data=include_data), path)

    def dump_nodes(self, pattern: str, path: str | os.PathLike[str] | None = None,
                   include_data: bool = False) -> str:
        """The §D Dump text of the matched nodes, in match order."""
        from netsurgeon.formats.dump import dump_text

        self.run_passes(_names.split(self, pattern)[0])
        model, nodes = _names.find(self, pattern)
        return self._text(dump_text(model.network, include_data=include_data, nodes=nodes), path)

    def _text(self, text: str, path: str | os.PathLike[str] | None) -> str:
        if path is not None:
            _files.write_text(self.writer, path, text)
        return text

    # ---- scripts -------------------------------------------------------------------------------
    def run(self, script: str | os.PathLike[str],
            variables: dict[str, Any] | None = None) -> dict[str, Network]:
        """Run MEL statements on this editor (files are written as each command runs)."""
        from netsurgeon.lang.mel._interpreter import Interpreter, read_script

        text, file = read_script(script)
        Interpreter(self, variables).execute(text, file)
        return self.models


def _index_error(net: Network, node: Node, index: int) -> EditError:
    """SetInput's error for an index the Network refused, saying which indices are valid."""
    count = len(node.inputs)
    spec = net.registry.op(node.op)
    high = spec.arity[1]
    limit = count if high is None else min(count, high - 1)
    kinds = f"{node.op} takes {spec.arity_text()} inputs; " if high is not None else ""
    return EditError(f"input index {index} is out of range for '{node.name}': {kinds}it has "
                     f"{count} input(s), so the index must be between 0 and {limit}",
                     node=node.name)
