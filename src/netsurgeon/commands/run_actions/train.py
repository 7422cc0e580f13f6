"""``train``/``trainRNN`` (cntk-config-driver.md §5): the network source, the reader as the
SGD engine's epoch source, and the engine (``netsurgeon.runtime.cntk_sgd``)."""

from __future__ import annotations

import os

from netsurgeon.commands.run_actions._common import (
    Section,
    build_network,
    builder_key,
    load_model,
    reader_spec,
    save_model,
)
from netsurgeon.errors import ArgumentError

__all__ = ["do_train", "epoch_source"]


def engine():
    """The SGD engine module; a one-line error when this version has none."""
    try:
        from netsurgeon.runtime import cntk_sgd  # type: ignore[attr-defined]
    except ImportError as exc:
        if "cntk_sgd" not in str(exc):
            raise
        raise ArgumentError("the train action needs netsurgeon.runtime.cntk_sgd (CNTK's SGD "
                            "engine), which this version does not have; use 'netsurgeon "
                            "train' meanwhile") from None
    return cntk_sgd


def epoch_source(spec, network_ref):
    """An EpochSource over a reader: ``(epoch, minibatch_size, epoch_size)`` -> minibatches,
    with CNTK's randomisation (``netsurgeon.runtime.readers.randomize``) when the reader
    randomises, else in file order; ``epoch_size`` samples per epoch continue where the
    previous epoch stopped (0: one sweep)."""
    try:
        from netsurgeon.runtime.readers.randomize import ctf_epoch_minibatches
    except ImportError:  # pragma: no cover - a tree without the randomiser
        ctf_epoch_minibatches = None
    cache: dict[int, object] = {}

    def source(epoch: int, minibatch_size: int, epoch_size: int):
        net = network_ref()
        if ctf_epoch_minibatches is None:
            skip = epoch * epoch_size if epoch_size > 0 else 0
            return spec.minibatches(net, minibatch_size, skip, epoch_size)
        reader = cache.get(id(net))
        if reader is None:
            from netsurgeon.runtime.readers import CTFReader

            reader = CTFReader(spec.file, spec.streams_for(net), minibatch_size)
            cache.clear()
            cache[id(net)] = reader
        block = spec.section
        window = block.int("randomizationWindow", 0) or None
        return ctf_epoch_minibatches(
            reader, epoch, minibatch_size, epoch_size, spec.randomize, spec.seed,
            randomization_window=window,
            sample_based_window=block.bool("sampleBasedRandomizationWindow", False),
            chunk_size_in_bytes=block.int("chunkSizeInBytes", 32 * 1024 * 1024))

    return source


def do_train(sec: Section) -> None:
    """Train with the section's SGD block; checkpoints ``modelPath.N``, final ``modelPath``."""
    sgd = engine()
    key = builder_key(sec)
    model_path = sec.file("modelPath")
    if key is None and model_path is None:
        sec.required("modelPath")
    if key is None:
        raise sec.error(f"No network builder found in the config file for section "
                        f"'{sec.command}': give NDLNetworkBuilder=[...], "
                        "BrainScriptNetworkBuilder=[...] or SimpleNetworkBuilder=[...]")
    reader = reader_spec(sec)
    cv = reader_spec(sec, "cvReader", randomize=False) if sec.block("cvReader") else None
    block = sec.block("SGD") or sec
    where = block.path_name

    def get(name: str) -> str | None:
        # an SGD block inherited from the top level sees the top level; the command section's
        # own keys (modelPath of a recipe step) come next
        value = block.str(name)
        return sec.str(name) if value is None and block is not sec else value

    if get("modelPath") is None:
        sec.required("modelPath")
    settings = sgd.SGDSettings.from_lookup(_resolved_paths(sec, get), where=where)
    holder: dict[str, object] = {}

    def current():
        return holder["net"]

    threads = _SmallModelThreads(sgd, settings.minibatch(0))

    def build():
        net = build_network(sec, key)
        holder["net"] = net
        threads.fit(net)
        return net

    def load(path: str):
        net = load_model(path)
        holder["net"] = net
        threads.fit(net)
        return net

    def source_for(spec):
        if spec is None:
            return None
        inner = epoch_source(spec, current)

        def source(epoch: int, mb: int, size: int):
            if "net" not in holder:
                build()
            return inner(epoch, mb, size)

        return source

    try:
        trained = sgd.train(None, settings, source_for(reader), build=build, load_model=load,
                            save_model=_saver(sec), cv_source=source_for(cv),
                            make_mode=sec.bool("makeMode", True),
                            trace_level=sec.int("traceLevel", 0), log=sec.ctx.log,
                            **_placement(sec, block))
    finally:
        threads.restore()
    holder["net"] = trained


class _SmallModelThreads:
    """One CPU thread while a small network trains (the engine's ``small_model_threads``),
    the thread count put back afterwards."""

    def __init__(self, sgd, minibatch_size: int) -> None:
        self.sgd = sgd
        self.minibatch_size = minibatch_size
        self.previous: int | None = None

    def fit(self, net) -> None:
        if self.previous is None:
            self.previous = self.sgd.small_model_threads(net, self.minibatch_size)

    def restore(self) -> None:
        if self.previous is not None:
            self.sgd.restore_threads(self.previous)
            self.previous = None


_PARALLEL_KEYS = ("parallelizationStartEpoch", "distributedMBReading", "gradientBits",
                  "blockSize", "blockSizePerWorker", "syncPeriod", "syncFrequencyInFrames",
                  "resetSGDMomentum", "useNesterovMomentum", "blockLearningRate",
                  "blockMomentumAsTimeConstant", "blockMomentumPerSync")


def _placement(sec: Section, block: Section) -> dict:
    """The engine's ``device``, ``precision`` and ``parallel`` when not the defaults: deviceId's
    GPU, precision's autocast, and under torchrun the ParallelTrain block as a data-parallel
    rank (in one process the block is ignored, as CNTK without MPI does)."""
    from netsurgeon.runtime import distributed
    from netsurgeon.runtime.device import cntk_precision, resolve_device

    device = resolve_device(sec.ctx.device)
    precision = cntk_precision(sec.ctx.precision, device)
    placed = {"device": device, "precision": precision} if device.type != "cpu" else {}
    parallel_block = block.block("ParallelTrain")
    if parallel_block is None or not distributed.launched():
        return placed
    method = parallel_block.str("parallelizationMethod", "none") or "none"
    values = {k.lower(): v for k in _PARALLEL_KEYS
              for v in [parallel_block.str(k)] if v is not None}
    own = parallel_block.block(method)
    if own is not None:
        values.update({k.lower(): v for k in _PARALLEL_KEYS for v in [own.str(k)]
                       if v is not None})
    world = int(os.environ.get("WORLD_SIZE", "1"))
    # method none: every rank trains on all the data, never in parallel; rank 0 writes
    config = distributed.from_cntk(method, values, world) or \
        distributed.ParallelConfig(start_epoch=2 ** 31)
    distributed.init_process_group(device, config.timeout)
    return {**placed, "parallel": distributed.Parallel(config)}


def _resolved_paths(sec: Section, get):
    """``modelPath`` relative to currentDirectory, other keys as written."""

    def lookup(name: str) -> str | None:
        value = get(name)
        if value is not None and name.lower() == "modelpath":
            return str(sec.ctx.path(value))
        return value

    return lookup


def _saver(sec: Section):
    def save(network, path: str) -> None:
        save_model(network, path)
        sec.ctx.written.append(path)

    return save
