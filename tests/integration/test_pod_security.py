"""Pod Security admission: the operator's stage pods are admitted where a namespace enforces the
"restricted" profile, and a pod that breaks it is refused with the API server's own message.

Written to pass unchanged on a real cluster (the built-in PodSecurity plugin); against the test API
server, ``testapi.admission`` plays that plugin and the Job controller creates the pods.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from clusterkit import Cluster, KubectlError, Operator, eventually
from test_operator_pipeline import LABELING, POLICY, REWARD

ENFORCE = "pod-security.kubernetes.io/enforce"
WARN = "pod-security.kubernetes.io/warn"
RESTRICTED_REFUSAL = (
    'pods "plain" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false'
    ' (container "main" must set securityContext.allowPrivilegeEscalation=false), unrestricted capabilities'
    ' (container "main" must set securityContext.capabilities.drop=["ALL"]), runAsNonRoot != true (pod or'
    ' container "main" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "main"'
    ' must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")')


def plain_pod(name: str, **container: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "busybox:1.36", **container}]}}


def label(cluster: Cluster, ns: str, level: str) -> None:
    cluster.kubectl("label", "namespace", ns, f"{ENFORCE}={level}", f"{WARN}={level}", "--overwrite")


def test_a_pod_breaking_restricted_is_refused_with_the_real_message(cluster: Cluster, ns: str) -> None:
    label(cluster, ns, "restricted")
    with pytest.raises(KubectlError) as refused:
        cluster.apply(plain_pod("plain"), ns)
    assert RESTRICTED_REFUSAL in str(refused.value)
    assert cluster.get("pod", "plain", ns) is None


def test_baseline_admits_a_plain_pod_but_refuses_a_privileged_one(cluster: Cluster, ns: str) -> None:
    label(cluster, ns, "baseline")
    cluster.apply(plain_pod("plain"), ns)
    with pytest.raises(KubectlError) as refused:
        cluster.apply(plain_pod("root", securityContext={"privileged": True}), ns)
    assert ('pods "root" is forbidden: violates PodSecurity "baseline:latest": privileged (container "main"'
            ' must not set securityContext.privileged=true)') in str(refused.value)


@pytest.mark.usefixtures("testapi_only")  # the test API server's Job controller creates the pods
def test_a_job_whose_pods_break_the_profile_reports_failed_create(cluster: Cluster, ns: str) -> None:
    label(cluster, ns, "restricted")
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "plain"},
           "spec": {"template": {"spec": {"restartPolicy": "Never", **plain_pod("x")["spec"]}}}}
    applied = cluster.apply(job, ns)
    # (the test API server sends warnings with ' for ", a real one escapes them)
    assert "would violate PodSecurity" in applied.stderr and "restricted:latest" in applied.stderr
    event = eventually(lambda: next((e for e in cluster.events(ns, "plain") if e["reason"] == "FailedCreate"), None),
                       what="FailedCreate")
    assert "is forbidden: violates PodSecurity" in event["message"] and cluster.pods_of("plain", ns) == []


@pytest.mark.usefixtures("testapi_only")
def test_stage_pods_are_admitted_under_restricted(cluster: Cluster, operator: Operator, ns: str) -> None:
    label(cluster, ns, "restricted")
    policy = copy.deepcopy(POLICY)
    policy["evaluation"] = {"enabled": False}  # a standalone run has no labeler to judge with
    policy["reward"] = {"modelUri": "/data/rm"}
    policy["resources"] = {"nodes": 2}
    stages = [("PreferenceLabelJob", "psa-label", LABELING, "psa-label-label", 1),
              ("RewardModelRun", "psa-reward", {**REWARD, "preferences": {"uri": "/data/labels.jsonl"}},
               "psa-reward-reward", 2),
              ("PolicyRLRun", "psa-policy", policy, "psa-policy-policy", 2)]
    cluster.apply([{"apiVersion": "rlaif.dev/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
                   for kind, name, spec, _, _ in stages], ns)
    for _, _, _, job, pods in stages:
        eventually(lambda j=job, n=pods: len(cluster.pods_of(j, ns)) == n, what=f"{pods} pods of {job}")
        assert not [e for e in cluster.events(ns, job) if e["reason"] == "FailedCreate"]
    warned = [w for w in cluster.testapi.store.warnings if w[0] == ns and "PodSecurity" in w[2]]
    assert warned == [], "the Jobs' pod templates must not even warn under restricted"
