"""Builders: every manifest is validated against the real Kubernetes 1.32 schemas (kubernetes-validate,
strict: unknown fields are errors) and compared with a reviewed golden file.

Regenerate the golden files after an intended change: ``UPDATE_GOLDEN=1 pytest tests/unit/operator``.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from rlaif_jobs.apikeys import api_key_env
from rlaif_jobs.config import LabelConfig, PolicyConfig, RewardConfig
from rlaif_jobs.config.common import SecretKeyRef
from rlaif_operator.api import crdschema
from rlaif_operator.api.crdgen import build_crd
from rlaif_operator.api.kinds import KINDS, Resource
from rlaif_operator.builders import names
from rlaif_operator.builders.children import (
    build_pipeline_children,
    build_stage_children,
    spec_problems,
    storage_problems,
)
from rlaif_operator.builders.configmap import CONFIG_KEY
from rlaif_operator.builders.pod import referenced_secrets
from rlaif_operator.settings import OperatorSettings

GOLDEN = Path(__file__).parent / "golden"
SETTINGS = OperatorSettings(labeler_image="ghcr.io/rlaif/labeler:test", trainer_image="ghcr.io/rlaif/trainer:test",
                            default_service_account="rlaif-workload")
UID = "0b9f6c1e-0000-4000-8000-000000000001"

LABELING = {
    "labeler": {"model": {"uri": "hf://Qwen/Qwen2.5-7B-Instruct", "dtype": "bfloat16"}, "engine": "openai",
                "endpoint": {"url": "http://labeler:8000/v1", "apiKeySecret": {"name": "labeler", "key": "key"}}},
    "dataset": {"uri": "s3://bucket/pairs.jsonl"},
    "output": {"uri": "s3://bucket/run/label"},
    "numShards": 4,
    "resources": {"gpusPerNode": 1, "cpu": "8", "memory": "64Gi", "shmSize": "16Gi",
                  "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
                  "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                  "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                      "nodeSelectorTerms": [{"matchExpressions": [
                          {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["a"]}]}]}}},
                  "priorityClassName": "batch-high", "queueName": "gpu"},
    "runtime": {"hubTokenSecret": {"name": "hf", "key": "token"}, "serviceAccountName": "labeler",
                "env": [{"name": "VLLM_LOGGING_LEVEL", "value": "INFO"}],
                "storage": {"credentialsSecret": "s3-creds"},
                "backoffLimit": 2, "activeDeadlineSeconds": 86400, "ttlSecondsAfterFinished": 3600},
}
REWARD = {
    "baseModel": {"uri": "/models/sft"},
    "preferences": {"fromLabelJob": "labels"},
    "output": {"uri": "/data/run/reward"},
    "resources": {"gpusPerNode": 8, "nodes": 2, "memory": "512Gi"},
    "runtime": {"storage": {"pvcName": "rlaif-data", "mountPath": "/data"}},
}
POLICY = {
    "policy": {"uri": "/models/sft"},
    "prompts": {"uri": "/data/prompts.jsonl"},
    "reward": {"modelUri": "/data/run/reward/model"},
    "evaluation": {"enabled": False},  # a standalone run names its judge or disables evaluation
    "output": {"uri": "/data/run/policy"},
}


def resource(kind: str, name: str, spec: dict[str, Any], **labels: str) -> Resource:
    return KINDS[kind].model_validate({
        "apiVersion": "rlaif.dev/v1alpha1", "kind": kind,
        "metadata": {"name": name, "namespace": "research", "uid": UID, "generation": 1, "labels": labels},
        "spec": copy.deepcopy(spec)})


def validate_k8s(manifest: dict[str, Any]) -> None:
    """Raises if the manifest does not satisfy the Kubernetes 1.32 schema (strict: no unknown fields)."""
    kubernetes_validate.validate(manifest, "1.32.0", strict=True)


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the config.json in ConfigMaps) as readable literal blocks."""


_Dumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s,
                                                             style="|" if "\n" in s else None))


def check_golden(name: str, manifests: list[dict[str, Any]]) -> None:
    path = GOLDEN / f"{name}.yaml"
    text = "---\n".join(yaml.dump(m, Dumper=_Dumper, sort_keys=False, width=110) for m in manifests)
    if os.environ.get("UPDATE_GOLDEN") or not path.exists():
        path.write_text(text)
    assert text == path.read_text(), f"{path.name} differs: review, then UPDATE_GOLDEN=1 to accept"


CASES = {
    "labeling-sharded-gpu-kueue": ("PreferenceLabelJob", "labels", LABELING, "/data/ignored"),
    "reward-two-nodes-pvc": ("RewardModelRun", "rm", REWARD, "/data/run/label/labels.jsonl"),
    "policy-cpu-defaults": ("PolicyRLRun", "pol", POLICY, None),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_stage_children_are_valid_kubernetes_and_match_golden(case: str) -> None:
    kind, name, spec, upstream = CASES[case]
    res = resource(kind, name, spec)
    children = build_stage_children(res, upstream if kind == "RewardModelRun" else None, SETTINGS)
    manifests = [children.config_map, *([children.service] if children.service else []), children.job,
                 *([children.merge_job] if children.merge_job else [])]
    for manifest in manifests:
        validate_k8s(manifest)
    check_golden(case, manifests)


def test_labeling_job_shards_by_completion_index() -> None:
    children = build_stage_children(resource("PreferenceLabelJob", "labels", LABELING), None, SETTINGS)
    job = children.job["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 4, 4)
    container = job["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "rlaif_jobs.label", "--config", "/etc/rlaif/config.json"]
    merge = children.merge_job
    assert merge is not None and merge["spec"]["completions"] == 1
    assert merge["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "--merge"
    assert merge["metadata"]["name"] == "labels-label-merge"


def test_every_pod_gets_gpus_shm_secrets_placement_and_termination_message() -> None:
    job = build_stage_children(resource("PreferenceLabelJob", "labels", LABELING), None, SETTINGS).job
    pod = job["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1" == c["resources"]["requests"]["nvidia.com/gpu"]
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}} in pod["volumes"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
    env = {e["name"]: e for e in c["env"]}
    assert env["HF_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "hf", "key": "token"}
    assert env[api_key_env(SecretKeyRef(name="labeler", key="key"))]["valueFrom"]["secretKeyRef"] == {
        "name": "labeler", "key": "key"}
    assert c["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
    assert pod["serviceAccountName"] == "labeler" and pod["priorityClassName"] == "batch-high"
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu" and pod["nodeSelector"]
    assert pod["restartPolicy"] == "Never"


def test_retry_policy_fails_fast_on_config_error_and_ignores_disruptions() -> None:
    spec = build_stage_children(resource("PreferenceLabelJob", "labels", LABELING), None, SETTINGS).job["spec"]
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3]}}
    assert rules[1] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    assert (spec["backoffLimit"], spec["activeDeadlineSeconds"], spec["ttlSecondsAfterFinished"]) == (2, 86400, 3600)


def test_a_gangs_job_fails_on_a_disruption_a_single_pods_job_replaces_it() -> None:
    """A preempted worker of a multi-node trainer fails its Job (FailJob), so that the operator restarts the
    whole group; every other Job replaces a disrupted pod (Ignore). Both keep the other rules in order."""
    disruption = [{"type": "DisruptionTarget", "status": "True"}]
    gang = build_stage_children(resource("RewardModelRun", "rm", REWARD), "/l.jsonl", SETTINGS).job["spec"]
    single = build_stage_children(resource("RewardModelRun", "rm", {**REWARD, "resources": {
        **REWARD["resources"], "nodes": 1}}), "/l.jsonl", SETTINGS).job["spec"]
    label = build_stage_children(resource("PreferenceLabelJob", "labels", LABELING), None, SETTINGS).job["spec"]
    assert gang["backoffLimit"] == 0
    assert gang["podFailurePolicy"]["rules"][1] == {"action": "FailJob", "onPodConditions": disruption}
    for spec in (single, label):
        assert spec["podFailurePolicy"]["rules"][1] == {"action": "Ignore", "onPodConditions": disruption}
    for spec in (gang, single, label):
        rules = spec["podFailurePolicy"]["rules"]
        assert [r.get("onExitCodes", {}).get("values") for r in rules] == [[3], None, [137]]


def test_kueue_queue_label_and_suspended_gang() -> None:
    job = build_stage_children(resource("PreferenceLabelJob", "labels", LABELING), None, SETTINGS).job
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu"
    assert job["spec"]["suspend"] is True
    plain = build_stage_children(resource("PolicyRLRun", "pol", POLICY), None, SETTINGS).job
    assert "suspend" not in plain["spec"] and "kueue.x-k8s.io/queue-name" not in plain["metadata"]["labels"]


def test_trainer_rendezvous_through_headless_service() -> None:
    children = build_stage_children(resource("RewardModelRun", "rm", REWARD), "/labels.jsonl", SETTINGS)
    service, job = children.service, children.job
    assert service is not None and service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    assert service["spec"]["selector"] == {"batch.kubernetes.io/job-name": "rm-reward"}
    pod = job["spec"]["template"]["spec"]
    assert pod["subdomain"] == service["metadata"]["name"]
    cmd = pod["containers"][0]["command"]
    # torchrun through rlaif_jobs.launch, which keeps a worker's exit code 3 (config error)
    assert cmd[:7] == ["python", "-m", "rlaif_jobs.launch", "--nnodes=2", "--nproc-per-node=8",
                       "--node-rank=$(JOB_COMPLETION_INDEX)", "--master-addr=rm-reward-0.rm-reward"]
    assert job["spec"]["completions"] == 2 and job["spec"]["parallelism"] == 2
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert "batch.kubernetes.io/job-completion-index" in env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"][
        "fieldPath"]


def test_config_map_holds_the_same_config_the_local_runner_writes() -> None:
    res = resource("RewardModelRun", "rm", REWARD)
    cm = build_stage_children(res, "/labels.jsonl", SETTINGS).config_map
    config = RewardConfig.model_validate(json.loads(cm["data"][CONFIG_KEY]))
    assert config.preferences_uri == "/labels.jsonl"
    assert config.base_model.uri == "/models/sft"
    LabelConfig.model_validate(json.loads(build_stage_children(
        resource("PreferenceLabelJob", "l", LABELING), None, SETTINGS).config_map["data"][CONFIG_KEY]))
    PolicyConfig.model_validate(json.loads(build_stage_children(
        resource("PolicyRLRun", "p", POLICY), None, SETTINGS).config_map["data"][CONFIG_KEY]))


def test_children_are_owned_named_and_labelled_deterministically() -> None:
    res = resource("RewardModelRun", "rm", REWARD)
    first = build_stage_children(res, "/l.jsonl", SETTINGS)
    second = build_stage_children(res, "/l.jsonl", SETTINGS)
    assert first == second
    for manifest in (first.config_map, first.service, first.job):
        assert manifest is not None
        meta = manifest["metadata"]
        assert meta["ownerReferences"] == [{"apiVersion": "rlaif.dev/v1alpha1", "kind": "RewardModelRun",
                                            "name": "rm", "uid": UID, "controller": True,
                                            "blockOwnerDeletion": True}]
        assert meta["labels"][names.LABEL_INSTANCE] == "rm"
        assert meta["labels"][names.LABEL_MANAGED_BY] == "rlaif-operator"
        assert meta["namespace"] == "research"


def test_service_name_starts_with_a_letter() -> None:
    res = resource("PolicyRLRun", "7b-policy", {**POLICY, "resources": {**POLICY.get("resources", {}), "nodes": 2}})
    service = build_stage_children(res, None, SETTINGS).service
    assert service is not None and service["metadata"]["name"] == "r7b-policy-policy"


def test_one_node_trainer_meets_on_loopback_without_a_service() -> None:
    """One node: no Service to create (one write less per stage), the workers dial 127.0.0.1; the
    NetworkPolicy stays (the rendezvous store listens on every interface of the pod)."""
    children = build_stage_children(resource("RewardModelRun", "rm", {**REWARD, "resources": {
        **REWARD["resources"], "nodes": 1}}), "/l.jsonl", SETTINGS)
    assert children.service is None and children.network_policy is not None
    pod = children.job["spec"]["template"]["spec"]
    assert "subdomain" not in pod
    assert "--master-addr=127.0.0.1" in pod["containers"][0]["command"]
    assert children.before_job() == [children.config_map, children.network_policy]


def test_pipeline_children_are_owned_stage_resources_wired_by_name() -> None:
    pipe = resource("RLAIFPipeline", "demo", {"labeling": LABELING, "rewardModel": {
        k: v for k, v in REWARD.items() if k != "preferences"}, "policy": {
        k: v for k, v in POLICY.items() if k not in ("reward", "evaluation")}}, team="alignment")
    children = build_pipeline_children(pipe)
    assert [(c["kind"], c["metadata"]["name"]) for c in children] == [
        ("PreferenceLabelJob", "demo-label"), ("RewardModelRun", "demo-reward"), ("PolicyRLRun", "demo-policy")]
    assert children[1]["spec"]["preferences"] == {"fromLabelJob": "demo-label"}
    assert children[2]["spec"]["reward"] == {"fromRewardModelRun": "demo-reward"}
    # evaluation judged by the labeling stage's labeler, with its task as the rubric (issue 9)
    assert children[2]["spec"]["evaluation"]["judge"] == children[0]["spec"]["labeler"]
    assert children[2]["spec"]["evaluation"]["task"] == LABELING.get("prompt", {}).get("task", "summarization")
    for child in children:
        # As the API server will: the generated CRD's schema and CEL rules accept the child.
        assert crdschema.validate(crdschema.crd_schema(build_crd(KINDS[child["kind"]])), child) == []
        assert child["metadata"]["ownerReferences"][0]["kind"] == "RLAIFPipeline"
        assert child["metadata"]["labels"]["team"] == "alignment"
        assert child["metadata"]["labels"]["rlaif.dev/pipeline"] == "demo"
        KINDS[child["kind"]].model_validate({**child, "metadata": {**child["metadata"], "uid": UID}})
    check_golden("pipeline-children", children)


def test_referenced_secrets_and_gpu_limit() -> None:
    res = resource("PreferenceLabelJob", "labels", LABELING)
    assert referenced_secrets(res) == [("hf", "token"), ("labeler", "key"), ("s3-creds", None)]
    assert spec_problems(res, OperatorSettings(max_gpus_per_node=8)) == []
    big = resource("RewardModelRun", "rm", REWARD)
    problems = spec_problems(big, OperatorSettings(max_gpus_per_node=4))
    assert any("gpusPerNode is 8" in p and "at most 4" in p for p in problems)


@pytest.mark.parametrize(("spec", "expected"), [
    ({"output": {"uri": "s3://b/run"}, "baseModel": {"uri": "hf://org/m"}}, []),
    ({"output": {"uri": "s3://b/run"}, "baseModel": {"uri": "Qwen/Qwen2.5-7B"}}, []),  # a hub id, not a path
    ({"output": {"uri": "/data/run"}}, ["spec.output.uri is the path /data/run, but no volume is mounted"]),
    ({"output": {"uri": "runs/rm"}}, ["spec.output.uri is the path runs/rm, but no volume is mounted"]),
    ({"output": {"uri": "/data/run"}, "runtime": {"storage": {"pvcName": "v"}}}, []),
    ({"output": {"uri": "file:///scratch/run"}, "runtime": {"storage": {"pvcName": "v", "mountPath": "/data"}}},
     ["spec.output.uri is the path file:///scratch/run, outside spec.runtime.storage.mountPath (/data)"]),
    ({"output": {"uri": "/data/run"}, "baseModel": {"uri": "/models/sft"}, "runtime": {"storage": {"pvcName": "v"}}},
     ["spec.baseModel.uri is the path /models/sft, outside"]),
])
def test_storage_problems_name_the_field_and_the_fix(spec: dict[str, Any], expected: list[str]) -> None:
    full = {"baseModel": {"uri": "builtin://smollm2-135m-instruct"},
            "preferences": {"uri": "s3://b/labels.jsonl"}, **spec}
    problems = storage_problems(resource("RewardModelRun", "rm", full))
    assert len(problems) == len(expected)
    for problem, start in zip(problems, expected, strict=True):
        assert problem.startswith(start)
        assert "pvcName" in problem or "put it under" in problem
        assert "s3://" in problem


def test_kubernetes_validate_rejects_a_broken_manifest() -> None:
    """The validation above has teeth: the same schema rejects a wrong type, naming the field."""
    job = build_stage_children(resource("PolicyRLRun", "pol", POLICY), None, SETTINGS).job
    job["spec"]["completions"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError, match="two"):
        validate_k8s(job)
