"""``netsurgeon train MODEL DATA.ctf -o OUT``: train a model's parameters on CTF data.

SGD with CNTK's knobs (learning rate per sample or per minibatch, momentum, L2, gradient
clipping, epochs, epoch size, minibatch size), or Adam / AdaGrad. A checkpoint is written
after every epoch (``OUT.ckpt`` unless ``--checkpoint``); ``--resume`` continues from it.
"""

from __future__ import annotations

import argparse
import math

from netsurgeon.commands._common import add_format_option, input_names, parse_assignments
from netsurgeon.errors import NetsurgeonError


def _rates(text: str) -> list[tuple[float, int]]:
    """``0.01`` or ``0.01,0.005`` or CNTK's ``0.01*2:0.005`` (rate*epochs:...), as
    (rate, epochs) pairs; every rate a finite number >= 0 (an argparse type)."""
    out: list[tuple[float, int]] = []
    for part in text.replace(",", ":").split(":"):
        rate, star, count = part.partition("*")
        try:
            value, times = float(rate), int(count) if star else 1
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"cannot read '{text}'; use 0.01, 0.01,0.005 or 0.01*2:0.005") from None
        if not math.isfinite(value) or value < 0:
            raise argparse.ArgumentTypeError(f"rate {rate.strip()} in '{text}': a learning rate "
                                             "is a finite number >= 0")
        if times < 1:
            raise argparse.ArgumentTypeError(f"'{part}' in '{text}': repeat a rate 1 or more "
                                             "epochs")
        out.append((value, times))
    return out


def expand_rates(pairs: list[tuple[float, int]], epochs: int) -> list[float]:
    """One rate per epoch, at most ``epochs`` of them (the last repeats after that)."""
    out: list[float] = []
    for rate, times in pairs:
        out += [rate] * min(times, epochs - len(out))
        if len(out) >= epochs:
            break
    return out or [pairs[-1][0]]


def count(minimum: int):
    """An argparse type: an integer >= ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value}: give {minimum} or more")
        return value

    parse.__name__ = "count"
    return parse


def real(low: float, high: float = math.inf, *, low_open: bool = False,
         high_open: bool = False, infinite: bool = False):
    """An argparse type: a number in [low, high] (open ends as asked; ``inf`` if allowed)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if math.isnan(value) or (math.isinf(value) and not infinite) \
                or value < low or (low_open and value == low) \
                or value > high or (high_open and value == high):
            if math.isfinite(high):
                span = (f"in {'(' if low_open else '['}{low:g}, {high:g}"
                        f"{')' if high_open else ']'}")
            else:
                span = f"{'>' if low_open else '>='} {low:g}" + (" or inf" if infinite else "")
            raise argparse.ArgumentTypeError(f"{text}: give a finite number {span}")
        return value

    parse.__name__ = "number"
    return parse


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon train``."""
    parser.add_argument("model", help="model file (.nsm, .dnn/.cmf) or NDL network file")
    parser.add_argument("data", help="CNTK Text Format training data")
    parser.add_argument("-o", "--out", required=True, help="where to save the trained model")
    parser.add_argument("--map", action="append", metavar="NODE=STREAM",
                        help="feed input NODE from CTF stream STREAM (default: same name)")
    parser.add_argument("--epochs", type=count(1), default=1, help="epochs to train (>= 1)")
    parser.add_argument("--minibatch", type=count(1), default=256, help="samples per minibatch")
    parser.add_argument("--epoch-size", type=count(0), default=0,
                        help="samples per epoch (0 = all)")
    parser.add_argument("--lr", type=_rates, default=[(0.01, 1)],
                        help="learning rate(s): 0.01, or per epoch 0.01,0.005 / 0.01*2:0.005")
    parser.add_argument("--lr-unit", choices=("sample", "minibatch"), default="sample",
                        help="rate per sample (CNTK learningRatesPerSample) or per minibatch")
    parser.add_argument("--optimizer", choices=("sgd", "adam", "adagrad"), default="sgd")
    parser.add_argument("--momentum", type=real(0, 1, high_open=True), default=0.0,
                        help="momentum per minibatch, in [0, 1)")
    parser.add_argument("--no-unit-gain", action="store_true",
                        help="classic (non unit-gain) momentum")
    parser.add_argument("--l2", type=real(0), default=0.0, help="L2 regularization weight")
    parser.add_argument("--clip", type=real(0, low_open=True, infinite=True), default=math.inf,
                        help="gradient clipping threshold per sample (> 0; inf = none)")
    parser.add_argument("--clip-norm", action="store_true",
                        help="clip by the gradient norm instead of element-wise")
    parser.add_argument("--dropout", type=real(0, 1, high_open=True), default=0.0,
                        help="dropout rate, in [0, 1)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--checkpoint", help="checkpoint file (default: OUT.ckpt)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (there is none either when stderr is not a "
                             "terminal, or with -q)")
    parser.add_argument("--threads", type=count(1), default=None,
                        help="intra-op CPU threads (torch and torch.compile)")
    parser.add_argument("--backend", choices=("auto", "torch", "compile", "onnxruntime"),
                        default="auto", help="run the training code eagerly (torch), through "
                        "torch.compile, or pick the faster, measured on the real steps (auto, "
                        "default); onnxruntime only evaluates")
    parser.add_argument("--out-format", choices=("native", "cntk", "cntk-v2"), default=None,
                        help="format of OUT (default: from its extension)")
    add_device_options(parser)
    parallel = parser.add_argument_group(
        "data-parallel training (under torchrun --nproc-per-node N; see docs/distributed.md)")
    parallel.add_argument("--parallel", choices=("data", "model-averaging", "block-momentum"),
                          default=None, help="DataParallelSGD (default under torchrun), "
                          "ModelAveragingSGD or BlockMomentumSGD")
    parallel.add_argument("--sync-period", type=count(0), default=0, metavar="N",
                          help="global samples per block of model averaging / block momentum "
                               "(0 = CNTK's 40000*N / 120000*N)")
    parallel.add_argument("--parallel-start-epoch", type=count(1), default=1, metavar="E",
                          help="first epoch trained in parallel (1-based)")
    parallel.add_argument("--block-lr", type=real(0, low_open=True), default=1.0, metavar="R",
                          help="block learning rate (block momentum)")
    parallel.add_argument("--block-momentum", type=real(0, 1, high_open=True), default=None,
                          metavar="M",
                          help="momentum per block (default 1 - 1/N)")
    add_format_option(parser)


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """``--device`` and ``--precision`` (train and eval)."""
    parser.add_argument("--device", default="cpu", metavar="cpu|cuda|cuda:N|auto",
                        help="where to compute (auto: a GPU when there is one; under torchrun "
                             "cuda means each rank's own GPU)")
    parser.add_argument("--precision", choices=("float32", "float16", "bfloat16"),
                        default="float32", help="autocast mixed precision (float16 needs a "
                                                "GPU; parameters stay float32)")


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon train``; returns the exit status."""
    from netsurgeon.commands._model import load_model
    from netsurgeon.commands._progress import bars_for, ctf_samples
    from netsurgeon.formats import save
    from netsurgeon.formats._atomic import output_path
    from netsurgeon.runtime import set_threads
    from netsurgeon.runtime.readers import CTFReader, streams_for
    from netsurgeon.runtime.train import TrainConfig, Trainer, precompute

    if args.threads:
        set_threads(args.threads)
    device, parallel = _device_and_parallel(args)
    say = print if parallel is None or parallel.is_writer else _quiet
    checkpoint = args.checkpoint or (args.out + ".ckpt")
    # every place written is checked before hours of training, not after
    if output_path(args.out) == output_path(checkpoint):
        raise NetsurgeonError(f"-o {args.out} and --checkpoint {checkpoint} are the same file; "
                              "give the checkpoint another name")
    net = load_model(args.model, args.format)
    net.validate()
    config = TrainConfig(
        epochs=args.epochs, minibatch_size=args.minibatch, epoch_size=args.epoch_size,
        learning_rate=expand_rates(args.lr, args.epochs), lr_unit=args.lr_unit,
        momentum=args.momentum, unit_gain=not args.no_unit_gain, l2=args.l2,
        clip_threshold=args.clip, clip_truncation=not args.clip_norm, optimizer=args.optimizer,
        dropout_rate=args.dropout, seed=args.seed, checkpoint=checkpoint,
        progress=False)  # the bar is fit's progress= (on a terminal only)
    trainer = Trainer(net, config, device=device, precision=args.precision, parallel=parallel,
                      backend=args.backend)
    if parallel is not None:
        say(parallel.describe())
        for text in parallel.warnings():
            say(f"warning: {text}")
    if args.resume:
        trainer.load_checkpoint(checkpoint)
        say(f"resuming after epoch {trainer.epoch} from {checkpoint}")
    from netsurgeon.runtime.codegen import needed_nodes

    needed = needed_nodes(net, trainer.criteria + trainer.metrics)
    inputs = input_names(net, needed)
    specs = streams_for(net, parse_assignments(args.map, "--map"), inputs)
    reader = CTFReader(args.data, specs, args.minibatch)  # checks the data file now
    progress = bars_for(args) if say is print else None
    data_samples = ctf_samples(args.data) if progress else None  # the bars' totals
    if trainer.epoch >= args.epochs:
        say(f"nothing to train: the checkpoint is at epoch {trainer.epoch} and --epochs is "
              f"{args.epochs}")
        # the checkpoint holds parameters only: compute Mean/InvStdDev again, as a resumed
        # run's fit does, or the model is saved with its statistics missing (not precomputed)
        precompute(net, lambda: iter(reader), trainer.tensors, progress=progress,
                   total=data_samples)
        history = []
    else:
        resumed = trainer.epoch
        history = [h for h in trainer.fit(lambda: iter(reader), progress=progress,
                                          data_samples=data_samples) if h["epoch"] > resumed]
    for h in history:  # the epochs of this run (a resumed run's earlier ones were printed then)
        metrics = ", ".join(f"{k} = {v:.6g}" for k, v in h["metrics"].items())
        say(f"epoch {h['epoch']}: {h['samples']} samples, loss per sample = {h['loss']:.6g}"
              + (f", {metrics}" if metrics else ""))
    if trainer.is_writer:
        save(net, args.out, args.out_format)
        say(f"saved {args.out}")
    return 0


def _quiet(*_args, **_kwargs) -> None:
    """The print of ranks other than 0."""


def _device_and_parallel(args: argparse.Namespace):
    """The device, and the data-parallel rank when run under torchrun (None otherwise)."""
    import os

    from netsurgeon.runtime.device import resolve_device

    device = resolve_device(args.device)
    from netsurgeon.runtime import distributed

    if not distributed.launched():
        if args.parallel and not getattr(args, "quiet", False):
            import sys

            print(f"netsurgeon: warning: --parallel {args.parallel} without torchrun: training "
                  "in one process (start it with torchrun --nproc-per-node N)", file=sys.stderr)
        return device, None
    if device.type == "cuda" and args.device.strip().lower() in ("cuda", "auto"):
        device = resolve_device(f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}")
    config = distributed.ParallelConfig(
        method=args.parallel or "data", sync_period=args.sync_period,
        start_epoch=args.parallel_start_epoch, block_learning_rate=args.block_lr,
        block_momentum=args.block_momentum)
    distributed.init_process_group(device, config.timeout)
    return device, distributed.Parallel(config)
