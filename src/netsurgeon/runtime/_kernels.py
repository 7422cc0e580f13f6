"""Small torch helpers the generated code calls by name (they are put in its globals).

Each one is a plain function of tensors, so generated source stays straight-line and readable:
``v_ce = masked_sum(ce_frames(v_labels, v_z), mask)``. Frames are the flattened
(batch x time) leading axis; ``mask`` is None when every frame is real.
"""

from __future__ import annotations

import math
import struct

import torch
import torch.nn.functional as F

__all__ = [
    "straight_through", "weighted_logistic_sum",
    "masked_sum", "flat", "shift_past", "shift_future", "ce_with_softmax", "cross_entropy",
    "logistic", "class_error", "batch_norm_train", "bn_exp_avg_factor", "bn_blend_factor",
    "to_dense", "times_general", "time_reverse", "shift_frames", "gmm_log_likelihood",
    "where_frames", "mask_frames", "packed_index", "gather_packed", "scatter_packed",
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
        if _one_row(z) and labels.layout == torch.strided and labels.numel() == z.numel():
            # the labels (no gradient) take z's shape: no view of z in the autograd graph
            labels = labels if labels.shape == z.shape else labels.reshape(z.shape)
            return (labels * torch.log_softmax(z, dim=-1)).sum().neg().reshape(1)
        return (flat(labels) * torch.log_softmax(flat(z), dim=1)).sum().neg().reshape(1)
    return masked_sum(ce_with_softmax(labels, z), mask)


def _one_row(x: torch.Tensor) -> bool:
    """Whether each sample of a (N, *sample) frame value is one row, (1, ..., 1, C): its
    softmax over the last axis is the softmax over the whole sample."""
    shape = x.shape
    return x.dim() >= 2 and all(d == 1 for d in shape[1:-1])


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


def time_reverse(x: torch.Tensor, batch: int, steps: int, lengths: torch.Tensor) -> torch.Tensor:
    """TimeReverse: y[b, t] = x[b, length[b] - 1 - t] for t < length[b]; padding frames 0."""
    seq = x.reshape((batch, steps) + tuple(x.shape[1:]))
    src = lengths.unsqueeze(1) - 1 - torch.arange(steps, device=x.device).unsqueeze(0)
    ok = (src >= 0).reshape((batch, steps) + (1,) * (x.dim() - 1))
    index = src.clamp(0, max(steps - 1, 0)).reshape((batch, steps) + (1,) * (x.dim() - 1))
    out = torch.gather(seq, 1, index.expand(seq.shape))
    return torch.where(ok, out, torch.zeros((), dtype=x.dtype, device=x.device)).reshape(x.shape)


def shift_frames(x: torch.Tensor, batch: int, steps: int, offset: int, boundary: torch.Tensor,
                 boundary_dynamic: bool, duplicate: bool, lengths: torch.Tensor) -> torch.Tensor:
    """Shift: y[b, t] = x[b, t + offset] inside sequence b; outside, the edge frame
    (``duplicate``) or ``boundary`` (that frame of it when it has a frame axis)."""
    sample = tuple(x.shape[1:])
    seq = x.reshape((batch, steps) + sample)
    src = torch.arange(steps, device=x.device).unsqueeze(0) + offset
    last = (lengths.unsqueeze(1) - 1).clamp(min=0)
    ok = ((src >= 0) & (src <= last)).reshape((batch, steps) + (1,) * len(sample))
    index = torch.minimum(src.clamp(min=0), last).reshape((batch, steps) + (1,) * len(sample))
    out = torch.gather(seq, 1, index.expand(seq.shape))
    if duplicate:
        return out.reshape(x.shape)
    fill = boundary.reshape((batch, steps) + tuple(boundary.shape[1:])) if boundary_dynamic \
        else boundary
    return torch.where(ok, out, fill.to(x.dtype)).reshape(x.shape)


def gmm_log_likelihood(prior: torch.Tensor, means: torch.Tensor, log_std: torch.Tensor,
                       x: torch.Tensor, dynamic: tuple[bool, bool, bool, bool], k: int,
                       d: int) -> torch.Tensor:
    """GMMLogLikelihood per frame: log Σ_k softmax(prior)_k N(x; μ_k, diag σ_k²), shape
    (frames, 1) (or (1,) when no input has a frame axis)."""
    def view(t: torch.Tensor, dyn: bool, *tail: int) -> torch.Tensor:
        return t.reshape((-1 if dyn else 1,) + tail)

    log_prior = torch.log_softmax(view(prior, dynamic[0], k), -1)
    mu, ls = view(means, dynamic[1], k, d), view(log_std, dynamic[2], k, d)
    z = (view(x, dynamic[3], 1, d) - mu) * torch.exp(-ls)
    comp = log_prior - 0.5 * (z * z).sum(-1) - ls.sum(-1) - 0.5 * d * math.log(2 * math.pi)
    out = torch.logsumexp(comp, -1)
    return out.reshape(-1, 1) if any(dynamic) else out.reshape(1)


def where_frames(cond: torch.Tensor, batch: int, steps: int,
                 lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where: per sequence, the time indices t with cond[t] != 0, in order, as a new axis in
    the same (batch, time) grid (frames at the front). Returns (indices (frames, 1), new
    lengths (batch,), new frame mask (frames,)); padding indices are 0."""
    t = torch.arange(steps, device=cond.device).unsqueeze(0)
    hit = (cond.reshape(batch, steps) != 0) & (t < lengths.unsqueeze(1))
    new_lengths = hit.sum(1)
    order = torch.where(hit, t, t + steps).argsort(1)
    real = t < new_lengths.unsqueeze(1)
    index = torch.where(real, order, torch.zeros_like(order)).to(cond.dtype)
    return index.reshape(-1, 1), new_lengths, real.reshape(-1).to(cond.dtype)


def mask_frames(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """x with its padding frames (mask 0) zeroed."""
    return x * mask.to(x.dtype).reshape((-1,) + (1,) * (x.dim() - 1))


def packed_index(index: torch.Tensor, batch: int, steps: int) -> torch.Tensor:
    """PackedIndex: a time index of sequence b -> its row b·T + t in the (batch x time) frames."""
    rows = index.reshape(batch, steps) + (torch.arange(batch, device=index.device) * steps
                                          ).unsqueeze(1).to(index.dtype)
    return rows.reshape(-1, 1)


def gather_packed(index: torch.Tensor, source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """GatherPacked: out[f] = source[index[f]] (rows of the frames), 0 on padding frames."""
    rows = index.reshape(-1).round().long().clamp(0, source.shape[0] - 1)
    out = source.index_select(0, rows)
    return out * mask.to(out.dtype).reshape((-1,) + (1,) * (out.dim() - 1))


def scatter_packed(layout: torch.Tensor, index: torch.Tensor, source: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
    """ScatterPacked: zeros on layout's frames, then out[index[f]] += source[f] for the real
    frames f of source."""
    rows = index.reshape(-1).round().long().clamp(0, layout.shape[0] - 1)
    real = source * mask.to(source.dtype).reshape((-1,) + (1,) * (source.dim() - 1))
    out = torch.zeros((layout.shape[0],) + tuple(source.shape[1:]), dtype=source.dtype,
                      device=source.device)
    return out.index_add(0, rows, real)


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
    frames = float(x.shape[0]) if mask is None else float(mask.sum())
    factor = bn_exp_avg_factor(norm_time_constant, frames)
    blend = bn_blend_factor(blend_time_constant, frames)
    if mask is None and blend == 0:
        fused = _fused_batch_norm(x, scale, bias, run_mean, run_var, reduce_dims, eps, factor)
        if fused is not None:
            return fused
    if mask is None:
        mean = x.mean(reduce_dims, keepdim=True)
        var = x.var(reduce_dims, keepdim=True, unbiased=False)
    else:
        m = mask.to(x.dtype).reshape((-1,) + (1,) * (x.dim() - 1))
        per_frame = math.prod(x.shape[d] for d in reduce_dims if d != 0)
        count = max(frames * per_frame, 1.0)
        mean = (x * m).sum(reduce_dims, keepdim=True) / count
        var = ((x - mean).square() * m).sum(reduce_dims, keepdim=True) / count
    if factor > 0:
        with torch.no_grad():
            run_mean.mul_(1 - factor).add_(mean.detach().reshape(run_mean.shape) * factor)
            run_var.mul_(1 - factor).add_(var.detach().reshape(run_var.shape) * factor)
    if blend > 0:
        rm = run_mean.detach().clone().reshape(stat_shape)
        rv = run_var.detach().clone().reshape(stat_shape)
        mean = rm if blend == 1 else blend * rm + (1 - blend) * mean
        var = rv if blend == 1 else blend * rv + (1 - blend) * var
    y = (x - mean) * torch.rsqrt(var + eps)
    return y * scale.reshape(stat_shape) + bias.reshape(stat_shape)


def _fused_batch_norm(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor,
                      run_mean: torch.Tensor, run_var: torch.Tensor, reduce_dims: tuple[int, ...],
                      eps: float, factor: float) -> torch.Tensor | None:
    """:func:`batch_norm_train` through torch's fused kernel, for all-real frames and no
    blending: the statistics are over the leading axis and the trailing ``reduce_dims`` (None
    for any other layout). The running statistics get CNTK's update with ``factor`` (biased
    variance) from the mean and inverse std dev the kernel returns; 4-5x faster than the
    separate mean/var/elementwise ops with their backward."""
    kept = [d for d in range(x.dim()) if d not in reduce_dims]
    if 0 not in reduce_dims or kept != list(range(1, len(kept) + 1)) or not kept:
        return None
    channels = math.prod(x.shape[d] for d in kept)
    x3 = x.reshape(x.shape[0], channels, -1)
    y, mean, invstd = torch.native_batch_norm(x3, scale.reshape(channels),
                                              bias.reshape(channels), None, None, True, 0.0, eps)
    if factor > 0:
        with torch.no_grad():
            var = (invstd.double().pow(-2) - eps).clamp_min(0).to(run_var.dtype)
            run_mean.mul_(1 - factor).add_(mean.reshape(run_mean.shape) * factor)
            run_var.mul_(1 - factor).add_(var.reshape(run_var.shape) * factor)
    return y.reshape(x.shape)


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


def _label_tokens(ids: list[int], squash: bool, ignore: tuple[int, ...]) -> list[int]:
    """CNTK's ExtractSampleSequence: drop the tokens in ``ignore``; with ``squash`` a token
    equal to the one before it (ignored tokens included) is dropped too, so "1 - 1" with
    "-" ignored keeps both 1s (checked against CNTK 2.7)."""
    out = [t for t in ids[:1] if t not in ignore]
    for prev, cur in zip(ids, ids[1:]):
        if (not squash or cur != prev) and cur not in ignore:
            out.append(cur)
    return out


def _f32(x: float) -> float:
    """``x`` rounded to float32 (CNTK's edit-distance grid is a float matrix)."""
    return struct.unpack("f", struct.pack("f", x))[0]


def _edit_count(hyp: list[int], ref: list[int], sub: float, dele: float, ins: float) -> int:
    """Number of substitutions + deletions + insertions on the cheapest path from ``hyp`` to
    ``ref`` under the penalties (CNTK's dynamic programme, float32 costs: at equal cost a
    substitution wins, then a deletion if strictly cheaper than the insertion)."""
    sub, dele, ins = _f32(sub), _f32(dele), _f32(ins)
    # multiples of 1/256 summing below 2**15 are exact in float32: skip the rounding then
    exact = all(math.isfinite(p) and p >= 0 and p * 256 == int(p * 256)
                for p in (sub, dele, ins)) and \
        (len(hyp) + len(ref)) * max(sub, dele, ins) < 2 ** 15
    rnd = float if exact else _f32
    cost = [rnd(j * ins) for j in range(len(ref) + 1)]
    count = list(range(len(ref) + 1))
    for i, h in enumerate(hyp, 1):
        prev_cost, prev_count = cost, count
        cost, count = [rnd(i * dele)], [i]
        for j, r in enumerate(ref, 1):
            if h == r:
                cost.append(prev_cost[j - 1])
                count.append(prev_count[j - 1])
                continue
            d = rnd(prev_cost[j] + dele)
            s = rnd(prev_cost[j - 1] + sub)
            n = rnd(cost[j - 1] + ins)
            if s <= d and s <= n:
                cost.append(s)
                count.append(prev_count[j - 1] + 1)
            elif d < n:
                cost.append(d)
                count.append(prev_count[j] + 1)
            else:
                cost.append(n)
                count.append(count[j - 1] + 1)
    return count[-1]


def edit_distance_error(a: torch.Tensor, b: torch.Tensor, lengths: torch.Tensor, batch: int,
                        steps: int, sub: float, dele: float, ins: float, squash: bool,
                        ignore: tuple[int, ...]) -> torch.Tensor:
    """CNTK's EditDistanceError of a minibatch, shaped (1,): per sequence, the arg-max label
    sequences of ``a`` (the hypothesis) and ``b`` (the reference), squashed/filtered, their
    edit count (penalties only choose the path); the total count times the number of real
    frames divided by the total reference length (so that the per-frame average CNTK reports
    is errors per reference token). 0/0 is NaN. Checked against CNTK 2.7."""
    ia = flat(a).argmax(1).reshape(batch, steps).tolist()
    ib = flat(b).argmax(1).reshape(batch, steps).tolist()
    errors = frames = reference = 0
    for s, n in enumerate(lengths.tolist()):
        if n <= 0:
            continue
        frames += n
        hyp = _label_tokens(ia[s][:n], squash, ignore)
        ref = _label_tokens(ib[s][:n], squash, ignore)
        reference += len(ref)
        errors += _edit_count(hyp, ref, sub, dele, ins)
    value = torch.tensor([float(errors)], dtype=a.dtype) * frames
    return (value / reference if reference else value / 0.0).to(a.device)


def class_based_ce_sum(labels: torch.Tensor, h: torch.Tensor, w: torch.Tensor,
                       class_logits: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """CNTK's ClassBasedCrossEntropyWithSoftmax, summed over the real frames, shaped (1,).

    A label frame is (word id, class id, first word of the class, end of the class); the
    value is −Σ [log softmax(class_logits)[class] + log softmax(W[first:end] · h)[word −
    first]], the word softmax over the class's rows of ``w`` (vocabulary, hidden) only."""
    lab, hid, cls = flat(labels).detach(), flat(h), flat(class_logits)
    if mask is not None:
        keep = mask.nonzero().reshape(-1)
        lab, hid, cls = lab[keep], hid[keep], cls[keep]
    word, cid, lo, hi = lab.to(torch.int64).unbind(1)
    vocab = w.shape[0]
    w = w.reshape(vocab, hid.shape[1])
    if lab.shape[0] and not (bool(((lo <= word) & (word < hi) & (hi <= vocab)).all())
                             and bool(((cid >= 0) & (cid < cls.shape[1])).all())):
        raise ValueError("ClassBasedCrossEntropyWithSoftmax: a label holds a word outside "
                         f"its class range, a range beyond the {vocab} words or a class "
                         f"beyond the {cls.shape[1]} classes")
    total = -torch.log_softmax(cls, 1).gather(1, cid.unsqueeze(1)).sum()
    ranges, which = torch.unique(torch.stack([lo, hi], 1), dim=0, return_inverse=True)
    for k, (first, end) in enumerate(ranges.tolist()):
        rows = (which == k).nonzero().reshape(-1)
        z = torch.log_softmax(hid[rows] @ w[first:end].T, 1)
        total = total - z.gather(1, (word[rows] - first).unsqueeze(1)).sum()
    return total.reshape(1)


def rank_groups(gains: torch.Tensor, scores: torch.Tensor, query: torch.Tensor,
                mask: torch.Tensor | None) -> list:
    """The query groups of a ranking criterion (CNTK's LambdaRank/NDCG1Eval): runs of equal
    query ids among the real frames, in frame order; per group (gains, scores, rank by score)
    as float64 lists. A url's rank sorts by score descending, ties by gain ascending (CNTK's
    Url::operator<), then by position."""
    g, s, q = (flat(t)[:, 0].detach().double() for t in (gains, scores, query))
    if mask is not None:
        keep = mask.reshape(-1).bool()
        g, s, q = g[keep], s[keep], q[keep]
    g, s, q = g.tolist(), s.tolist(), [int(v) for v in q.tolist()]
    out, start = [], 0
    for i in range(1, len(q) + 1):
        if i == len(q) or q[i] != q[i - 1]:
            gg, ss = g[start:i], s[start:i]
            order = sorted(range(len(gg)), key=lambda k: (-ss[k], gg[k], k))
            rank = [0] * len(gg)
            for r, k in enumerate(order):
                rank[k] = r
            out.append((start, gg, ss, rank))
            start = i
    return out


def ndcg_at_1(gains: torch.Tensor, scores: torch.Tensor, query: torch.Tensor,
              mask: torch.Tensor | None) -> torch.Tensor:
    """CNTK's NDCG1Eval of a minibatch: 100·N·mean over query groups of gain(top-scored url) /
    gain(first url of the group) (CNTK takes the urls as pre-sorted by gain, so the first is
    the ideal; 0 where that gain is 0), N the real frames. Checked against CNTK 2.7."""
    groups = rank_groups(gains, scores, query, mask)
    total = 0.0
    for _, g, _, rank in groups:
        if g[0] > 0:
            total += g[rank.index(0)] / g[0]
    n = sum(len(g) for _, g, _, _ in groups)
    value = 100.0 * n * total / len(groups) if groups else 0.0
    return torch.tensor([value], dtype=scores.dtype, device=scores.device)


def lambda_rank(gains: torch.Tensor, scores: torch.Tensor, query: torch.Tensor,
                mask: torch.Tensor | None) -> torch.Tensor:
    """CNTK's LambdaRank of a minibatch, shaped (1,).

    Value (what CNTK 2.7 outputs; a report, not the loss that trains): 100·N·mean over query
    groups of 1 − DCG/IDCG, DCG = Σ gain/ln(2 + rank by score), IDCG the same sum in the
    given order (CNTK takes the urls as pre-sorted by gain descending; 1 where IDCG is 0).
    Gradient w.r.t. the scores: CNTK's lambdas (σ = 1) — for each pair i < j of a group with
    gain_i > gain_j, λ = |ΔDCG_ij| / IDCG / (1 + exp(s_i − s_j)), ΔDCG_ij = (gain_i − gain_j)·
    (1/ln(2+rank_i) − 1/ln(2+rank_j)); score i gets −λ, score j +λ (times the incoming
    gradient). Gains and query ids get no gradient."""
    groups = rank_groups(gains, scores, query, mask)
    frames = scores.shape[0]
    lam = [0.0] * frames
    keep = list(range(frames)) if mask is None else \
        [i for i, m in enumerate(mask.reshape(-1).tolist()) if m]
    total = 0.0
    for start, g, s, rank in groups:
        disc = [1.0 / math.log(2.0 + r) for r in range(len(g))]
        ideal = sum(a * d for a, d in zip(g, disc))
        dcg = sum(a * disc[r] for a, r in zip(g, rank))
        total += 1.0 - dcg / ideal if ideal > 0 else 1.0
        if ideal <= 0:
            continue
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                if g[i] > g[j]:
                    delta = abs((g[i] - g[j]) * (disc[rank[i]] - disc[rank[j]])) / ideal
                    x = s[i] - s[j]
                    sig = 1.0 / (1.0 + math.exp(min(x, 700.0)))
                    lam[keep[start + i]] -= delta * sig
                    lam[keep[start + j]] += delta * sig
    n = len(keep)
    value = 100.0 * n * total / len(groups) if groups else 0.0
    lams = torch.tensor(lam, dtype=scores.dtype, device=scores.device)
    surrogate = (flat(scores)[:, 0] * lams).sum()
    return (surrogate - surrogate.detach() + value).reshape(1)


def max_unpool(z: torch.Tensor, x: torch.Tensor, kernel: tuple[int, ...],
               strides: tuple[int, ...], pads: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """CNTK's MaxUnpooling of images: ``z`` (N, C, *pooled) holds one value per window of
    the max pooling of ``x`` (N, C, *spatial) with ``kernel``/``strides``/``pads`` ((low, high)
    per spatial axis); each value goes to the position of its window's max in ``x`` (the
    first in memory order on ties), zeros elsewhere. Where windows overlap and pick the same
    position, the last window (in memory order) wins, as in CNTK 2.7 (assignment, not a sum)."""
    n, c = max(z.shape[0], x.shape[0]), x.shape[1]
    z, x = z.expand(n, *z.shape[1:]), x.expand(n, *x.shape[1:])
    pooled, size = tuple(z.shape[2:]), tuple(x.shape[2:])
    flat: list[int] = []
    for (lo, hi), k, s, d, o in reversed(list(zip(pads, kernel, strides, size, pooled))):
        flat += [lo, max(hi, (o - 1) * s + k - d - lo)]  # a ceil_out_dim window past the end
    xp = F.pad(x, flat, value=-math.inf)
    padded = tuple(xp.shape[2:])
    at = torch.arange(math.prod(padded), device=x.device).reshape(padded)
    win = xp
    for a, (k, s) in enumerate(zip(kernel, strides)):
        win, at = win.unfold(2 + a, k, s), at.unfold(a, k, s)
    first = tuple(slice(0, o) for o in pooled)
    windows = math.prod(pooled)
    win = win[(slice(None), slice(None)) + first].reshape(n, c, windows, -1)
    at = at[first].reshape(windows, -1).expand(n, c, windows, -1)
    best = at.gather(-1, win.argmax(-1, keepdim=True)).squeeze(-1)
    order = torch.arange(windows, device=x.device).expand(n, c, windows)
    owner = torch.full((n, c, math.prod(padded)), -1, dtype=torch.int64, device=x.device)
    owner = owner.scatter_reduce(-1, best, order, "amax")
    out = z.reshape(n, c, windows).gather(-1, owner.clamp(min=0)).masked_fill(owner < 0, 0)
    crop = tuple(slice(lo, lo + d) for (lo, _), d in zip(pads, size))
    return out.reshape(n, c, *padded)[(slice(None), slice(None)) + crop]


def range_max(t: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Maxima of ``t`` (*B, L, *rest) over the ranges [lo, hi) of its axis L (``lo``/``hi``
    integer tensors (*B, M), 0 <= lo < hi <= L): a sparse table of maxima over spans of
    2^k, two look-ups per range. Returns (*B, M, *rest); an empty range gives garbage (mask
    it)."""
    lead, size = t.shape[:lo.dim() - 1], t.shape[lo.dim() - 1]
    t = t.reshape(math.prod(lead), size, *t.shape[lo.dim():])
    lo, hi = lo.reshape(t.shape[0], -1), hi.reshape(t.shape[0], -1)
    levels = [t]
    while 2 ** len(levels) <= size:
        prev, span = levels[-1], 2 ** (len(levels) - 1)
        levels.append(torch.cat([torch.maximum(prev[:, :-span], prev[:, span:]),
                                 prev[:, size - span:]], 1))  # the tail: never read
    table = torch.stack(levels, 1)  # (nb, K, L, *rest)
    length = (hi - lo).clamp(1, size)
    k = torch.floor(torch.log2(length.to(torch.float64))).to(torch.int64)
    k = (k - (2 ** k > length).to(torch.int64)).clamp(0, len(levels) - 1)
    a = lo.clamp(0, size - 1)
    b = (hi - 2 ** k).clamp(0, size - 1)
    nb = torch.arange(t.shape[0], device=t.device)[:, None]
    out = torch.maximum(table[nb, k, a], table[nb, k, b])
    return out.reshape(*lead, out.shape[1], *out.shape[2:])


def roi_bins(rois: torch.Tensor, scale: float, bins: int, size: int, axis: int,
             dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """[start, end) per ROI and output bin along one feature-map axis (CNTK 2.7's
    MaxROIPoolingForward, after Fast R-CNN): ROI = (x1, y1, x2, y2), absolute and inclusive,
    each rounded (half away from zero) after ``scale``; ``axis`` 0 takes x, 1 takes y."""
    corners = rois[..., axis::2].to(torch.float64) * scale
    corners = (torch.sign(corners) * torch.floor(corners.abs() + 0.5)).to(torch.int64)
    first, last = corners[..., 0:1], corners[..., 1:2]
    width = ((last - first + 1).clamp(min=1)).to(dtype) / bins  # ElemType arithmetic
    step = torch.arange(bins, device=rois.device, dtype=dtype)
    start = torch.floor(step * width).to(torch.int64) + first
    end = torch.ceil((step + 1) * width).to(torch.int64) + first
    return start.clamp(0, size), end.clamp(0, size)


def roi_pool(x: torch.Tensor, rois: torch.Tensor, out: tuple[int, int],
             scale: float) -> torch.Tensor:
    """CNTK's max ROIPooling: ``x`` (N, C, H, W) feature maps, ``rois`` (N, R, 4) regions
    (x1, y1, x2, y2) in input-image pixels; (N, R, C, out_h, out_w), the max over each bin of
    each region (0 for an empty bin, e.g. a region beyond the map)."""
    n = max(x.shape[0], rois.shape[0])
    x, rois = x.expand(n, *x.shape[1:]), rois.expand(n, *rois.shape[1:])
    (ph, pw), (h, w), r = out, x.shape[2:], rois.shape[1]
    ws, we = roi_bins(rois, scale, pw, w, 0, x.dtype)  # (N, R, pw)
    hs, he = roi_bins(rois, scale, ph, h, 1, x.dtype)  # (N, R, ph)
    cols = range_max(x.permute(0, 3, 1, 2), ws.reshape(n, -1), we.reshape(n, -1))
    cols = cols.reshape(n, r, pw, *cols.shape[2:]).permute(0, 1, 4, 2, 3)  # (N, R, H, pw, C)
    y = range_max(cols, hs, he).permute(0, 1, 4, 2, 3)  # (N, R, C, ph, pw)
    empty = (he <= hs)[:, :, None, :, None] | (we <= ws)[:, :, None, None, :]
    return y.masked_fill(empty, 0)
