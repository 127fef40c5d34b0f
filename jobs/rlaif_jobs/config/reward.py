"""Config of the reward model workload (stage 2): fit r(x, y) to soft AI preferences."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rlaif_jobs.config.base import CamelModel
from rlaif_jobs.config.common import ModelRef, OutputSpec, Uri
from rlaif_jobs.config.tracking import TrackingSpec
from rlaif_jobs.config.training import TrainerSpec


class RewardTrainerSpec(TrainerSpec):
    """Reward-model training: the shared knobs plus the held-out split."""

    model_config = {**TrainerSpec.model_config, "json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "!has(self.lora) || !has(self.lora.export) || self.lora.export == 'merged'",
         "message": "lora.export: a reward model is exported merged (the policy stage loads an HF model folder)"}]}}

    eval_fraction: float = Field(0.1, ge=0, lt=1, description="Share of pairs held out for accuracy.")
    eval_every_steps: int | None = Field(
        None, ge=1, description="Evaluate on the held-out pairs this often; default: with each checkpoint."
    )
    score_head_init: Literal["normal", "zero"] = Field(
        "normal", description="How the new scalar head starts. normal: transformers' N(0, initializer_range)."
        " zero: every reward is 0 at the start, so how the model ranks responses it never saw in its pairs is"
        " what training taught it, not a random projection of the base model's features (a random head"
        " barely moves in tens of steps, and its direction then depends on the seed).",
    )
    packing: bool | None = Field(
        None,
        description="Score each pair in one packed row (shared prompt computed once, no padding): about half"
        " the compute, same scores. Default: on when the model supports it (a decoder with a last-token"
        " score head); true requires it; false uses padded batches.",
    )

    @model_validator(mode="after")
    def _lora_merged(self) -> RewardTrainerSpec:
        if self.lora is not None and self.lora.export != "merged":
            raise ValueError("lora.export: a reward model is exported merged (the policy stage loads an HF model"
                             " folder); set training.lora.export: merged")
        return self


class RewardConfig(CamelModel):
    """Everything `python -m rlaif_jobs.reward` needs. Input: labels file; output: an HF model folder."""

    base_model: ModelRef = Field(description="Initialisation, usually the SFT policy (as in the paper).")
    preferences_uri: Uri = Field(description="Labels file (JSONL or Parquet) written by the labeling stage.")
    training: RewardTrainerSpec = Field(default_factory=RewardTrainerSpec)
    tracking: TrackingSpec = Field(
        default_factory=TrackingSpec, description="Experiment tracking besides <output>/metrics.jsonl: TensorBoard"
        " (on by default), MLflow, Weights & Biases.")
    output: OutputSpec
