"""Experiment tracking on a cluster: the trainer pods get the tracking Secrets as environment variables
(never their values), the operator checks those Secrets exist (a missing one is the SecretNotFound
condition), the workload config carries ``tracking``, and the CRDs accept it."""

from __future__ import annotations

import copy
import re
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import kubernetes_validate
import pytest

from rlaif_operator.api import crdschema
from rlaif_operator.api.crdgen import build_crd
from rlaif_operator.api.kinds import KINDS, StageResource
from rlaif_operator.builders.children import build_pipeline_children, build_stage_children
from rlaif_operator.builders.pod import referenced_secrets
from rlaif_operator.builders.workload import workload_config
from rlaif_operator.observe import missing_secrets
from rlaif_operator.settings import OperatorSettings
from rlaif_operator.status import StageObservation, compute_status

SETTINGS = OperatorSettings(labeler_image="ghcr.io/rlaif/labeler:test", trainer_image="ghcr.io/rlaif/trainer:test")
TRACKING = {
    "mlflow": {"trackingUri": "https://mlflow.example.com", "experiment": "rlaif", "credentialsSecret": "mlflow-creds"},
    "wandb": {"project": "rlaif", "entity": "team", "apiKeySecret": {"name": "wandb", "key": "apiKey"}},
}
REWARD = {"baseModel": {"uri": "hf://org/sft"}, "preferences": {"uri": "s3://b/labels.jsonl"},
          "output": {"uri": "s3://b/rm"}, "runtime": {"storage": {"credentialsSecret": "s3-creds"}},
          "tracking": TRACKING}
POLICY = {"policy": {"uri": "hf://org/sft"}, "prompts": {"uri": "s3://b/prompts.jsonl"},
          "reward": {"modelUri": "s3://b/rm/model"}, "evaluation": {"enabled": False},
          "output": {"uri": "s3://b/policy"}, "tracking": {"tensorboard": False, "wandb": TRACKING["wandb"]}}


def resource(kind: str, spec: dict[str, Any]) -> StageResource:
    return cast(StageResource, KINDS[kind].model_validate({
        "apiVersion": "rlaif.dev/v1alpha1", "kind": kind,
        "metadata": {"name": "run", "namespace": "research", "uid": "0b9f6c1e-0000-4000-8000-000000000001",
                     "generation": 1},
        "spec": copy.deepcopy(spec)}))


def container(res: StageResource) -> dict[str, Any]:
    job = build_stage_children(res, None, SETTINGS).job
    kubernetes_validate.validate(job, "1.32.0", strict=True)  # raises when the Job is not valid Kubernetes
    return job["spec"]["template"]["spec"]["containers"][0]


def test_reward_pods_get_the_wandb_key_and_the_mlflow_credentials_from_their_secrets() -> None:
    c = container(resource("RewardModelRun", REWARD))
    env = {e["name"]: e for e in c["env"]}
    assert env["WANDB_API_KEY"] == {"name": "WANDB_API_KEY",
                                    "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "apiKey"}}}
    # every key of the MLflow Secret becomes a variable (MLFLOW_TRACKING_USERNAME/PASSWORD/TOKEN)
    assert c["envFrom"] == [{"secretRef": {"name": "s3-creds"}}, {"secretRef": {"name": "mlflow-creds"}}]
    assert not any("value" in e and "apiKey" in str(e["value"]) for e in c["env"])  # no value, only references


def test_policy_pods_get_the_wandb_key_and_no_envfrom_without_secrets() -> None:
    c = container(resource("PolicyRLRun", POLICY))
    assert [e["valueFrom"]["secretKeyRef"] for e in c["env"] if e["name"] == "WANDB_API_KEY"] == [
        {"name": "wandb", "key": "apiKey"}]
    assert "envFrom" not in c
    plain = container(resource("PolicyRLRun", {k: v for k, v in POLICY.items() if k != "tracking"}))
    assert "WANDB_API_KEY" not in {e["name"] for e in plain["env"]}


def test_tracking_secrets_are_referenced_and_a_missing_one_is_secret_not_found() -> None:
    res = resource("RewardModelRun", REWARD)
    assert referenced_secrets(res) == [("s3-creds", None), ("wandb", "apiKey"), ("mlflow-creds", None)]
    secrets = {"s3-creds": {"data": {"AWS_ACCESS_KEY_ID": "eA=="}}, "wandb": {"data": {"other": "eA=="}}}
    kube = SimpleNamespace(get=lambda api, kind, ns, name: secrets.get(name) if kind == "Secret" else None)
    missing = missing_secrets(SimpleNamespace(kube=kube), res)  # type: ignore[arg-type]
    assert missing == ("wandb/apiKey", "mlflow-creds")
    status = compute_status(res, StageObservation(missing_secrets=missing), datetime(2025, 3, 1, tzinfo=UTC))
    inputs = next(c for c in status.conditions if c.type == "InputsReady")
    assert (status.phase, inputs.status, inputs.reason) == ("Waiting", "False", "SecretNotFound")
    assert "wandb/apiKey" in (inputs.message or "") and "mlflow-creds" in (inputs.message or "")


@pytest.mark.parametrize(("kind", "spec"), [("RewardModelRun", REWARD), ("PolicyRLRun", POLICY)])
def test_the_workload_config_carries_tracking_and_the_crd_accepts_it(kind: str, spec: dict[str, Any]) -> None:
    res = resource(kind, spec)
    config = workload_config(res).to_wire()
    assert config["tracking"] == res.spec.to_wire()["tracking"]  # type: ignore[attr-defined]
    body = {"apiVersion": "rlaif.dev/v1alpha1", "kind": kind, "metadata": {"name": "run"}, "spec": spec}
    assert crdschema.validate(crdschema.crd_schema(build_crd(KINDS[kind])), body) == []
    bad = {**body, "spec": {**spec, "tracking": {"wandb": {"project": "p", "mode": "sometimes"}}}}
    assert crdschema.validate(crdschema.crd_schema(build_crd(KINDS[kind])), bad) != []


def test_a_pipeline_passes_each_stages_tracking_to_its_child() -> None:
    pipeline = KINDS["RLAIFPipeline"].model_validate({
        "apiVersion": "rlaif.dev/v1alpha1", "kind": "RLAIFPipeline",
        "metadata": {"name": "demo", "namespace": "research", "uid": "0b9f6c1e-0000-4000-8000-000000000002"},
        "spec": {"rewardModel": REWARD, "policy": {k: v for k, v in POLICY.items() if k != "reward"}}})
    children = {c["kind"]: c for c in build_pipeline_children(pipeline)}  # type: ignore[arg-type]
    assert children["RewardModelRun"]["spec"]["tracking"]["mlflow"]["credentialsSecret"] == "mlflow-creds"
    assert children["PolicyRLRun"]["spec"]["tracking"]["tensorboard"] is False


def test_the_trainer_image_and_bootstrap_install_the_tracking_extra() -> None:
    """tensorboard is on by default: the image the trainers run in, and the dev venv, must have it."""
    repo = Path(__file__).resolve().parents[3]
    extra = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["optional-dependencies"]["tracking"]
    assert {re.match(r"[\w-]+", dep).group() for dep in extra} == {"tensorboard", "mlflow-skinny", "wandb"}  # type: ignore[union-attr]
    lock = (repo / "images" / "locks" / "trainer.txt").read_text()  # what the trainer image installs
    for name in ("tensorboard", "mlflow-skinny", "wandb"):
        assert re.search(rf"^{name}==", lock, re.M), name
    dockerfile = (repo / "images" / "trainer" / "Dockerfile").read_text()
    assert "torch.utils.tensorboard, mlflow, wandb" in dockerfile  # imported at build time
    extras = re.search(r'^EXTRAS="([^"]+)"', (repo / "scripts" / "bootstrap.sh").read_text(), re.M)
    assert extras and "tracking" in extras.group(1).split(",")
