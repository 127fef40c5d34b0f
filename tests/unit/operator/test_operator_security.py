"""Hardening of what the operator builds, and the admin guardrails (pure: builders and checks only).

- stage pods: the Pod Security "restricted" profile, a read-only root with writable emptyDirs, no
  service-account token unless the run names an identity;
- one API-key variable per endpoint Secret (labeler, d-RLAIF scorer, judge), never a value;
- a NetworkPolicy per trainer Job admitting only the Job's own pods;
- guardrails: images and service accounts a run may ask for, field by field; settings that would
  refuse the operator's own defaults are refused at start.
"""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
from pydantic import ValidationError

from rlaif_jobs.apikeys import api_key_env, read_api_key
from rlaif_jobs.config.common import SecretKeyRef
from rlaif_operator.api.kinds import KINDS, Resource
from rlaif_operator.builders.children import build_stage_children
from rlaif_operator.builders.networkpolicy import build_network_policy
from rlaif_operator.guardrails import guardrail_problems
from rlaif_operator.settings import OperatorSettings

SETTINGS = OperatorSettings()
GUARDED = OperatorSettings(allowed_image_prefixes=["ghcr.io/rlaif/", "registry.local/ml@"],
                           allowed_service_accounts=["rlaif-workload"])
LABELER = {"model": {"uri": "hf://org/labeler"}, "engine": "openai"}
LABELING = {"labeler": {**LABELER, "endpoint": {"url": "http://l:8000/v1", "apiKeySecret": {"name": "a", "key": "k"}}},
            "dataset": {"uri": "builtin://datasets/checkable-pairs"}, "output": {"uri": "/data/l"}}
REWARD = {"baseModel": {"uri": "hf://org/sft"}, "preferences": {"uri": "/data/l.jsonl"}, "output": {"uri": "/data/r"},
          "resources": {"nodes": 2}}
POLICY = {"policy": {"uri": "hf://org/sft"}, "prompts": {"uri": "builtin://datasets/checkable-prompts"},
          "output": {"uri": "/data/p"},
          "reward": {"direct": {"labeler": {**LABELER, "endpoint": {
              "url": "http://scorer:8000/v1", "apiKeySecret": {"name": "scorer", "key": "k"}}}}},
          "evaluation": {"judge": {**LABELER, "endpoint": {
              "url": "https://judge.example.com/v1", "apiKeySecret": {"name": "judge", "key": "k"}}}}}
SPECS = {"PreferenceLabelJob": LABELING, "RewardModelRun": REWARD, "PolicyRLRun": POLICY}


def resource(kind: str, spec: dict[str, Any], name: str = "run") -> Resource:
    return KINDS[kind].model_validate({"apiVersion": "rlaif.dev/v1alpha1", "kind": kind, "metadata": {
        "name": name, "namespace": "ml", "uid": "uid-1"}, "spec": copy.deepcopy(spec)})


def pod_spec(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    return build_stage_children(resource(kind, spec), None, SETTINGS).job["spec"]["template"]["spec"]


@pytest.mark.parametrize("kind", SPECS)
def test_stage_pods_are_restricted_with_writable_caches(kind: str) -> None:
    spec = pod_spec(kind, SPECS[kind])
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["runAsUser"] == 10001
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = spec["containers"][0]
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "capabilities": {"drop": ["ALL"]}}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    for path in ("/tmp", "/var/cache/rlaif", "/dev/shm"):
        assert "emptyDir" in volumes[mounts[path]], path
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HOME"] == "/var/cache/rlaif" and env["HF_HOME"].startswith("/var/cache/rlaif/")
    assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("kind", SPECS)
def test_stage_pods_pass_pod_security_restricted(kind: str) -> None:
    from testapi.admission import violations  # the test API server's Pod Security admission

    assert violations(pod_spec(kind, SPECS[kind]), "restricted") == []
    weak = copy.deepcopy(pod_spec(kind, SPECS[kind]))
    weak["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    assert violations(weak, "restricted") == [
        f'allowPrivilegeEscalation != false (container "{weak["containers"][0]["name"]}" must set'
        ' securityContext.allowPrivilegeEscalation=false)']


def test_token_is_mounted_only_for_a_named_service_account() -> None:
    named = copy.deepcopy(REWARD)
    named["runtime"] = {"serviceAccountName": "rlaif-workload"}
    spec = pod_spec("RewardModelRun", named)
    assert spec["automountServiceAccountToken"] is True and spec["serviceAccountName"] == "rlaif-workload"


def test_each_endpoint_secret_gets_its_own_variable_and_no_value() -> None:
    env = pod_spec("PolicyRLRun", POLICY)["containers"][0]["env"]
    keyed = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if e["name"].startswith("RLAIF_API_KEY_")}
    assert keyed == {api_key_env(SecretKeyRef(name="scorer", key="k")): {"name": "scorer", "key": "k"},
                     api_key_env(SecretKeyRef(name="judge", key="k")): {"name": "judge", "key": "k"}}
    assert not any(e["name"] == "RLAIF_LABELER_API_KEY" for e in env)
    # The same Secret for scorer and judge: one variable.
    shared = copy.deepcopy(POLICY)
    shared["evaluation"]["judge"]["endpoint"]["apiKeySecret"] = {"name": "scorer", "key": "k"}
    env = pod_spec("PolicyRLRun", shared)["containers"][0]["env"]
    assert len([e for e in env if e["name"].startswith("RLAIF_API_KEY_")]) == 1


def test_the_engine_reads_its_own_endpoint_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    scorer, judge = SecretKeyRef(name="scorer", key="k"), SecretKeyRef(name="judge", key="k")
    monkeypatch.setenv(api_key_env(scorer), "scorer-key")
    monkeypatch.setenv(api_key_env(judge), "judge-key")
    monkeypatch.delenv("RLAIF_LABELER_API_KEY", raising=False)
    assert read_api_key(scorer) == "scorer-key" and read_api_key(judge) == "judge-key"
    assert read_api_key(None) is None
    monkeypatch.setenv("RLAIF_LABELER_API_KEY", "local")  # outside a cluster
    assert read_api_key(None) == "local" and read_api_key(SecretKeyRef(name="other", key="k")) == "local"
    assert api_key_env(SecretKeyRef(name="a-b", key="c")) != api_key_env(SecretKeyRef(name="a", key="b-c"))


def test_trainer_jobs_admit_only_their_own_pods() -> None:
    policy = build_network_policy(resource("RewardModelRun", REWARD), SETTINGS)
    assert policy is not None
    kubernetes_validate.validate(policy, "1.32.0", strict=True)
    own = {"matchLabels": {"batch.kubernetes.io/job-name": "run-reward"}}
    assert policy["spec"] == {"podSelector": own, "policyTypes": ["Ingress"],
                              "ingress": [{"from": [{"podSelector": own}]}]}
    assert policy["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    assert build_network_policy(resource("PolicyRLRun", POLICY), SETTINGS) is not None
    assert build_network_policy(resource("PreferenceLabelJob", LABELING), SETTINGS) is None


@pytest.mark.parametrize("kind", SPECS)
def test_guardrails_admit_defaults_and_allowed_choices(kind: str) -> None:
    assert guardrail_problems(resource(kind, SPECS[kind]), GUARDED) == []
    allowed = copy.deepcopy(SPECS[kind])
    allowed["runtime"] = {"image": "registry.local/ml@sha256:" + "0" * 64, "serviceAccountName": "rlaif-workload"}
    assert guardrail_problems(resource(kind, allowed), GUARDED) == []
    anything = copy.deepcopy(SPECS[kind])
    anything["runtime"] = {"image": "docker.io/evil/miner:latest", "serviceAccountName": "cluster-admin"}
    assert guardrail_problems(resource(kind, anything), SETTINGS) == []  # no guardrails configured


def test_guardrails_name_the_field_and_the_fix() -> None:
    bad = copy.deepcopy(REWARD)
    bad["runtime"] = {"image": "ghcr.io/rlaif-evil/trainer:1", "serviceAccountName": "cluster-admin"}
    image, account = guardrail_problems(resource("RewardModelRun", bad), GUARDED)
    assert image.startswith("spec.runtime.image 'ghcr.io/rlaif-evil/trainer:1' is not allowed")
    assert "ghcr.io/rlaif/, registry.local/ml@" in image
    assert account.startswith("spec.runtime.serviceAccountName 'cluster-admin' is not allowed")
    assert "rlaif-workload" in account


def test_a_pipeline_is_checked_stage_by_stage_before_it_starts() -> None:
    policy = copy.deepcopy(POLICY)
    policy["runtime"] = {"image": "quay.io/someone/trainer:1"}
    pipeline = resource("RLAIFPipeline", {"labeling": LABELING, "rewardModel": {
        k: v for k, v in REWARD.items() if k != "preferences"}, "policy": {k: v for k, v in policy.items()
                                                                           if k != "reward"}})
    (problem,) = guardrail_problems(pipeline, GUARDED)
    assert problem.startswith("spec.policy.runtime.image 'quay.io/someone/trainer:1'")


@pytest.mark.parametrize(("settings", "message"), [
    ({"allowed_image_prefixes": ["ghcr.io/rlaif"]}, "must end with '/', ':' or '@'"),
    ({"allowed_image_prefixes": ["registry.local/"]}, "labeler_image 'ghcr.io/rlaif/labeler"),
    ({"allowed_service_accounts": ["a"], "default_service_account": "b"}, "default_service_account 'b'"),
])
def test_settings_refuse_guardrails_that_refuse_the_defaults(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OperatorSettings(**settings)
