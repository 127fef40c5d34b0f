"""Training knobs shared by the reward and policy trainers: DeepSpeed, precision, checkpoints."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from rlaif_jobs.config.base import CamelModel
from rlaif_jobs.config.common import Precision

ALL_LINEAR = "all-linear"
LORA_DEFAULT_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class LoraSpec(CamelModel):
    """Low-rank adapters (LoRA, through PEFT) instead of full fine-tuning: the base weights stay frozen,
    only the adapters train and the optimizer holds only them. The policy's KL reference is the same
    model with its adapters switched off (no second copy of the weights); the rollout engine receives
    the adapter (vLLM LoRA) instead of the full weights."""

    rank: int = Field(16, ge=1, le=512, description="The adapters' rank r (vLLM serves r up to 512).")
    alpha: float = Field(32, gt=0, description="LoRA alpha: the update is scaled by alpha / rank.")
    target_modules: list[str] = Field(
        default_factory=lambda: list(LORA_DEFAULT_TARGETS),
        description="Which linear layers get adapters: module names (suffixes, e.g. q_proj), or [all-linear]"
        " (every linear layer but the output head). Default: the attention and MLP projections of Llama-style"
        " models (q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj); a name the model lacks is"
        " an error that lists the model's linear layers.")
    dropout: float = Field(
        0.0, ge=0, lt=1, description="Dropout on the adapters' input. Above 0 the policy trainer takes the"
        " old-policy log-probs from a separate pass (a training-mode forward no longer equals the sampler).")
    export: Literal["merged", "adapter"] = Field(
        "merged", description="What <output>/model holds: merged, a plain HF model folder with the adapters"
        " merged into the weights (as a fully fine-tuned run writes); adapter, the PEFT adapter folder"
        " (adapter_config.json, adapter_model.safetensors) with the base model's URI in base_model.json.")

    @field_validator("target_modules")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one module name (e.g. q_proj), or [all-linear]")
        bad = [m for m in value if not m.strip() or m != m.strip()]
        if bad:
            raise ValueError(f"module names must be non-empty without spaces: {bad}")
        if ALL_LINEAR in value and len(value) > 1:
            raise ValueError(f"{ALL_LINEAR} stands alone: [{ALL_LINEAR}], or a list of module names")
        return value

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
    lora: LoraSpec | None = Field(
        None, description="Train LoRA adapters (PEFT) instead of every weight; unset: full fine-tuning. A reward"
        " model trains its score head whole beside the adapters and is exported merged.")
