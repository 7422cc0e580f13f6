"""Small torch helpers the generated code calls by name (they are put in its globals).

Each one is a plain function of tensors, so generated source stays straight-line and readable:
``v_ce = masked_sum(ce_frames(v_labels, v_z), mask)``. Frames are the flattened
(batch x time) leading axis; ``mask`` is None when every frame is real.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "straight_through", "weighted_logistic_sum",
    "masked_sum", "flat", "shift_past", "shift_future", "ce_with_softmax", "cross_entropy",
    "logistic", "class_error", "batch_norm_train", "bn_exp_avg_factor", "bn_blend_factor",
    "to_dense", "times_general",
]


EPS_IN_LOG = 1e-37  # CNTK clamps arguments of log in its criteria (EPS_IN_LOG)


def straight_through(x: torch.Tensor) -> torch.Tensor:
    """CNTK's StraightThrough: +1 where x > 0, else -1; the gradient passes unchanged where
    |x| <= 1 and is 0 elsewhere (the straight-through estimator). Forward checked against
    CNTK 2.7."""
    sign = torch.where(x > 0, 1.0, -1.0).to(x.dtype)
    passing = (x.abs() <= 1).to(x.dtype)
    return sign.detach() + (x - x.detach()) * passing


def masked_sum(frames: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Sum of per-frame values over real frames, shaped (1,) as CNTK's criteria."""
    if mask is not None:
        frames = frames * mask.reshape((-1,) + (1,) * (frames.dim() - 1))
    return frames.sum().reshape(1)


def flat(x: torch.Tensor) -> torch.Tensor:
    """(N, *sample) -> (N, prod(sample)): CNTK treats a sample as one column."""
    return x if x.dim() == 2 else x.reshape(x.shape[0], -1)


def ce_with_softmax_sum(labels: torch.Tensor, z: torch.Tensor,
                        mask: torch.Tensor | None) -> torch.Tensor:
    """Σ over real frames of −Σ labels·log softmax(z), shaped (1,)."""
    if mask is None:
        return (flat(labels) * torch.log_softmax(flat(z), dim=1)).sum().neg().reshape(1)
    return masked_sum(ce_with_softmax(labels, z), mask)


def to_dense(x: torch.Tensor) -> torch.Tensor:
    return x.to_dense() if x.layout != torch.strided else x


def ce_with_softmax(labels: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Per-frame −Σ labels·log softmax(z)."""
    return -(flat(labels) * torch.log_softmax(flat(z), dim=1)).sum(1)


def cross_entropy(labels: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Per-frame −Σ labels·log p."""
    return -(flat(labels) * torch.log(flat(p).clamp_min(EPS_IN_LOG))).sum(1)


def logistic(y: torch.Tensor, p: torch.Tensor, w: torch.Tensor | None = None) -> torch.Tensor:
    """Per-frame −Σ w·[y·log p + (1−y)·log(1−p)]."""
    y, p = flat(y), flat(p)
    out = y * torch.log(p.clamp_min(EPS_IN_LOG)) \
        + (1 - y) * torch.log((1 - p).clamp_min(EPS_IN_LOG))
    if w is not None:
        out = out * (flat(w) if w.dim() > 1 else w)
    return -out.sum(1)


def weighted_logistic_sum(y: torch.Tensor, p: torch.Tensor, w: torch.Tensor,
                          mask: torch.Tensor | None, w_dynamic: bool) -> torch.Tensor:
    """CNTK's weighted Logistic of a minibatch: −Σ w·[y·log p + (1−y)·log(1−p)] over the
    real frames, divided by the mean weight (CNTK normalises the weights to average 1 over
    the minibatch; checked against CNTK 2.7)."""
    total = masked_sum(logistic(y, p, w), mask)
    if not w_dynamic:
        return total / w.mean()
    weights = flat(w)
    count = weights.shape[1] * (mask.sum() if mask is not None else weights.shape[0])
    return total * count / masked_sum(weights, mask)


def class_error(labels: torch.Tensor, z: torch.Tensor, k: int = 1) -> torch.Tensor:
    """Per-frame 1 if the label's class is not among z's top ``k``, else 0."""
    lab = flat(labels).argmax(1)
    z = flat(z)
    if k <= 1:
        wrong = z.argmax(1) != lab
    else:
        top = z.topk(min(k, z.shape[1]), dim=1).indices
        wrong = ~(top == lab.unsqueeze(1)).any(1)
    return wrong.to(z.dtype)


def shift_past(x: torch.Tensor, batch: int, steps: int, k: int, init: torch.Tensor) -> torch.Tensor:
    """PastValue over whole sequences: y[b, t] = x[b, t-k], or ``init`` for t < k."""
    seq = x.reshape((batch, steps) + tuple(x.shape[1:]))
    head = init.expand((batch, min(k, steps)) + tuple(x.shape[1:])).to(x.dtype)
    if k >= steps:
        out = head
    else:
        out = torch.cat([head, seq[:, : steps - k]], 1)
    return out.reshape(x.shape)


def shift_future(x: torch.Tensor, batch: int, steps: int, k: int, init: torch.Tensor,
                 lengths: torch.Tensor) -> torch.Tensor:
    """FutureValue: y[b, t] = x[b, t+k] while t+k < length[b], else ``init``."""
    seq = x.reshape((batch, steps) + tuple(x.shape[1:]))
    tail = init.expand((batch, min(k, steps)) + tuple(x.shape[1:])).to(x.dtype)
    out = tail if k >= steps else torch.cat([seq[:, k:], tail], 1)
    pos = torch.arange(steps, device=x.device).unsqueeze(0) + k
    ok = (pos < lengths.unsqueeze(1)).reshape((batch, steps) + (1,) * (x.dim() - 1))
    out = torch.where(ok, out, init.to(x.dtype))
    return out.reshape(x.shape)


def times_general(a: torch.Tensor, b: torch.Tensor, k: int, a_dyn: bool, b_dyn: bool,
                  out_shape: tuple[int, ...]) -> torch.Tensor:
    """CNTK Times(A, B) in numpy order for any ranks: contract B's trailing dims (size k)
    with A's leading dims; either side may carry a leading frame axis."""
    am = a.reshape((a.shape[0], k, -1) if a_dyn else (k, -1))
    bm = b.reshape((b.shape[0], -1, k) if b_dyn else (-1, k))
    out = torch.matmul(bm, am)
    lead = (out.shape[0],) if (a_dyn or b_dyn) else ()
    return out.reshape(lead + tuple(out_shape))


def bn_exp_avg_factor(time_constant: float, frames: float) -> float:
    """Weight of the minibatch in the running-statistics update (CNTK's expAvgFactor):
    0 = replace with the minibatch, inf = frozen, else 1 − exp(−frames / time constant)."""
    if math.isinf(time_constant):
        return 0.0
    if time_constant == 0:
        return 1.0
    return 1.0 - math.exp(-frames / time_constant)


def bn_blend_factor(time_constant: float, frames: float) -> float:
    """Weight of the running statistics in the statistics used to normalize (CNTK's
    blendFactor): 0 = minibatch only, inf = running only, else tc / (tc + frames)."""
    if math.isinf(time_constant):
        return 1.0
    if time_constant == 0:
        return 0.0
    return time_constant / (time_constant + frames)


def batch_norm_train(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor,
                     run_mean: torch.Tensor, run_var: torch.Tensor, stat_shape: tuple[int, ...],
                     reduce_dims: tuple[int, ...], eps: float, norm_time_constant: float,
                     blend_time_constant: float, mask: torch.Tensor | None) -> torch.Tensor:
    """Training-mode batch normalization as CNTK's.

    The minibatch mean and (biased) variance are taken over the real frames only (``mask``:
    1 per real frame of the leading frame axis, None when all are real), so padding never
    changes them. The running statistics are updated in place with
    :func:`bn_exp_avg_factor` of the number of real frames; the statistics used are the
    minibatch ones blended with the (updated) running ones by :func:`bn_blend_factor`.
    """
    if mask is None:
        frames = float(x.shape[0])
        mean = x.mean(reduce_dims, keepdim=True)
        var = x.var(reduce_dims, keepdim=True, unbiased=False)
    else:
        m = mask.to(x.dtype).reshape((-1,) + (1,) * (x.dim() - 1))
        frames = float(mask.sum())
        per_frame = math.prod(x.shape[d] for d in reduce_dims if d != 0)
        count = max(frames * per_frame, 1.0)
        mean = (x * m).sum(reduce_dims, keepdim=True) / count
        var = ((x - mean).square() * m).sum(reduce_dims, keepdim=True) / count
    factor = bn_exp_avg_factor(norm_time_constant, frames)
    if factor > 0:
        with torch.no_grad():
            run_mean.mul_(1 - factor).add_(mean.detach().reshape(run_mean.shape) * factor)
            run_var.mul_(1 - factor).add_(var.detach().reshape(run_var.shape) * factor)
    blend = bn_blend_factor(blend_time_constant, frames)
    if blend > 0:
        rm = run_mean.detach().clone().reshape(stat_shape)
        rv = run_var.detach().clone().reshape(stat_shape)
        mean = rm if blend == 1 else blend * rm + (1 - blend) * mean
        var = rv if blend == 1 else blend * rv + (1 - blend) * var
    y = (x - mean) * torch.rsqrt(var + eps)
    return y * scale.reshape(stat_shape) + bias.reshape(stat_shape)


def future_step(values: list, t: int, k: int, steps: int, lengths: torch.Tensor,
                init: torch.Tensor) -> torch.Tensor:
    """FutureValue inside a backward loop: values[t+k] where t+k < length[b], else ``init``."""
    if t + k >= steps:
        return init
    ok = (t + k < lengths).reshape((-1,) + (1,) * (init.dim() - 1))
    return torch.where(ok, values[t + k], init)


def cos_with_negatives(a: torch.Tensor, b: torch.Tensor, shift: int, neg: int) -> torch.Tensor:
    """CNTK CosDistanceWithNegativeSamples: cosine of each frame of ``a`` with the frame of ``b``
    and with ``neg`` copies of ``b`` shifted by shift, shift+1, ... frames (cyclically)."""
    a, b = flat(a), flat(b)
    outs = []
    for i in range(neg + 1):
        other = b if i == 0 else torch.roll(b, shifts=-(shift + i - 1), dims=0)
        outs.append(F.cosine_similarity(a, other, dim=1, eps=1e-12))
    return torch.stack(outs, 1)


def fit_spatial(x: torch.Tensor, start: tuple[int, ...], size: tuple[int, ...]) -> torch.Tensor:
    """Crop (and zero-pad at the end where short) the trailing spatial axes of images x:
    axis i keeps [start[i], start[i] + size[i]) (a transposed convolution's padding)."""
    nd = len(start)
    for i, (lo, n) in enumerate(zip(start, size)):
        dim = x.dim() - nd + i
        have = x.shape[dim] - lo
        x = x.narrow(dim, lo, min(n, have))
        if have < n:
            pad = [0, 0] * (x.dim() - dim - 1) + [0, n - have]
            x = F.pad(x, pad)
    return x
