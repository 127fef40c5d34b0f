"""Operator settings: environment variables ``RLAIF_*`` (pydantic-settings), one chart value each.

Every field has a description; ``charts/rlaif-operator/values.yaml`` maps ``operator.*`` values one to
one onto these variables, and a test checks that the two stay in step.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from rlaif_operator.version import VERSION


class OperatorSettings(BaseSettings):
    """How the operator builds workloads and how it runs itself."""

    model_config = SettingsConfigDict(env_prefix="RLAIF_", extra="ignore", frozen=True)

    # --- what the workloads run -------------------------------------------------------------------
    labeler_image: str = Field(
        default=f"ghcr.io/rlaif/labeler:{VERSION}",
        description="Image of the labeling stage (vLLM + rlaif_jobs), unless a resource sets runtime.image.",
    )
    trainer_image: str = Field(
        default=f"ghcr.io/rlaif/trainer:{VERSION}",
        description="Image of the reward and policy stages (torch + DeepSpeed + rlaif_jobs).",
    )
    image_pull_policy: str = Field(
        default="IfNotPresent", pattern="^(Always|IfNotPresent|Never)$", description="Pull policy of workload pods."
    )
    default_service_account: str | None = Field(
        default=None,
        description="Service account of workload pods when a resource sets none (None: the namespace's default).",
    )
    master_port: int = Field(default=29500, ge=1, le=65535,
                             description="torchrun rendezvous port on pod 0 of a trainer.")
    max_gpus_per_node: int | None = Field(
        default=None, ge=0,
        description="Largest nvidia.com/gpu count one node offers; larger requests fail at once with a clear"
        " reason instead of waiting as unschedulable pods. None: do not check.",
    )

    # --- what runs may ask for (admin guardrails; rlaif_operator.guardrails) -----------------------
    allowed_image_prefixes: list[str] = Field(
        default_factory=list,
        description="Images a run may set in runtime.image, as prefixes ending in '/', ':' or '@' (e.g."
        " 'ghcr.io/rlaif/'); a run asking for another image fails with InvalidSpec. Empty: any image.",
    )
    allowed_service_accounts: list[str] = Field(
        default_factory=list,
        description="Service accounts a run may set in runtime.serviceAccountName; another one fails with"
        " InvalidSpec. Empty: any service account of the run's namespace.",
    )

    # --- how the operator runs --------------------------------------------------------------------
    namespaces: list[str] = Field(
        default_factory=list, description="Namespaces to watch (glob patterns allowed); empty: cluster-wide."
    )
    # --- high availability: replicas elect one leader on a Lease (rlaif_operator.leader) -----------
    leader_election: bool = Field(
        default=False, description="Elect one acting replica on a coordination.k8s.io Lease; the others wait"
        " as standbys. Needed for more than one replica.")
    leader_election_namespace: str | None = Field(
        default=None, description="Namespace of the Lease (None: the operator pod's own namespace).")
    lease_name: str = Field(default="rlaif-operator", min_length=1, description="Name of the Lease.")
    lease_duration_seconds: float = Field(
        default=15.0, gt=0, description="How long a standby waits, after the leader's last renewal, before"
        " it takes over (the handover time after a crash).")
    renew_deadline_seconds: float = Field(
        default=10.0, gt=0, description="A leader that could not renew for this long stops (must be less than"
        " lease_duration_seconds, so it stops before anyone takes over).")
    retry_period_seconds: float = Field(
        default=2.0, gt=0, description="How often the leader renews and a standby tries to acquire.")
    recheck_seconds: float = Field(
        default=15.0, gt=0,
        description="First delay before re-checking a resource that waits on something no event announces"
        " (a missing Secret, unschedulable pods); it doubles up to recheck_max_seconds.",
    )
    recheck_max_seconds: float = Field(default=300.0, gt=0,
                                       description="Longest delay between such re-checks.")
    progress_interval_seconds: float = Field(
        default=30.0, ge=0,
        description="How often the operator reads a running stage's progress from its rank-0 pod's log tail"
        " into status.progress (one log read and at most one status patch per running stage per interval);"
        " 0 turns live progress off.")
    unschedulable_after_seconds: float = Field(
        default=10.0, ge=0,
        description="How long a Job's pods may stay unscheduled before the operator looks for the scheduler's"
        " reason (listing pods on every Job event would cost an API call per event).",
    )
    reconcile_workers: int = Field(
        default=16, ge=1, le=64,
        description="Threads that run reconciles; each waits on one API call at a time, so more threads keep"
        " more calls in flight when the API server is slow to answer.",
    )
    api_timeout_seconds: float = Field(default=30.0, gt=0, description="Timeout of each Kubernetes API call.")
    metrics_port: int = Field(default=8000, ge=0, le=65535,
                              description="Prometheus /metrics port; 0 turns it off.")
    liveness_endpoint: str | None = Field(
        default="http://0.0.0.0:8080/healthz", description="kopf liveness probe URL to serve; None turns it off."
    )
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$",
                           description="Operator log level.")
    batch_window_seconds: float = Field(
        default=0.05, ge=0, description="How long kopf waits for more events of one object before handling them."
    )

    @model_validator(mode="after")
    def _lease_timings(self) -> OperatorSettings:
        if not self.retry_period_seconds < self.renew_deadline_seconds < self.lease_duration_seconds:
            raise ValueError("leader election needs retry_period_seconds < renew_deadline_seconds <"
                             f" lease_duration_seconds, got {self.retry_period_seconds} <"
                             f" {self.renew_deadline_seconds} < {self.lease_duration_seconds}")
        return self

    @model_validator(mode="after")
    def _guardrails_admit_the_defaults(self) -> OperatorSettings:
        """The guardrails must admit the operator's own defaults, or every run would fail."""
        for prefix in self.allowed_image_prefixes:
            if not prefix.endswith(("/", ":", "@")):
                raise ValueError(f"allowed_image_prefixes: {prefix!r} must end with '/', ':' or '@' (else"
                                 f" {prefix!r} would also admit {prefix + '-evil/x'!r})")
        for name, image in (("labeler_image", self.labeler_image), ("trainer_image", self.trainer_image)):
            if self.allowed_image_prefixes and not image.startswith(tuple(self.allowed_image_prefixes)):
                raise ValueError(f"{name} {image!r} is outside allowed_image_prefixes"
                                 f" {self.allowed_image_prefixes}: add its registry prefix")
        account = self.default_service_account
        if self.allowed_service_accounts and account and account not in self.allowed_service_accounts:
            raise ValueError(f"default_service_account {account!r} is not in allowed_service_accounts"
                             f" {self.allowed_service_accounts}: add it")
        return self


def load_settings() -> OperatorSettings:
    """Settings from the environment (``RLAIF_*``)."""
    return OperatorSettings()
