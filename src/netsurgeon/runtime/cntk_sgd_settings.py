"""The keys of CNTK's ``SGD=[...]`` block (SGDParams in SGD.cpp) and its ``AutoAdjust=[...]``
block, with CNTK's defaults, typed conversion and validation (no torch here).

Values come from a lookup ``get(key) -> str | None`` (the caller walks the parent blocks and
resolves ``$var$``). AutoAdjust keys are asked for as ``"AutoAdjust.<key>"``, and
``get("ParallelTrain")`` is non-None when that block exists. Learning rates and momenta are
CNTK ``floatargvector`` s: rounded to float32 when read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from netsurgeon.errors import NetsurgeonError

__all__ = ["SGDSettings", "AutoAdjust", "parse_vector", "SIZE_MAX"]

SIZE_MAX = 2 ** 64 - 1
Lookup = Callable[[str], "str | None"]

_TRUE = {"t", "true", "1", "yes"}
_FALSE = {"f", "false", "0", "no"}
_GRAD_TYPES = {"none": "none", "normal": "none", "simple": "none", "adagrad": "adagrad",
               "rmsprop": "rmsprop", "fsadagrad": "fsadagrad", "adam": "adam"}
_LR_SEARCH = {"none": "none", "false": "none", "searchbeforeepoch": "search_before_epoch",
              "beforeepoch": "search_before_epoch", "before": "search_before_epoch",
              "adjustafterepoch": "adjust_after_epoch", "afterepoch": "adjust_after_epoch",
              "after": "adjust_after_epoch"}


def f32(x: float) -> float:
    """``x`` rounded to float32 (and back to a Python float)."""
    return float(np.float32(x))


class _Reader:
    """Typed access to one block's keys, errors naming ``<where>.<key>``."""

    def __init__(self, get: Lookup, where: str, prefix: str = "") -> None:
        self.get, self.where, self.prefix = get, where, prefix

    def error(self, key: str, why: str) -> NetsurgeonError:
        return NetsurgeonError(f"{self.where}.{self.prefix}{key}: {why}")

    def raw(self, key: str) -> str | None:
        v = self.get(self.prefix + key)
        return None if v is None else str(v).strip().strip('"').strip()

    def has(self, key: str) -> bool:
        return self.raw(key) is not None

    def text(self, key: str, default: str) -> str:
        v = self.raw(key)
        return default if v is None else v

    def boolean(self, key: str, default: bool) -> bool:
        v = self.raw(key)
        if v is None:
            return default
        if v.lower() in _TRUE:
            return True
        if v.lower() in _FALSE:
            return False
        raise self.error(key, f"{v!r} is not a boolean (use true or false)")

    def number(self, key: str, default: float, text: str | None = None) -> float:
        v = self.raw(key) if text is None else text
        if v is None:
            return default
        try:
            return float(v)
        except ValueError:
            raise self.error(key, f"{v!r} is not a number") from None

    def integer(self, key: str, default: int, text: str | None = None) -> int:
        v = self.raw(key) if text is None else text
        if v is None:
            return default
        try:
            return int(v)
        except ValueError:
            try:
                x = float(v)
            except ValueError:
                x = math.nan
            if math.isfinite(x) and x == int(x):
                return int(x)
            raise self.error(key, f"{v!r} is not an integer") from None

    def vector(self, key: str, kind: str) -> list | None:
        v = self.raw(key)
        if v is None:
            return None
        try:
            items = parse_vector(v)
        except ValueError as exc:
            raise self.error(key, str(exc)) from None
        if kind == "str":
            return items
        if kind == "int":
            return [self.integer(key, 0, x) for x in items]
        out = [self.number(key, 0.0, x) for x in items]
        return [f32(x) for x in out] if kind == "float" else out


def parse_vector(text: str) -> list[str]:
    """CNTK's argvector syntax: ``a:b*n:c`` (``*n`` repeats an element n times)."""
    text = text.strip()
    if text.startswith("(") and text.endswith(")"):
        text = text[1:-1]
    out: list[str] = []
    for part in text.split(":"):
        part = part.strip()
        if not part:
            raise ValueError(f"{text!r}: an empty element")
        if "*" in part:
            value, _, count = part.rpartition("*")
            try:
                n = int(count)
            except ValueError:
                raise ValueError(f"{part!r}: the repeat count after '*' is not an integer") \
                    from None
            if n < 1:
                raise ValueError(f"{part!r}: the repeat count must be 1 or more")
            out.extend([value.strip()] * n)
        else:
            out.append(part)
    return out


def _at(values: list, epoch: int):
    """Per-epoch vector element: the last one repeats."""
    return values[min(epoch, len(values) - 1)]


@dataclass
class AutoAdjust:
    """``SGD.AutoAdjust=[...]`` (spec §5.5), CNTK's defaults."""

    auto_adjust_lr: str = "none"  # none | search_before_epoch | adjust_after_epoch
    reduce_learn_rate_if_improve_less_than: float = 0.0
    learn_rate_decrease_factor: float = 0.618
    increase_learn_rate_if_improve_more_than: float = math.inf
    learn_rate_increase_factor: float = 1.382
    continue_reduce: bool = False
    learn_rate_adjust_interval: int = 1
    load_best_model: bool = True
    use_cv_set_control_lr_if_cv_exists: bool = True
    use_eval_criterion_control_lr: bool = False
    num_prev_learn_rates: int = 5
    num_best_search_epoch: int = 1
    num_samples_4_search: int | None = None  # None: minibatchSize[0]·500
    auto_adjust_minibatch: bool = False
    minibatch_size_tuning_frequency: int = 1
    minibatch_size_tuning_max: int = 1048576
    minibatch_search_criterion_error_margin: int = 1

    @classmethod
    def from_lookup(cls, get: Lookup, where: str = "SGD") -> AutoAdjust:
        r = _Reader(get, where, "AutoAdjust.")
        kind = r.text("autoAdjustLR", "None")
        if kind.lower() not in _LR_SEARCH:
            raise r.error("autoAdjustLR", f"{kind!r}: use None, SearchBeforeEpoch or "
                                          "AdjustAfterEpoch")
        a = cls(auto_adjust_lr=_LR_SEARCH[kind.lower()])
        a.reduce_learn_rate_if_improve_less_than = r.number(
            "reduceLearnRateIfImproveLessThan", 0.0)
        a.learn_rate_decrease_factor = r.number("learnRateDecreaseFactor", 0.618)
        a.increase_learn_rate_if_improve_more_than = r.number(
            "increaseLearnRateIfImproveMoreThan", math.inf)
        a.learn_rate_increase_factor = r.number("learnRateIncreaseFactor", 1.382)
        a.continue_reduce = r.boolean("continueReduce", False)
        a.learn_rate_adjust_interval = max(1, r.integer("learnRateAdjustInterval", 1))
        a.load_best_model = r.boolean("loadBestModel", True)
        a.use_cv_set_control_lr_if_cv_exists = r.boolean("UseCVSetControlLRIfCVExists", True)
        a.use_eval_criterion_control_lr = r.boolean("UseEvalCriterionControlLR", False)
        a.num_prev_learn_rates = r.integer("numPrevLearnRates", 5)
        a.num_best_search_epoch = r.integer("numBestSearchEpoch", 1)
        if r.has("numSamples4Search"):
            a.num_samples_4_search = r.integer("numSamples4Search", 0)
        elif r.has("numMiniBatch4LRSearch"):
            a.num_samples_4_search = -r.integer("numMiniBatch4LRSearch", 0)  # × minibatch
        a.auto_adjust_minibatch = r.boolean("autoAdjustMinibatch", False)
        a.minibatch_size_tuning_frequency = r.integer("minibatchSizeTuningFrequency", 1)
        a.minibatch_size_tuning_max = r.integer("minibatchSizeTuningMax", 1048576)
        a.minibatch_search_criterion_error_margin = r.integer(
            "minibatchSearchCriterionErrorMargin", 1)
        if a.learn_rate_decrease_factor > 1:
            raise r.error("learnRateDecreaseFactor", f"{a.learn_rate_decrease_factor:g}: must "
                                                     "be <= 1")
        if a.learn_rate_increase_factor < 1:
            raise r.error("learnRateIncreaseFactor", f"{a.learn_rate_increase_factor:g}: must "
                                                     "be >= 1")
        return a


@dataclass
class SGDSettings:
    """Every key of CNTK's ``SGD=[...]`` block (spec §5.2), CNTK's defaults.

    Vectors are per epoch (the last element repeats). ``learning_rates_per_sample`` /
    ``learning_rates_per_mb`` and the momentum vectors hold float32-rounded values, as CNTK's
    floatargvector does. Use :meth:`lr_per_sample` and :meth:`momentum_per_sample` for an
    epoch's effective values.
    """

    model_path: str = ""
    max_epochs: int = 0
    epoch_size: int = 0
    minibatch_size: list[int] = field(default_factory=lambda: [256])
    learning_rates_per_sample: list[float] | None = None
    learning_rates_per_mb: list[float] | None = None
    momentum_per_mb: list[float] | None = None
    momentum_per_sample: list[float] | None = None
    momentum_as_time_constant: list[float] | None = None
    use_nag: bool = False
    truncated: bool = False
    max_samples_in_ram: int = SIZE_MAX
    num_subminibatches: int = 1
    dropout_rate: list[float] = field(default_factory=lambda: [0.0])
    batch_normalization_time_constant: list[float] = field(default_factory=lambda: [0.0])
    batch_normalization_blend_time_constant: list[float] = field(default_factory=lambda: [0.0])
    l2_reg_weight: float = 0.0
    l1_reg_weight: float = 0.0
    gradient_clipping_with_truncation: bool = True
    clipping_threshold_per_sample: float = math.inf
    grad_update_type: str = "none"  # none | adagrad | rmsprop | fsadagrad | adam
    norm_with_ave_multiplier: bool = True
    rms_wgt_dec: float = 0.75
    rms_wgt_inc: float = 1.2
    rms_wgt_min: float = 0.1
    rms_wgt_max: float = 10.0
    rms_gamma: float = 0.99
    variance_time_constant: float = 2 * 3600 * 100
    fs_adagrad_target_av_denom: float = 1.0
    adam_mean_momentum: float = 0.9
    adam_var_momentum: float = 0.999
    adam_epsilon: float = 1e-8
    gaussian_noise_inject_std: float = 0.0
    min_learning_rate_per_sample: float = 1e-9
    keep_check_point_files: bool = False
    save_best_model_per_criterion: bool = False
    train_criterion_node_name: str = ""
    eval_criterion_node_name: str = ""
    trace_level: int | None = None  # None: the command's traceLevel
    num_mbs_to_show_result: int = 10
    first_mbs_to_show_result: int = 0
    num_mbs_to_cuda_profile: int = 0
    tensor_board_log_dir: str = ""
    tensor_board_num_mbs_to_log_result: int | None = None
    max_temp_mem_size_in_samples_for_cnn: int = 0
    use_all_data_for_precomputed_node: bool = True
    gradient_check: bool = False
    sig_figs: int = 6
    adaptation_reg_type: str = "none"
    adaptation_reg_weight: float = 0.0
    execution_engine: str = "synchronous"
    h_smoothing_weight: float = 0.95
    frame_drop_thresh: float = 1e-10
    do_reference_align: bool = False
    seq_gammar_uses_mbr: bool = False
    seq_gammar_amf: float = 14.0
    seq_gammar_lmf: float = 14.0
    seq_gammar_bmmi_factor: float = 0.0
    seq_gammar_word_pen: float = 0.0
    disable_reg_in_batch_normalization: bool = False
    unit_test: bool = False
    trace_node_names_real: list[str] = field(default_factory=list)
    trace_node_names_category: list[str] = field(default_factory=list)
    trace_node_names_sparse: list[str] = field(default_factory=list)
    auto_adjust: AutoAdjust = field(default_factory=AutoAdjust)
    parallel_train: bool = False  # a ParallelTrain block was given (ignored without MPI)

    # ---- per epoch ---------------------------------------------------------------------------
    def minibatch(self, epoch: int) -> int:
        """minibatchSize[epoch] (0-based; the last element repeats)."""
        return int(_at(self.minibatch_size, epoch))

    def lr_vector(self) -> list[float]:
        return self.learning_rates_per_sample or self.learning_rates_per_mb or []

    def lr_per_sample(self, epoch: int) -> float:
        """The epoch's learning rate per sample as CNTK uses it: float32 of
        lrPerMB[e]/minibatchSize[e] (or of lrPerSample[e]), so 0.2 per MB of 25 is
        0.0080000004. Beyond the vector the last element repeats."""
        if self.learning_rates_per_sample:
            return f32(_at(self.learning_rates_per_sample, epoch))
        if self.learning_rates_per_mb:
            return f32(_at(self.learning_rates_per_mb, epoch) / self.minibatch(epoch))
        return 0.0

    def momentum_per_sample_at(self, epoch: int) -> float:
        """Per-sample momentum μs of the epoch: m^(1/minibatchSize[e]) for momentumPerMB
        (default 0.9), as is for momentumPerSample, exp(−1/τ) for momentumAsTimeConstant
        (τ = 0: 0); m and the per-sample values float32-rounded, the root in double."""
        if self.momentum_per_sample:
            return f32(_at(self.momentum_per_sample, epoch))
        if self.momentum_as_time_constant:
            tau = _at(self.momentum_as_time_constant, epoch)
            return f32(math.exp(-1.0 / tau)) if tau > 0 else 0.0
        m = _at(self.momentum_per_mb, epoch) if self.momentum_per_mb else f32(0.9)
        return m ** (1.0 / self.minibatch(epoch)) if m > 0 else 0.0

    def dropout(self, epoch: int) -> float:
        return float(_at(self.dropout_rate, epoch))

    # ---- reading -----------------------------------------------------------------------------
    @classmethod
    def from_lookup(cls, get: Lookup, where: str = "SGD") -> SGDSettings:
        """The settings from a key lookup (see the module docstring), every check of §5.2 a
        one-line NetsurgeonError naming the key (``SGD.momentumPerMB: ...``)."""
        r = _Reader(get, where)
        s = cls()
        model = r.raw("modelPath")
        if not model:
            raise r.error("modelPath", "is required (the file of the trained model)")
        s.model_path = model
        if not r.has("maxEpochs"):
            raise r.error("maxEpochs", "is required (the number of epochs)")
        s.max_epochs = r.integer("maxEpochs", 0)
        if s.max_epochs < 1:
            raise r.error("maxEpochs", f"{s.max_epochs}: give 1 or more")
        s.epoch_size = r.integer("epochSize", 0)
        if s.epoch_size < 0:
            raise r.error("epochSize", f"{s.epoch_size}: give 0 (the whole data) or a "
                                       "positive number of samples")
        s.minibatch_size = r.vector("minibatchSize", "int") or [256]
        if any(m < 1 for m in s.minibatch_size):
            raise r.error("minibatchSize", "every minibatch size must be 1 or more")
        if s.epoch_size and any(m > s.epoch_size for m in s.minibatch_size):
            raise r.error("epochSize", f"{s.epoch_size} is smaller than the minibatch size "
                                       f"{max(s.minibatch_size)}")
        s.auto_adjust = AutoAdjust.from_lookup(get, where)
        s.learning_rates_per_sample = r.vector("learningRatesPerSample", "float")
        s.learning_rates_per_mb = r.vector("learningRatesPerMB", "float")
        if s.learning_rates_per_sample is not None and s.learning_rates_per_mb is not None:
            raise r.error("learningRatesPerMB", "give learningRatesPerSample or "
                                                "learningRatesPerMB, not both")
        if not s.lr_vector() and s.auto_adjust.auto_adjust_lr == "none":
            raise r.error("learningRatesPerSample", "no learning rate: give "
                                                    "learningRatesPerSample or learningRatesPerMB "
                                                    "(or AutoAdjust.autoAdjustLR)")
        for key, attr in (("learningRatesPerSample", "learning_rates_per_sample"),
                          ("learningRatesPerMB", "learning_rates_per_mb")):
            v = getattr(s, attr)
            if v is not None and any(not math.isfinite(x) or x < 0 for x in v):
                raise r.error(key, "a learning rate is a finite number >= 0")
        given = [k for k in ("momentumPerMB", "momentumPerSample", "momentumAsTimeConstant")
                 if r.has(k)]
        if len(given) > 1:
            raise r.error(given[1], f"give only one of momentumPerMB, momentumPerSample, "
                                    f"momentumAsTimeConstant ({given[0]} is given too)")
        s.momentum_per_mb = r.vector("momentumPerMB", "float")
        s.momentum_per_sample = r.vector("momentumPerSample", "float")
        s.momentum_as_time_constant = r.vector("momentumAsTimeConstant", "double")
        for key, vec in (("momentumPerMB", s.momentum_per_mb),
                         ("momentumPerSample", s.momentum_per_sample)):
            for m in vec or ():
                if not 0 <= m < 1:
                    raise r.error(key, f"{m:g}: a momentum must be in [0, 1)")
        for tau in s.momentum_as_time_constant or ():
            if not tau >= 0:
                raise r.error("momentumAsTimeConstant", f"{tau:g}: a time constant must be "
                                                        ">= 0")
        s.use_nag = r.boolean("useNAG", False)
        s.truncated = r.boolean("truncated", False)
        s.max_samples_in_ram = r.integer("maxSamplesInRAM", SIZE_MAX)
        s.num_subminibatches = r.integer("numSubminibatches", 1)
        s.dropout_rate = r.vector("dropoutRate", "double") or [0.0]
        for d in s.dropout_rate:
            if not 0 <= d < 1:
                raise r.error("dropoutRate", f"{d:g}: a dropout rate must be in [0, 1)")
        s.batch_normalization_time_constant = \
            r.vector("batchNormalizationTimeConstant", "double") or [0.0]
        s.batch_normalization_blend_time_constant = \
            r.vector("batchNormalizationBlendTimeConstant", "double") or [0.0]
        s.l2_reg_weight = r.number("L2RegWeight", 0.0)
        s.l1_reg_weight = r.number("L1RegWeight", 0.0)
        for key, v in (("L2RegWeight", s.l2_reg_weight), ("L1RegWeight", s.l1_reg_weight)):
            if not (math.isfinite(v) and v >= 0):
                raise r.error(key, f"{v:g}: give a finite number >= 0")
        s.gradient_clipping_with_truncation = r.boolean("gradientClippingWithTruncation", True)
        s.clipping_threshold_per_sample = r.number("clippingThresholdPerSample", math.inf)
        if not s.clipping_threshold_per_sample > 0:
            raise r.error("clippingThresholdPerSample", f"{s.clipping_threshold_per_sample:g}:"
                                                        " give a number > 0")
        kind = r.text("gradUpdateType", "None")
        if kind.lower() not in _GRAD_TYPES:
            raise r.error("gradUpdateType", f"{kind!r}: use None, AdaGrad, RmsProp, FSAdaGrad "
                                            "or Adam")
        s.grad_update_type = _GRAD_TYPES[kind.lower()]
        if r.boolean("useAdagrad", False):
            s.grad_update_type = "adagrad"
        s.norm_with_ave_multiplier = r.boolean("normWithAveMultiplier", True)
        s.rms_wgt_dec = r.number("rms_wgt_dec", 0.75)
        s.rms_wgt_inc = r.number("rms_wgt_inc", 1.2)
        s.rms_wgt_min = r.number("rms_wgt_min", 0.1)
        s.rms_wgt_max = r.number("rms_wgt_max", 10.0)
        s.rms_gamma = r.number("rms_gamma", 0.99)
        s.variance_time_constant = r.number("varianceTimeConstant", 2 * 3600 * 100)
        s.fs_adagrad_target_av_denom = r.number("fsAdagradTargetAvDenom", 1.0)
        s.adam_mean_momentum = r.number("adam_meanMomentum", 0.9)
        s.adam_var_momentum = r.number("adam_varMomentum", 0.999)
        s.adam_epsilon = r.number("adam_epsilon", 1e-8)
        s.gaussian_noise_inject_std = r.number("gaussianNoiseInjectStd", 0.0)
        s.min_learning_rate_per_sample = r.number("minLearningRatePerSample", 1e-9)
        s.keep_check_point_files = r.boolean("keepCheckPointFiles", False)
        s.save_best_model_per_criterion = r.boolean("saveBestModelPerCriterion", False)
        s.train_criterion_node_name = r.text("trainCriterionNodeName", "")
        s.eval_criterion_node_name = r.text("evalCriterionNodeName", "")
        s.trace_level = r.integer("traceLevel", 0) if r.has("traceLevel") else None
        s.num_mbs_to_show_result = r.integer("numMBsToShowResult", 10)
        s.first_mbs_to_show_result = r.integer("firstMBsToShowResult", 0)
        s.num_mbs_to_cuda_profile = r.integer("numMBsToCUDAProfile", 0)
        s.tensor_board_log_dir = r.text("tensorBoardLogDir", "")
        s.tensor_board_num_mbs_to_log_result = r.integer(
            "tensorBoardNumMBsToLogResult", s.num_mbs_to_show_result)
        s.max_temp_mem_size_in_samples_for_cnn = r.integer("maxTempMemSizeInSamplesForCNN", 0)
        s.use_all_data_for_precomputed_node = r.boolean("UseAllDataForPreComputedNode", True)
        s.gradient_check = r.boolean("gradientcheck", False)
        if s.gradient_check:
            raise r.error("gradientcheck", "the numeric gradient check is not supported "
                                           "(CNTK needs precision=double for it)")
        s.sig_figs = r.integer("sigFigs", 6)
        reg = r.text("adaptationRegType", "None")
        if reg.lower() not in ("none", "kl", "klreg"):
            raise r.error("adaptationRegType", f"{reg!r}: use None or KL")
        s.adaptation_reg_type = "none" if reg.lower() == "none" else "kl"
        s.adaptation_reg_weight = r.number("adaptationRegWeight", 0.0)
        if not 0 <= s.adaptation_reg_weight <= 1:
            raise r.error("adaptationRegWeight", f"{s.adaptation_reg_weight:g}: must be in "
                                                 "[0, 1]")
        if s.adaptation_reg_type != "none" and s.adaptation_reg_weight > 0:
            raise r.error("adaptationRegType", "KL adaptation regularization is not supported")
        s.execution_engine = r.text("executionEngine", "synchronous")
        s.h_smoothing_weight = r.number("hSmoothingWeight", 0.95)
        s.frame_drop_thresh = r.number("frameDropThresh", 1e-10)
        s.do_reference_align = r.boolean("doReferenceAlign", False)
        s.seq_gammar_uses_mbr = r.boolean("seqGammarUsesMBR", False)
        s.seq_gammar_amf = r.number("seqGammarAMF", 14.0)
        s.seq_gammar_lmf = r.number("seqGammarLMF", 14.0)
        s.seq_gammar_bmmi_factor = r.number("seqGammarBMMIFactor", 0.0)
        s.seq_gammar_word_pen = r.number("seqGammarWordPen", 0.0)
        s.disable_reg_in_batch_normalization = r.boolean("disableRegInBatchNormalization",
                                                         False)
        s.unit_test = r.boolean("unitTest", False)
        for key, attr in (("traceNodeNamesReal", "trace_node_names_real"),
                          ("traceNodeNamesCategory", "trace_node_names_category"),
                          ("traceNodeNamesSparse", "trace_node_names_sparse")):
            setattr(s, attr, [x for x in (r.vector(key, "str") or []) if x])
        s.parallel_train = get("ParallelTrain") is not None
        if s.auto_adjust.num_samples_4_search is None:
            s.auto_adjust.num_samples_4_search = s.minibatch_size[0] * 500
        elif s.auto_adjust.num_samples_4_search < 0:  # numMiniBatch4LRSearch
            s.auto_adjust.num_samples_4_search *= -s.minibatch_size[0]
        return s
