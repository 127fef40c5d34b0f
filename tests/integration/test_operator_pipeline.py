"""The real operator (``kopf run``) against the test API server, driven with kubectl as a user would:
apply, watch Jobs appear, play the kubelet to finish pods, see the next stage start and status fill in.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from clusterkit import Cluster, Operator, eventually

pytestmark = pytest.mark.usefixtures("testapi_only")

LABEL_REPORT = {"outputs": {"labels": "/data/run/label/labels.jsonl"},
                "metrics": {"labeled": 48, "alignment": 0.81, "samePositionRate": 0.24}}
REWARD_REPORT = {"outputs": {"model": "/data/run/reward/model"}, "metrics": {"evalAccuracy": 0.71, "evalLoss": 0.58}}
POLICY_REPORT = {"outputs": {"model": "/data/run/policy/model"},
                 "metrics": {"meanReward": 0.31, "kl": 0.04, "winRate": 0.66}}

# Outputs are paths on a claim mounted at /data (the operator refuses paths on a pod's own disk).
STORAGE = {"storage": {"pvcName": "rlaif-data"}}
LABELING = {
    "labeler": {"model": {"uri": "builtin://qwen2.5-coder-1.5b-instruct", "dtype": "float32"}, "engine": "vllm"},
    "dataset": {"uri": "builtin://datasets/checkable-pairs", "limit": 48},
    "output": {"uri": "/data/run/label"},
    "resources": {"gpusPerNode": 1, "cpu": "4", "memory": "16Gi"},
    "runtime": STORAGE,
}
REWARD = {"baseModel": {"uri": "builtin://smollm2-135m-instruct"}, "output": {"uri": "/data/run/reward"},
          "resources": {"gpusPerNode": 2, "nodes": 2}, "runtime": STORAGE}
POLICY = {"policy": {"uri": "builtin://smollm2-135m-instruct"},
          "prompts": {"uri": "builtin://datasets/checkable-prompts", "limit": 32},
          "output": {"uri": "/data/run/policy"}, "runtime": STORAGE}


def pipeline(name: str, **overrides: Any) -> dict[str, Any]:
    spec = {"labeling": copy.deepcopy(LABELING), "rewardModel": copy.deepcopy(REWARD),
            "policy": copy.deepcopy(POLICY)}
    spec.update(overrides)
    return {"apiVersion": "rlaif.dev/v1alpha1", "kind": "RLAIFPipeline", "metadata": {"name": name}, "spec": spec}


def wait_job(cluster: Cluster, name: str, ns: str, timeout: float = 20) -> dict[str, Any]:
    return eventually(lambda: cluster.get("job", name, ns), timeout=timeout, what=f"Job {name}")


def test_pipeline_runs_stage_by_stage(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(pipeline("demo"), ns)

    # Stage 1 starts at once; the others wait on their upstream.
    job = wait_job(cluster, "demo-label-label", ns)
    assert job["spec"]["completionMode"] == "Indexed"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("PreferenceLabelJob", "demo-label", True)
    assert job["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "rlaif-operator"
    config = json.loads(cluster.get("configmap", "demo-label-label-config", ns)["data"]["config.json"])
    assert config["labeler"]["model"]["uri"] == "builtin://qwen2.5-coder-1.5b-instruct"
    waiting = eventually(lambda: (c := cluster.condition("rmr", "demo-reward", ns, "InputsReady"))
                         and c["reason"] == "WaitingForUpstream" and c, what="reward waits for labels")
    assert waiting["status"] == "False" and "demo-label" in waiting["message"]
    assert cluster.get("job", "demo-reward-reward", ns) is None

    # Labels done: the reward model starts on the labels URI the labeler reported.
    assert cluster.finish_pods("demo-label-label", ns, 0, LABEL_REPORT) == 1
    reward_job = wait_job(cluster, "demo-reward-reward", ns)
    config = json.loads(cluster.get("configmap", "demo-reward-reward-config", ns)["data"]["config.json"])
    assert config["preferencesUri"] == LABEL_REPORT["outputs"]["labels"]
    label = cluster.get("plj", "demo-label", ns)
    assert label["status"]["phase"] == "Succeeded"
    assert label["status"]["outputs"] == LABEL_REPORT["outputs"]
    assert label["status"]["metrics"]["alignment"] == pytest.approx(0.81)
    # Two nodes: an Indexed Job of two pods behind a headless Service, torchrun rank = completion index.
    assert reward_job["spec"]["completions"] == 2
    pod_spec = reward_job["spec"]["template"]["spec"]
    assert pod_spec["subdomain"] == "demo-reward-reward"
    assert "--master-addr=demo-reward-reward-0.demo-reward-reward" in pod_spec["containers"][0]["command"]
    service = cluster.get("service", "demo-reward-reward", ns)
    assert service["spec"]["clusterIP"] == "None"
    pods = eventually(lambda: len(p := cluster.pods_of("demo-reward-reward", ns)) == 2 and p, what="two pods")
    assert sorted(p["spec"]["hostname"] for p in pods) == ["demo-reward-reward-0", "demo-reward-reward-1"]

    assert cluster.finish_pods("demo-reward-reward", ns, 0, REWARD_REPORT) == 2
    wait_job(cluster, "demo-policy-policy", ns)
    config = json.loads(cluster.get("configmap", "demo-policy-policy-config", ns)["data"]["config.json"])
    assert config["rewardModelUri"] == REWARD_REPORT["outputs"]["model"]

    cluster.finish_pods("demo-policy-policy", ns, 0, POLICY_REPORT)
    cluster.wait("rlaifpipeline/demo", ns, "condition=Succeeded")
    status = cluster.get("rlp", "demo", ns)["status"]
    assert status["phase"] == "Succeeded"
    assert [s["phase"] for s in status["stages"]] == ["Succeeded"] * 3
    assert status["metrics"]["winRate"] == pytest.approx(0.66)
    assert status["metrics"]["evalAccuracy"] == pytest.approx(0.71)
    assert status["outputs"]["policy.model"] == "/data/run/policy/model"
    assert status["observedGeneration"] == 1
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "InputsReady": "True", "Running": "False", "Succeeded": "True", "Failed": "False",
        "Ready": "True", "Reconciling": "False", "Stalled": "False"}
    # the kstatus convention, as a user waits on it: kubectl wait --for=condition=Ready
    cluster.wait("rlaifpipeline/demo", ns, "condition=Ready")
    # kubectl get shows the printer columns; Events record each transition.
    table = cluster.kubectl("get", "rlp", "demo", "-n", ns).stdout
    assert "Succeeded" in table and "0.66" in table
    reasons = [e["reason"] for e in cluster.events(ns, "demo-reward")]
    assert "WaitingForUpstream" in reasons and "JobSucceeded" in reasons
    assert "AllStagesSucceeded" in [e["reason"] for e in cluster.events(ns, "demo")]


def test_sharded_labeling_merges_after_all_shards(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply({"apiVersion": "rlaif.dev/v1alpha1", "kind": "PreferenceLabelJob", "metadata": {"name": "shards"},
                   "spec": {**LABELING, "numShards": 3}}, ns)
    job = wait_job(cluster, "shards-label", ns)
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (3, 3)
    pods = eventually(lambda: len(p := cluster.pods_of("shards-label", ns)) == 3 and p, what="3 shard pods")
    assert sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods) == \
        ["0", "1", "2"]
    shard = {"outputs": {"labels": "/data/run/label/shard.jsonl"}, "metrics": {"labeled": 16}}
    cluster.finish_pods("shards-label", ns, 0, shard, count=2)
    assert cluster.get("job", "shards-label-merge", ns) is None  # not before every shard is done
    cluster.finish_pods("shards-label", ns, 0, shard)
    merge = wait_job(cluster, "shards-label-merge", ns)
    assert merge["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "--merge"
    cluster.finish_pods("shards-label-merge", ns, 0, LABEL_REPORT)
    cluster.wait("plj/shards", ns, "condition=Succeeded")
    status = cluster.get("plj", "shards", ns)["status"]
    assert status["outputs"]["labels"] == LABEL_REPORT["outputs"]["labels"]
    assert status["metrics"]["labeled"] == 48


def test_operator_restart_mid_pipeline(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(pipeline("restart"), ns)
    label_job = wait_job(cluster, "restart-label-label", ns)
    cluster.finish_pods("restart-label-label", ns, 0, LABEL_REPORT)
    reward_job = wait_job(cluster, "restart-reward-reward", ns)

    operator.stop()
    # While the operator is down, the reward model finishes.
    eventually(lambda: len(cluster.pods_of("restart-reward-reward", ns)) == 2, what="reward pods")
    cluster.finish_pods("restart-reward-reward", ns, 0, REWARD_REPORT)
    operator.start()

    wait_job(cluster, "restart-policy-policy", ns)
    cluster.wait("rmr/restart-reward", ns, "jsonpath={.status.phase}=Succeeded")
    # Nothing was made twice: the same Jobs (same uids), one of each, one Event per transition.
    assert cluster.get("job", "restart-label-label", ns)["metadata"]["uid"] == label_job["metadata"]["uid"]
    assert cluster.get("job", "restart-reward-reward", ns)["metadata"]["uid"] == reward_job["metadata"]["uid"]
    jobs = sorted(j["metadata"]["name"] for j in cluster.items("jobs", ns))
    assert jobs == ["restart-label-label", "restart-policy-policy", "restart-reward-reward"]
    assert len(cluster.items("plj", ns)) == 1
    succeeded = [e for e in cluster.events(ns, "restart-label") if e["reason"] == "JobSucceeded"]
    assert len(succeeded) == 1
    cluster.finish_pods("restart-policy-policy", ns, 0, POLICY_REPORT)
    cluster.wait("rlp/restart", ns, "condition=Succeeded")


def test_kopf_keeps_its_bookkeeping_out_of_status(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(pipeline("tidy"), ns)
    wait_job(cluster, "tidy-label-label", ns)
    cluster.wait("rlp/tidy", ns, "jsonpath={.status.phase}=Running")
    for kind in ("rlp", "plj", "rmr", "prl"):
        for obj in cluster.items(kind, ns):
            assert "kopf" not in obj.get("status", {})
            assert not any(k.startswith("kopf.zalando.org") for k in obj["metadata"].get("annotations", {}))
    # The API server pruned nothing the operator wrote: every field it sent is in the schema.
    warnings = cluster.testapi.call(lambda store: list(store.warnings))
    assert [w for w in warnings if (w[0] or "").startswith("op-")] == []


def test_metrics_and_liveness(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(pipeline("metered"), ns)
    cluster.wait("rlp/metered", ns, "jsonpath={.status.phase}=Running")
    assert operator.healthy()
    text = operator.metrics()
    assert 'rlaif_operator_reconciles_total{kind="RLAIFPipeline",result="ok"}' in text
    assert "rlaif_operator_reconcile_seconds_bucket" in text
    assert "rlaif_operator_children_created_total" in text
    # Per run: one series per phase, 1 for the current one; gone once the run is deleted.
    running = f'rlaif_run_phase{{kind="RLAIFPipeline",name="metered",namespace="{ns}",phase="Running"}} 1.0'
    assert running in text
    assert f'rlaif_run_phase{{kind="RLAIFPipeline",name="metered",namespace="{ns}",phase="Failed"}} 0.0' in text
    assert f'rlaif_run_duration_seconds{{kind="RLAIFPipeline",name="metered",namespace="{ns}"}}' in text
    assert f'rlaif_run_phase{{kind="PreferenceLabelJob",name="metered-label",namespace="{ns}"' in text
    cluster.kubectl("delete", "rlp", "metered", "-n", ns)
    eventually(lambda: 'name="metered"' not in operator.metrics(), what="the deleted run's series gone")


def test_python_m_rlaif_operator_starts_from_settings_alone(cluster: Cluster, tmp_path: Any) -> None:
    """The chart's entry point: ``python -m rlaif_operator`` configured by RLAIF_* only. It watches its
    own namespace pattern, so it does not meet the session's operator."""
    solo = Operator(cluster, tmp_path / "solo.log", "solo-*", recheck_seconds="1")
    ns = cluster.new_namespace("solo")
    try:
        solo.start(entry="module")
        cluster.apply({"apiVersion": "rlaif.dev/v1alpha1", "kind": "PreferenceLabelJob", "metadata": {"name": "solo"},
                       "spec": LABELING}, ns)
        wait_job(cluster, "solo-label", ns)
        cluster.finish_pods("solo-label", ns, 0, LABEL_REPORT)
        cluster.wait("plj/solo", ns, "condition=Succeeded")
        assert "rlaif_operator_reconciles_total" in solo.metrics()
    finally:
        solo.stop()
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)
