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


def _rates(text: str) -> list[float]:
    """``0.01`` or ``0.01,0.005`` or CNTK's ``0.01*2:0.005`` (rate*epochs:...)."""
    out: list[float] = []
    for part in text.replace(",", ":").split(":"):
        rate, _, count = part.partition("*")
        try:
            out += [float(rate)] * (int(count) if count else 1)
        except ValueError:
            raise NetsurgeonError(f"--lr: cannot read '{text}'; use 0.01, 0.01,0.005 or "
                                  "0.01*2:0.005") from None
    return out


def configure(parser: argparse.ArgumentParser) -> None:
    """Declare the arguments of ``netsurgeon train``."""
    parser.add_argument("model", help="model file (.nsm, .dnn/.cmf) or NDL network file")
    parser.add_argument("data", help="CNTK Text Format training data")
    parser.add_argument("-o", "--out", required=True, help="where to save the trained model")
    parser.add_argument("--map", action="append", metavar="NODE=STREAM",
                        help="feed input NODE from CTF stream STREAM (default: same name)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--minibatch", type=int, default=256, help="samples per minibatch")
    parser.add_argument("--epoch-size", type=int, default=0, help="samples per epoch (0 = all)")
    parser.add_argument("--lr", default="0.01",
                        help="learning rate(s): 0.01, or per epoch 0.01,0.005 / 0.01*2:0.005")
    parser.add_argument("--lr-unit", choices=("sample", "minibatch"), default="sample",
                        help="rate per sample (CNTK learningRatesPerSample) or per minibatch")
    parser.add_argument("--optimizer", choices=("sgd", "adam", "adagrad"), default="sgd")
    parser.add_argument("--momentum", type=float, default=0.0, help="momentum per minibatch")
    parser.add_argument("--no-unit-gain", action="store_true",
                        help="classic (non unit-gain) momentum")
    parser.add_argument("--l2", type=float, default=0.0, help="L2 regularization weight")
    parser.add_argument("--clip", type=float, default=math.inf,
                        help="gradient clipping threshold per sample")
    parser.add_argument("--clip-norm", action="store_true",
                        help="clip by the gradient norm instead of element-wise")
    parser.add_argument("--dropout", type=float, default=0.0, help="dropout rate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--checkpoint", help="checkpoint file (default: OUT.ckpt)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out-format", choices=("native", "cntk"), default=None,
                        help="format of OUT (default: from its extension)")
    add_format_option(parser)


def run(args: argparse.Namespace) -> int:
    """Run ``netsurgeon train``; returns the exit status."""
    from netsurgeon.commands._model import load_model
    from netsurgeon.formats import save
    from netsurgeon.runtime import set_threads
    from netsurgeon.runtime.readers import CTFReader, streams_for
    from netsurgeon.runtime.train import TrainConfig, Trainer

    if args.threads:
        set_threads(args.threads)
    net = load_model(args.model, args.format)
    net.validate()
    checkpoint = args.checkpoint or (args.out + ".ckpt")
    config = TrainConfig(
        epochs=args.epochs, minibatch_size=args.minibatch, epoch_size=args.epoch_size,
        learning_rate=_rates(args.lr), lr_unit=args.lr_unit, momentum=args.momentum,
        unit_gain=not args.no_unit_gain, l2=args.l2, clip_threshold=args.clip,
        clip_truncation=not args.clip_norm, optimizer=args.optimizer,
        dropout_rate=args.dropout, seed=args.seed, checkpoint=checkpoint,
        progress=not args.no_progress)
    trainer = Trainer(net, config)
    if args.resume:
        trainer.load_checkpoint(checkpoint)
        print(f"resuming after epoch {trainer.epoch} from {checkpoint}")
    from netsurgeon.runtime.codegen import needed_nodes

    needed = needed_nodes(net, trainer.criteria + trainer.metrics)
    inputs = input_names(net, needed)
    specs = streams_for(net, parse_assignments(args.map, "--map"), inputs)
    history = trainer.fit(lambda: CTFReader(args.data, specs, args.minibatch))
    for h in history:
        metrics = ", ".join(f"{k} = {v:.6g}" for k, v in h["metrics"].items())
        print(f"epoch {h['epoch']}: {h['samples']} samples, loss per sample = {h['loss']:.6g}"
              + (f", {metrics}" if metrics else ""))
    save(net, args.out, args.out_format)
    print(f"saved {args.out}")
    return 0
