"""``rlaif submit / status / logs / wait`` against the test API server, run in process from a kubeconfig as
a user would (``--kubeconfig``, ``-n``).

The test plays the operator (it writes statuses through the status subresource) and the kubelet (pods
and what they logged), so no operator process is needed. Its own server, serving CRDs generated from
the API models as they are now (the status fields the verbs read are new), keeps the suite's shared
server and its RBAC audit (which attributes every client) out of it.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from clusterkit import Cluster

from rlaif_operator import cli
from rlaif_operator.api.crdgen import render_all
from rlaif_operator.clusterctl.connect import Target, connect

STORAGE = {"storage": {"pvcName": "rlaif-data"}}
LABELING = {
    "labeler": {"model": {"uri": "builtin://qwen2.5-coder-1.5b-instruct", "dtype": "float32"}, "engine": "vllm"},
    "dataset": {"uri": "builtin://datasets/checkable-pairs", "limit": 48},
    "output": {"uri": "/data/run/label"},
    "resources": {"gpusPerNode": 1},
    "runtime": STORAGE,
}
REWARD = {"baseModel": {"uri": "builtin://smollm2-135m-instruct"}, "output": {"uri": "/data/run/reward"},
          "runtime": STORAGE}
POLICY = {"policy": {"uri": "builtin://smollm2-135m-instruct"},
          "prompts": {"uri": "builtin://datasets/checkable-prompts", "limit": 32},
          "output": {"uri": "/data/run/policy"}, "runtime": STORAGE}
NOW = "2025-05-01T12:00:00Z"


def pipeline(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "rlaif.dev/v1alpha1", "kind": "RLAIFPipeline", "metadata": {"name": name, **meta},
            "spec": {"labeling": copy.deepcopy(LABELING), "rewardModel": copy.deepcopy(REWARD),
                     "policy": copy.deepcopy(POLICY)}}


def label_job(name: str, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "rlaif.dev/v1alpha1", "kind": "PreferenceLabelJob", "metadata": {"name": name, **meta},
            "spec": copy.deepcopy(LABELING)}


def cond(ctype: str, status: str, reason: str, message: str = "", generation: int = 1) -> dict[str, Any]:
    return {"type": ctype, "status": status, "reason": reason, "message": message, "lastTransitionTime": NOW,
            "observedGeneration": generation}


def kstatus(phase: str, reason: str, message: str = "") -> list[dict[str, Any]]:
    return [cond("Ready", "True" if phase == "Succeeded" else "False", reason, message),
            cond("Reconciling", "False" if phase in ("Succeeded", "Failed") else "True", reason, message),
            cond("Stalled", "True" if phase == "Failed" else "False", reason, message)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from testapi import TestApiServer

    crds = tmp_path_factory.mktemp("crds")
    for name, text in render_all().items():
        (crds / name).write_text(text)
    with TestApiServer(crds=crds, node_gpus=4) as api:
        yield Cluster(api.kubeconfig, str(tmp_path_factory.mktemp("kubectl-cache")), testapi=api)


@pytest.fixture
def ns(cluster: Cluster) -> str:
    return cluster.new_namespace("verbs")


@pytest.fixture
def target(cluster: Cluster, ns: str) -> Target:
    return connect(cluster.kubeconfig, namespace=ns)


class Rlaif:
    """``rlaif VERB ...`` in process, pointed at the test cluster's kubeconfig and the test's namespace."""

    def __init__(self, cluster: Cluster, ns: str, capsys: pytest.CaptureFixture[str]):
        self.cluster, self.ns, self.capsys = cluster, ns, capsys

    def __call__(self, *args: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = cli.main([*args, "--kubeconfig", self.cluster.kubeconfig, "-n", self.ns])
        out = self.capsys.readouterr()
        return code, out.out, out.err


@pytest.fixture
def rlaif(cluster: Cluster, ns: str, capsys: pytest.CaptureFixture[str]) -> Rlaif:
    return Rlaif(cluster, ns, capsys)


def write(path: Path, *docs: dict[str, Any]) -> str:
    path.write_text("".join(f"---\n{yaml.safe_dump(d)}" for d in docs))
    return str(path)


def set_status(target: Target, kind: str, name: str, status: dict[str, Any]) -> None:
    """What the operator would write (a merge patch of the status subresource)."""
    target.kube.patch_status("rlaif.dev/v1alpha1", kind, target.namespace, name, status)


# --- submit ---------------------------------------------------------------------------------------------

def test_submit_creates_then_reports_unchanged_and_configured(rlaif: Rlaif, cluster: Cluster, ns: str,
                                                              tmp_path: Path) -> None:
    manifest = write(tmp_path / "run.yaml", pipeline("demo"), label_job("solo"))
    code, out, _ = rlaif("submit", manifest, "--dry-run")
    assert code == 0 and out.splitlines() == ["RLAIFPipeline/demo created (server dry run)",
                                              "PreferenceLabelJob/solo created (server dry run)"]
    assert cluster.get("rlp", "demo", ns) is None  # a dry run changes nothing

    code, out, _ = rlaif("submit", manifest)
    assert code == 0 and out.splitlines() == ["RLAIFPipeline/demo created", "PreferenceLabelJob/solo created"]
    stored = cluster.get("rlp", "demo", ns)
    assert stored is not None and stored["spec"]["labeling"]["dataset"]["limit"] == 48

    code, out, _ = rlaif("submit", manifest)
    assert code == 0 and out.splitlines() == ["RLAIFPipeline/demo unchanged", "PreferenceLabelJob/solo unchanged"]

    relabeled = write(tmp_path / "relabeled.yaml", pipeline("demo", labels={"team": "nlp"}), label_job("solo"))
    code, out, _ = rlaif("submit", relabeled)
    assert code == 0 and out.splitlines() == ["RLAIFPipeline/demo configured", "PreferenceLabelJob/solo unchanged"]
    assert (cluster.get("rlp", "demo", ns) or {})["metadata"]["labels"]["team"] == "nlp"

    # Specs are immutable: the API server refuses, and submit says so and fails.
    changed = pipeline("demo", labels={"team": "nlp"})
    changed["spec"]["labeling"]["dataset"]["limit"] = 10
    code, out, err = rlaif("submit", write(tmp_path / "changed.yaml", changed))
    assert code == 1 and out == ""
    assert "RLAIFPipeline/demo refused: 422" in err and "immutable" in err.lower()


def test_submit_refuses_an_invalid_file_and_creates_nothing(rlaif: Rlaif, cluster: Cluster, ns: str,
                                                            tmp_path: Path) -> None:
    bad = label_job("bad")
    del bad["spec"]["dataset"]
    manifest = write(tmp_path / "bad.yaml", label_job("good"), bad)
    code, out, err = rlaif("submit", manifest)
    assert code == 1 and out == ""
    assert "INVALID (nothing submitted)" in err and "dataset" in err
    assert cluster.get("plj", "good", ns) is None


# --- status ---------------------------------------------------------------------------------------------

def running_pipeline(target: Target) -> None:
    set_status(target, "RLAIFPipeline", "demo", {
        "phase": "Running", "message": "stage demo-reward is running", "observedGeneration": 1,
        "currentStage": "demo-reward",
        "conditions": [cond("InputsReady", "True", "InputsGiven"), cond("Running", "True", "StageRunning"),
                       cond("Succeeded", "False", "NotFinished"), cond("Failed", "False", "NoFailure"),
                       *kstatus("Running", "StageRunning")],
        "stages": [{"kind": "PreferenceLabelJob", "name": "demo-label", "phase": "Succeeded"},
                   {"kind": "RewardModelRun", "name": "demo-reward", "phase": "Running",
                    "progress": "training 120/400 steps (30%)", "eta": "3m06s"},
                   {"kind": "PolicyRLRun", "name": "demo-policy", "phase": "Waiting"}],
        "progress": {"phase": "training", "done": 120, "total": 400, "unit": "steps", "percent": 30,
                     "rate": 1.5, "eta": "3m06s", "summary": "reward: training 120/400 steps (30%)",
                     "metrics": {"loss": 0.52}, "observedTime": NOW},
        "outputs": {"labels": "/data/run/label/labels.jsonl"}, "metrics": {"alignment": 0.81},
    })


def test_status_lists_and_describes(rlaif: Rlaif, cluster: Cluster, target: Target, ns: str,
                                    tmp_path: Path) -> None:
    code, out, err = rlaif("status")
    assert code == 0 and f"no rlaif.dev resources in namespace {ns}" in err
    rlaif("submit", write(tmp_path / "run.yaml", pipeline("demo"), label_job("demo-label",
                                                                             labels={"rlaif.dev/pipeline": "demo"})))
    running_pipeline(target)

    code, out, _ = rlaif("status")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["KIND", "NAME", "PHASE", "PROGRESS", "ETA", "AGE"]
    assert lines[1].split()[:3] == ["RLAIFPipeline", "demo", "Running"]
    assert "reward: training 120/400 steps (30%)" in lines[1] and "3m06s" in lines[1]
    assert lines[2].split()[:5] == ["PreferenceLabelJob", "demo-label", "-", "-", "-"]  # not reconciled

    code, out, _ = rlaif("status", "demo")
    assert code == 0
    assert out.startswith(f"RLAIFPipeline/demo   namespace {ns}")
    for expected in ("Phase:       Running", "Message:     stage demo-reward is running",
                     "Progress:    reward: training 120/400 steps (30%)", "  Rate:      1.5 steps/s",
                     "  Metrics:   loss=0.52", "labels: /data/run/label/labels.jsonl", "alignment: 0.81"):
        assert expected in out, expected
    stage_line = next(line for line in out.splitlines() if "demo-reward" in line and "RewardModelRun" in line)
    assert stage_line.split()[:4] == ["*", "RewardModelRun", "demo-reward", "Running"]
    assert "training 120/400 steps (30%)" in stage_line and stage_line.endswith("3m06s")
    ready = next(line for line in out.splitlines() if line.strip().startswith("Ready "))
    assert ready.split()[:3] == ["Ready", "False", "StageRunning"]

    code, out, _ = rlaif("status", "plj/demo-label")
    assert code == 0 and "Phase:       - (not reconciled yet)" in out


def test_status_of_an_ambiguous_or_missing_name(rlaif: Rlaif, tmp_path: Path) -> None:
    rlaif("submit", write(tmp_path / "run.yaml", pipeline("twin"), label_job("twin")))
    code, out, err = rlaif("status", "twin")
    assert code == 1 and out == ""
    assert "twin is ambiguous" in err and "RLAIFPipeline and a PreferenceLabelJob" in err
    assert "rlaifpipeline/twin or preferencelabeljob/twin" in err
    assert rlaif("status", "rlaifpipeline/twin")[0] == 0
    code, _, err = rlaif("status", "nobody")
    assert code == 1 and "no rlaif.dev resource named nobody" in err


# --- logs -----------------------------------------------------------------------------------------------

def make_pod(cluster: Cluster, ns: str, name: str, job: str, index: int, container: str = "labeler") -> None:
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": {"batch.kubernetes.io/job-name": job},
                        "annotations": {"batch.kubernetes.io/job-completion-index": str(index)}},
           "spec": {"restartPolicy": "Never", "containers": [{"name": container, "image": "rlaif:test"}]}}
    cluster.apply(pod, ns)


def test_logs_read_the_rank0_pod_then_fall_back_to_the_kept_tail(rlaif: Rlaif, cluster: Cluster, target: Target,
                                                                 ns: str, tmp_path: Path) -> None:
    rlaif("submit", write(tmp_path / "run.yaml", pipeline("demo"), label_job("demo-label",
                                                                             labels={"rlaif.dev/pipeline": "demo"})))
    running_pipeline(target)
    set_status(target, "RLAIFPipeline", "demo", {"currentStage": "demo-label", "stages": [
        {"kind": "PreferenceLabelJob", "name": "demo-label", "phase": "Running"}]})
    set_status(target, "PreferenceLabelJob", "demo-label", {"phase": "Running", "observedGeneration": 1})

    code, _, err = rlaif("logs", "demo")  # the stage runs but its pods are not there yet
    assert code == 1 and "PreferenceLabelJob/demo-label" in err and "no kept log lines" not in err

    # the labeling Job's two shards (the Job is named demo-label-label)
    make_pod(cluster, ns, "demo-label-label-0-abcde", "demo-label-label", 0)
    make_pod(cluster, ns, "demo-label-label-1-fghij", "demo-label-label", 1)
    api = cluster.testapi
    api.append_log(ns, "demo-label-label-0-abcde", "loading labeler\nlabeled 10/48\nlabeled 20/48\n")
    api.append_log(ns, "demo-label-label-1-fghij", "shard 1 here\n")

    code, out, err = rlaif("logs", "demo")  # the pipeline's current stage, its shard 0
    assert code == 0 and out == "loading labeler\nlabeled 10/48\nlabeled 20/48\n"
    assert "pod demo-label-label-0-abcde (index 0" in err and "2 pod(s)" in err
    assert rlaif("logs", "plj/demo-label", "--tail", "1")[1] == "labeled 20/48\n"
    assert rlaif("logs", "demo", "--stage", "label", "--tail", "2")[1] == "labeled 10/48\nlabeled 20/48\n"

    code, out, _ = rlaif("logs", "demo-label", "--all-pods")
    assert code == 0
    assert out.splitlines() == ["==> pod demo-label-label-0-abcde (index 0, Pending) <==", "loading labeler",
                                "labeled 10/48", "labeled 20/48",
                                "==> pod demo-label-label-1-fghij (index 1, Pending) <==", "shard 1 here"]

    # the stage finished, the Job's TTL took the pods: the lines the operator kept
    set_status(target, "PreferenceLabelJob", "demo-label", {"phase": "Succeeded", "logTail": [
        "labeled 48/48", "wrote /data/run/label/labels.jsonl"]})
    cluster.kubectl("delete", "pod", "-n", ns, "-l", "batch.kubernetes.io/job-name=demo-label-label")
    code, out, err = rlaif("logs", "demo", "--stage", "demo-label")
    assert code == 0 and out == "labeled 48/48\nwrote /data/run/label/labels.jsonl\n"
    assert "are gone" in err and "status.logTail" in err
    assert rlaif("logs", "demo-label", "--tail", "1")[1] == "wrote /data/run/label/labels.jsonl\n"

    code, _, err = rlaif("logs", "demo-label", "--stage", "label")
    assert code == 1 and "--stage is for a pipeline" in err
    code, _, err = rlaif("logs", "demo", "--stage", "judge")
    assert code == 1 and "has no stage 'judge'" in err


# --- wait -----------------------------------------------------------------------------------------------

def finish(target: Target, kind: str, name: str, phase: str, message: str, after: float) -> threading.Thread:
    """Writes a finished status ``after`` seconds from now (the operator's part, while the verb waits)."""
    reason = "Completed" if phase == "Succeeded" else "JobFailed"

    def run() -> None:
        time.sleep(after)
        set_status(target, kind, name, {"phase": phase, "message": message, "observedGeneration": 1,
                                        "conditions": kstatus(phase, reason, message)})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_wait(rlaif: Rlaif, target: Target, tmp_path: Path) -> None:
    rlaif("submit", write(tmp_path / "run.yaml", label_job("ok"), label_job("broken"), label_job("slow")))
    for name in ("ok", "broken", "slow"):
        set_status(target, "PreferenceLabelJob", name, {"phase": "Running", "observedGeneration": 1,
                                                        "conditions": kstatus("Running", "JobRunning")})

    thread = finish(target, "PreferenceLabelJob", "ok", "Succeeded", "labeled 48 pairs", after=0.5)
    started = time.monotonic()
    code, out, _ = rlaif("wait", "ok", "--timeout", "30s")
    thread.join()
    assert code == 0 and out.strip() == "PreferenceLabelJob/ok: Ready (Succeeded)"
    assert time.monotonic() - started < 10

    finish(target, "PreferenceLabelJob", "broken", "Failed", "the labeler exited 1: CUDA out of memory",
           after=0).join()
    code, _, err = rlaif("wait", "plj/broken", "--for", "Ready", "--timeout", "30s")
    assert code == 1 and "PreferenceLabelJob/broken: Failed: the labeler exited 1: CUDA out of memory" in err
    assert rlaif("wait", "broken", "--for", "Failed")[0] == 0
    assert rlaif("wait", "broken", "--for", "Finished")[0] == 0
    assert rlaif("wait", "ok", "--for", "Failed")[0] == 1

    started = time.monotonic()
    code, _, err = rlaif("wait", "slow", "--timeout", "1s")
    assert code == 2 and "timed out after 1s waiting for Ready" in err and "Running" in err
    assert time.monotonic() - started < 5

    code, _, err = rlaif("wait", "slow", "--timeout", "soon")
    assert code == 1 and "--timeout 'soon'" in err


def test_a_missing_kubeconfig_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["status", "--kubeconfig", str(tmp_path / "nope")])
    assert code == 1 and capsys.readouterr().err.strip() == f"error: no kubeconfig at {tmp_path / 'nope'}:" \
        " set KUBECONFIG or pass --kubeconfig"


def test_the_context_namespace_is_the_default(cluster: Cluster, ns: str, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    config = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    config["contexts"].append({"name": "mine", "context": {**config["contexts"][0]["context"], "namespace": ns}})
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    assert connect(str(path), context="mine").namespace == ns
    assert connect(str(path)).namespace == "default"
    assert connect(str(path), context="mine", namespace="other").namespace == "other"
    monkeypatch.setenv("KUBECONFIG", str(path))  # as kubectl: KUBECONFIG when --kubeconfig is not given
    assert connect(context="mine").namespace == ns
