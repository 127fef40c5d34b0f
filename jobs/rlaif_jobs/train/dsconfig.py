"""From a TrainerSpec to a DeepSpeed config: batch arithmetic, precision, ZeRO, clipping, user overrides.

``plan_batches`` splits the global batch into ranks, micro-batches and accumulation steps;
``build_ds_config`` derives the DeepSpeed config and merges the user's ``deepspeed.config`` over it.
Both raise TrainingConfigError (a ConfigError: exit code 3) naming the spec field to fix, e.g.
``training.batchSize: 30 is not divisible by the world size 4``. ``field_prefix`` is the path of
the spec in the stage's config (``training`` for the reward model, ``rl`` for the policy).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from rlaif_jobs.config.training import TrainerSpec
from rlaif_jobs.errors import ConfigError


class TrainingConfigError(ConfigError):
    """A TrainerSpec (or its DeepSpeed overrides) that cannot run on this world; names the field."""


@dataclass(frozen=True)
class BatchPlan:
    """How one optimizer step's global batch is cut up.

    global_batch = world_size * per_rank_batch, per_rank_batch = micro_batch * grad_accum.
    """

    global_batch: int
    micro_batch: int
    grad_accum: int
    world_size: int

    @property
    def per_rank_batch(self) -> int:
        return self.micro_batch * self.grad_accum


def plan_batches(spec: TrainerSpec, world_size: int, field_prefix: str = "training") -> BatchPlan:
    """Splits spec.batchSize over ``world_size`` ranks and micro-batches of spec.microBatchSize.

    The micro-batch shrinks to the per-rank batch when it is larger (a small batch on many ranks);
    it must divide the per-rank batch otherwise. Raises TrainingConfigError naming the field.
    """
    b, m = spec.batch_size, spec.micro_batch_size
    if b % world_size:
        raise TrainingConfigError(
            f"{field_prefix}.batchSize: {b} is not divisible by the world size {world_size} (processes in"
            f" the job): use a multiple of {world_size}, e.g. {world_size * max(1, round(b / world_size))}")
    per_rank = b // world_size
    m = min(m, per_rank)
    if per_rank % m:
        raise TrainingConfigError(
            f"{field_prefix}.microBatchSize: {m} does not divide the per-rank batch {per_rank}"
            f" ({field_prefix}.batchSize {b} / world size {world_size}); pick a divisor of {per_rank}")
    return BatchPlan(global_batch=b, micro_batch=m, grad_accum=per_rank // m, world_size=world_size)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` with ``override`` merged in: nested dicts merge key by key, anything else
    (numbers, lists, strings) in ``override`` replaces the value in ``base``."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def effective_zero_stage(spec: TrainerSpec, plan: BatchPlan) -> int:
    """The ZeRO stage to run: spec.deepspeed.zeroStage when set; unset, 2 on several processes or with
    optimizer offload (which needs ZeRO), else 0.

    ZeRO partitions optimizer state, gradients and weights across ranks; over one rank each partition
    is the whole, so stages 1-3 save no memory there but cost time: stage 2 copies every gradient into
    flat partition buffers and reduce buckets each step, which made a 135M reward model's step 1.8x
    slower than stage 0 on 2 CPU cores (bench/bench_reward.py). The summary records how the stage was
    chosen (``zero_stage_note``).
    """
    ds = spec.deepspeed
    if ds.zero_stage is not None:
        return ds.zero_stage
    return 2 if plan.world_size > 1 or ds.offload_optimizer else 0


def zero_stage_note(spec: TrainerSpec, ds_config: dict[str, Any]) -> dict[str, Any]:
    """The summary's ZeRO fields: {"zeroStage": the stage run, "zeroStageChosen": "spec" (zeroStage
    set), "auto" (unset: effective_zero_stage) or "deepspeed.config" (the user's config set it)}."""
    ran = ds_config.get("zero_optimization", {}).get("stage", 0)
    user = spec.deepspeed.config.get("zero_optimization", {}) if isinstance(spec.deepspeed.config, dict) else {}
    chosen = "deepspeed.config" if "stage" in user else ("spec" if spec.deepspeed.zero_stage is not None else "auto")
    return {"zeroStage": ran, "zeroStageChosen": chosen}


def build_ds_config(spec: TrainerSpec, plan: BatchPlan, device_type: str = "cpu",
                    field_prefix: str = "training") -> dict[str, Any]:
    """The DeepSpeed config for ``spec`` on ``plan``'s world, with spec.deepspeed.config merged over it.

    Derived: train_batch_size / train_micro_batch_size_per_gpu / gradient_accumulation_steps from the
    plan, gradient_clipping from maxGradNorm, bf16/fp16 from precision, zero_optimization.stage and
    CPU optimizer offload from the DeepSpeedSpec (the stage from ``effective_zero_stage``). The optimizer
    and LR schedule are built by build_engine unless the merged config has its own ``optimizer`` /
    ``scheduler`` sections.
    Raises TrainingConfigError for fp16 without a GPU, offload without ZeRO, or user overrides that
    contradict the batch arithmetic.
    """
    ds = spec.deepspeed
    if spec.precision == "fp16" and device_type != "cuda":
        raise TrainingConfigError(f"{field_prefix}.precision: fp16 needs a GPU; use bf16 or fp32 on CPU")
    if ds.offload_optimizer and ds.zero_stage == 0:  # unset picks 2 with offload
        raise TrainingConfigError(
            f"{field_prefix}.deepspeed.offloadOptimizer: needs zeroStage 1, 2 or 3 (it is 0)")
    zero: dict[str, Any] = {"stage": effective_zero_stage(spec, plan)}
    if ds.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": device_type == "cuda"}
    if ds.zero_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    config: dict[str, Any] = {
        "train_batch_size": plan.global_batch,
        "train_micro_batch_size_per_gpu": plan.micro_batch,
        "gradient_accumulation_steps": plan.grad_accum,
        "gradient_clipping": spec.max_grad_norm,
        "bf16": {"enabled": spec.precision == "bf16"},
        "fp16": {"enabled": spec.precision == "fp16", "loss_scale": 0, "initial_scale_power": 16},
        "zero_optimization": zero,
        # torch's AdamW is in DeepSpeed's tested list; this also admits a user's other torch optimizer.
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 10**9,  # the trainers log their own metrics
        "wall_clock_breakdown": False,
    }
    merged = deep_merge(config, ds.config)
    _check_merged(merged, plan, field_prefix)
    return merged


def _check_merged(cfg: dict[str, Any], plan: BatchPlan, field_prefix: str) -> None:
    where = f"{field_prefix}.deepspeed.config"
    tb, mb, ga = (cfg.get(k) for k in ("train_batch_size", "train_micro_batch_size_per_gpu",
                                       "gradient_accumulation_steps"))
    if not all(isinstance(v, int) and v >= 1 for v in (tb, mb, ga)):
        raise TrainingConfigError(f"{where}: train_batch_size, train_micro_batch_size_per_gpu and"
                                  " gradient_accumulation_steps must be positive integers")
    if (tb, mb, ga) != (plan.global_batch, plan.micro_batch, plan.grad_accum):
        raise TrainingConfigError(
            f"{where}: train_batch_size/train_micro_batch_size_per_gpu/gradient_accumulation_steps"
            f" ({tb}/{mb}/{ga}) differ from those {field_prefix}.batchSize and microBatchSize give on"
            f" {plan.world_size} rank(s) ({plan.global_batch}/{plan.micro_batch}/{plan.grad_accum}); the"
            " data sampler and the resume position follow those fields: set them instead")
    if cfg.get("bf16", {}).get("enabled") and cfg.get("fp16", {}).get("enabled"):
        raise TrainingConfigError(f"{where}: bf16 and fp16 cannot both be enabled")
    stage = cfg.get("zero_optimization", {}).get("stage", 0)
    if stage not in (0, 1, 2, 3):
        raise TrainingConfigError(f"{where}: zero_optimization.stage must be 0, 1, 2 or 3 (got {stage!r})")


def precision_dtype(cfg: dict[str, Any]) -> str:
    """'bfloat16', 'float16' or 'float32': the dtype DeepSpeed keeps the module's weights in."""
    if cfg.get("bf16", {}).get("enabled"):
        return "bfloat16"
    if cfg.get("fp16", {}).get("enabled"):
        return "float16"
    return "float32"
