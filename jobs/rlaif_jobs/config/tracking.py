"""Experiment tracking of the trainers (reward model, policy): TensorBoard, MLflow, Weights & Biases.

The metrics file (``<output>/metrics.jsonl``) is always written and stays the source of truth; each
tracker enabled here receives the same per-step metrics (``rlaif_jobs.train.trackers``). Credentials
never appear in the config: they come from Kubernetes Secrets the operator maps onto the environment
variables the tracking clients read (``WANDB_API_KEY``; ``MLFLOW_TRACKING_USERNAME``/``PASSWORD``/
``TOKEN``), and in local mode (``rlaif run``) from the same variables in the caller's environment.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rlaif_jobs.config.base import CamelModel
from rlaif_jobs.config.common import SecretKeyRef

WANDB_API_KEY_ENV = "WANDB_API_KEY"  # what wandb reads; the operator maps wandb.apiKeySecret onto it


class MlflowSpec(CamelModel):
    """An MLflow tracking server (or store): one MLflow run per stage, continued when the stage resumes."""

    tracking_uri: str = Field(
        min_length=1, max_length=2048,
        description="The tracking server (https://mlflow.example.com) or a store (sqlite:///path/mlflow.db with"
        " the full mlflow package; file:/path with MLFLOW_ALLOW_FILE_STORE=true).")
    experiment: str = Field("rlaif", min_length=1, description="Experiment name; created when missing.")
    run_name: str | None = Field(None, description="The run's display name; default: the resource's name (the"
                                 " stage's output folder name in local mode).")
    credentials_secret: str | None = Field(
        None, min_length=1, description="A Secret in the resource's namespace whose keys become environment"
        " variables of the trainer pods (MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or"
        " MLFLOW_TRACKING_TOKEN). Local mode: export them in the shell that runs rlaif run.")


class WandbSpec(CamelModel):
    """A Weights & Biases project: one W&B run per stage, continued (same run id) when the stage resumes."""

    project: str = Field(min_length=1, description="W&B project.")
    entity: str | None = Field(None, description="Team or user; default: the API key's default entity.")
    mode: Literal["online", "offline"] = Field(
        "online", description="online streams to the server; offline writes the run under"
        " <output>/wandb (upload it later with `wandb sync`) and needs no API key.")
    run_name: str | None = Field(None, description="The run's display name; default: the resource's name (the"
                                 " stage's output folder name in local mode).")
    api_key_secret: SecretKeyRef | None = Field(
        None, description="The Secret key holding the W&B API key, given to the pods as WANDB_API_KEY. Local mode:"
        " export WANDB_API_KEY (or run `wandb login`).")


class TrackingSpec(CamelModel):
    """Where the trainer's per-step metrics go besides <output>/metrics.jsonl. A tracker that is enabled but
    cannot start (its package missing, a bad URI, refused credentials) fails the stage at its start."""

    tensorboard: bool = Field(True, description="TensorBoard event files under <output>/tensorboard.")
    mlflow: MlflowSpec | None = Field(None, description="Log to MLflow.")
    wandb: WandbSpec | None = Field(None, description="Log to Weights & Biases.")
