"""Training knobs shared by the reward and policy trainers: DeepSpeed, precision, checkpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from rlaif_jobs.config.base import CamelModel
from rlaif_jobs.config.common import Precision


class DeepSpeedSpec(CamelModel):
    """How the DeepSpeed engine is set up; `config` is merged over the defaults we derive."""

    zero_stage: Literal[0, 1, 2, 3] | None = Field(
        None, description="ZeRO stage: 0 off, 1 optimizer, 2 +gradients, 3 +weights. Unset: 2 on several"
        " processes or with offloadOptimizer, 0 on one process (nothing to partition; stage 0 is faster).")
    offload_optimizer: bool = Field(False, description="Keep optimizer state on the CPU (ZeRO 2/3).")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="A DeepSpeed config merged over the derived one (keys as in DeepSpeed's docs).",
        json_schema_extra={"x-kubernetes-preserve-unknown-fields": True},
    )


class TrainerSpec(CamelModel):
    """Optimisation schedule and engineering knobs common to both trainers."""

    learning_rate: float = Field(1e-5, gt=0, le=1, description="Peak learning rate (paper: 1e-5).")
    epochs: float = Field(2, gt=0, le=1000, description="Passes over the data (paper RM: 2-3, RL: 8).")
    batch_size: int = Field(32, ge=1, description="Global batch: examples per optimizer step, all ranks.")
    micro_batch_size: int = Field(4, ge=1, description="Examples per forward pass on one rank.")
    max_length: int = Field(1152, ge=16, description="Token cap per sequence (paper RM: 1152).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    warmup_ratio: float = Field(0.05, ge=0, le=1, description="Share of steps spent warming up.")
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping norm.")
    precision: Precision = Field("bf16", description="bf16, fp16 (GPU only) or fp32.")
    gradient_checkpointing: bool = Field(False, description="Trade compute for activation memory.")
    seed: int = Field(0, ge=0, description="Seed for data order and initialisation.")
    checkpoint_every_steps: int = Field(50, ge=1, description="Save a resumable checkpoint this often.")
    keep_checkpoints: int = Field(2, ge=1, description="Older checkpoints beyond this count are deleted.")
    log_every_steps: int = Field(1, ge=1, description="Write a metrics line this often.")
    deepspeed: DeepSpeedSpec = Field(default_factory=DeepSpeedSpec, description="DeepSpeed engine set-up.")
