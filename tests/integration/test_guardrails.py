"""Admin guardrails and API keys, with an operator configured as a cluster admin would (allowed image
prefixes and service accounts), watching its own namespaces (``gr-*``).

- a run asking for another image or service account fails with InvalidSpec naming the field, and
  nothing is created; a pipeline fails before its first stage;
- each endpoint's key reaches its pod only as a ``secretKeyRef`` of its own variable: no key value is
  in a ConfigMap, an Event, a pod spec or the operator's log.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from typing import Any

import pytest
from clusterkit import Cluster, Operator, eventually
from test_operator_pipeline import LABEL_REPORT, POLICY, STORAGE

from rlaif_jobs.apikeys import api_key_env
from rlaif_jobs.config.common import SecretKeyRef

KEYS = {"labeler-key": "sk-labeler-7Q2pXv9", "scorer-key": "sk-scorer-Lm4Tz81", "judge-key": "sk-judge-Rf6Nw30"}


def endpoint_labeler(url: str, secret: str) -> dict[str, Any]:
    return {"model": {"uri": "builtin://qwen2.5-coder-1.5b-instruct"}, "engine": "openai", "useChatTemplate": False,
            "endpoint": {"url": url, "apiKeySecret": {"name": secret, "key": "api-key"}}}


@pytest.fixture(scope="module")
def guarded(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    op = Operator(cluster, tmp_path_factory.mktemp("guarded") / "operator.log", "gr-*", recheck_seconds="1",
                  allowed_image_prefixes='["ghcr.io/rlaif/"]', allowed_service_accounts='["rlaif-workload"]')
    op.start()
    yield op
    op.stop()


@pytest.fixture
def gns(cluster: Cluster, guarded: Operator) -> Iterator[str]:
    name = cluster.new_namespace("gr")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def run(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "rlaif.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def failed(cluster: Cluster, kind: str, name: str, ns: str) -> dict[str, Any]:
    return eventually(lambda: (c := cluster.condition(kind, name, ns, "Failed")) and c["status"] == "True" and c,
                      what=f"{kind}/{name} Failed")


def test_runs_outside_the_guardrails_fail_with_invalid_spec(cluster: Cluster, gns: str) -> None:
    standalone = {**copy.deepcopy(POLICY), "reward": {"modelUri": "/data/rm"}, "evaluation": {"enabled": False}}
    image = {**standalone, "runtime": {"image": "docker.io/someone/miner:1"}}
    account = {**standalone, "runtime": {"serviceAccountName": "cluster-admin"}}
    allowed = {**standalone, "runtime": {**STORAGE, "serviceAccountName": "rlaif-workload",
                                         "image": "ghcr.io/rlaif/trainer:0.1.0-cu128"}}
    pipeline = {"labeling": {"labeler": endpoint_labeler("http://l:8000/v1", "labeler-key"),
                             "dataset": {"uri": "builtin://datasets/checkable-pairs"}, "output": {"uri": "/d/l"}},
                "rewardModel": {"baseModel": {"uri": "builtin://smollm2-135m-instruct"}, "output": {"uri": "/d/r"}},
                "policy": {**copy.deepcopy(POLICY), "runtime": {"image": "quay.io/x/trainer:1"}}}
    cluster.apply([run("PolicyRLRun", "image", image), run("PolicyRLRun", "account", account),
                   run("PolicyRLRun", "allowed", allowed), run("RLAIFPipeline", "pipe", pipeline)], gns)

    cond = failed(cluster, "prl", "image", gns)
    assert cond["reason"] == "InvalidSpec"
    assert "spec.runtime.image 'docker.io/someone/miner:1' is not allowed on this cluster" in cond["message"]
    assert "ghcr.io/rlaif/" in cond["message"]
    cond = failed(cluster, "prl", "account", gns)
    assert cond["reason"] == "InvalidSpec" and "spec.runtime.serviceAccountName 'cluster-admin'" in cond["message"]
    cond = failed(cluster, "rlp", "pipe", gns)
    assert cond["reason"] == "InvalidSpec" and "spec.policy.runtime.image 'quay.io/x/trainer:1'" in cond["message"]
    job = eventually(lambda: cluster.get("job", "allowed-policy", gns), what="the allowed run's Job")
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "rlaif-workload"
    assert cluster.get("job", "image-policy", gns) is None and cluster.get("job", "account-policy", gns) is None
    assert cluster.get("plj", "pipe-label", gns) is None, "a refused pipeline starts no stage"
    event = next(e for e in cluster.events(gns, "image") if e["reason"] == "InvalidSpec")  # kubectl describe
    assert event["type"] == "Warning" and "docker.io/someone/miner:1" in event["message"]


def test_no_key_reaches_a_configmap_an_event_or_a_log(cluster: Cluster, guarded: Operator, gns: str) -> None:
    for secret, value in KEYS.items():
        cluster.kubectl("create", "secret", "generic", secret, "-n", gns, f"--from-literal=api-key={value}")
    policy = copy.deepcopy(POLICY)
    policy["reward"] = {"direct": {"labeler": endpoint_labeler("http://scorer:8000/v1", "scorer-key")}}
    policy["evaluation"] = {"judge": endpoint_labeler("https://judge.example.com/v1", "judge-key")}
    labeling = {"labeler": endpoint_labeler("http://labeler:8000/v1", "labeler-key"),
                "dataset": {"uri": "builtin://datasets/checkable-pairs"}, "output": {"uri": "/data/l"},
                "runtime": STORAGE}
    # And one whose Secret is missing: its condition and Event name the Secret, never a value.
    missing = copy.deepcopy(labeling)
    missing["labeler"]["endpoint"]["apiKeySecret"]["name"] = "absent-key"
    cluster.apply([run("PolicyRLRun", "keys", policy), run("PreferenceLabelJob", "keys", labeling),
                   run("PreferenceLabelJob", "nokey", missing)], gns)
    job = eventually(lambda: cluster.get("job", "keys-policy", gns), what="the policy Job")
    eventually(lambda: cluster.get("job", "keys-label", gns), what="the labeling Job")
    eventually(lambda: cluster.pods_of("keys-label", gns), what="labeling pods")
    assert cluster.finish_pods("keys-label", gns, 0, LABEL_REPORT) == 1
    eventually(lambda: cluster.phase("plj", "keys", gns) == "Succeeded", what="labeling succeeded")
    eventually(lambda: (c := cluster.condition("plj", "nokey", gns, "InputsReady")) and c["reason"] == "SecretNotFound",
               what="SecretNotFound")

    # Each endpoint: its own variable, from its own Secret.
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env if e["name"].startswith("RLAIF_API_KEY_")}
    assert refs == {api_key_env(SecretKeyRef(name=s, key="api-key")): {"name": s, "key": "api-key"}
                    for s in ("scorer-key", "judge-key")}

    leaks = {v for value in KEYS.values() for v in (value, base64.b64encode(value.encode()).decode())}
    places = {
        "ConfigMaps": cluster.kubectl("get", "configmaps", "-n", gns, "-o", "json").stdout,
        "Events": cluster.kubectl("get", "events", "-n", gns, "-o", "json").stdout,
        "Jobs and pods": cluster.kubectl("get", "jobs,pods", "-n", gns, "-o", "json").stdout,
        "runs": cluster.kubectl("get", "plj,prl", "-n", gns, "-o", "json").stdout,
        "the operator's log": guarded.logs(tail=100_000),
    }
    assert "keys-label-config" in places["ConfigMaps"] and "SecretNotFound" in places["Events"]
    for where, text in places.items():
        assert not [leak for leak in leaks if leak in text], f"an API key reached {where}"
