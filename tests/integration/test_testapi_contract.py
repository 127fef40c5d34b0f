"""Contract tests: each pins one API-server behaviour the operator relies on.

They use kubectl only, so the same tests run unchanged against a real cluster when KUBECONFIG names
one (``KUBECONFIG=~/.kube/config pytest tests/integration/test_testapi_contract.py``); that is how the
test API server's emulation is checked against the real thing. The few that need to play the kubelet
or to shrink the watch history are marked and skipped on a real cluster.
"""

from __future__ import annotations

import json
import time
from typing import Any

from clusterkit import REPO, Cluster, eventually
from testapi import kubelet

PLJ = {"apiVersion": "rlaif.dev/v1alpha1", "kind": "PreferenceLabelJob", "metadata": {"name": "plj"},
       "spec": {"labeler": {"model": {"uri": "builtin://smollm2-135m-instruct"}},
                "dataset": {"uri": "/data/pairs.jsonl"}, "output": {"uri": "/data/out"}}}


def cm(name: str, labels: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels or {}, **extra},
            "data": {"k": "v"}}


def raw(cluster: Cluster, path: str) -> Any:
    return json.loads(cluster.kubectl("get", "--raw", path).stdout)


def watch_events(cluster: Cluster, path: str) -> list[dict[str, Any]]:
    out = cluster.kubectl("get", "--raw", path, timeout=30).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_server_sets_uid_resource_version_generation_and_creation_time(cluster: Cluster, ns: str) -> None:
    cluster.apply(PLJ, ns)
    obj = cluster.get("plj", "plj", ns)
    meta = obj["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1 and int(meta["resourceVersion"]) > 0
    cluster.kubectl("label", "plj", "plj", "-n", ns, "team=a")
    relabelled = cluster.get("plj", "plj", ns)["metadata"]
    assert int(relabelled["resourceVersion"]) > int(meta["resourceVersion"])
    assert relabelled["generation"] == 1  # metadata changes do not bump the generation
    assert relabelled["uid"] == meta["uid"]


def test_status_subresource_is_kept_apart_from_spec(cluster: Cluster, ns: str) -> None:
    cluster.apply(PLJ, ns)
    cluster.kubectl("patch", "plj", "plj", "-n", ns, "--type=merge", "-p", '{"status":{"phase":"Running"}}')
    assert cluster.phase("plj", "plj", ns) is None  # the main resource ignores status
    cluster.kubectl("patch", "plj", "plj", "-n", ns, "--subresource=status", "--type=merge",
                    "-p", '{"status":{"phase":"Running"},"spec":{"numShards":7}}')
    obj = cluster.get("plj", "plj", ns)
    assert obj["status"]["phase"] == "Running"
    assert obj["spec"].get("numShards", 1) == 1  # the status endpoint ignores spec
    assert obj["metadata"]["generation"] == 1


def test_schema_and_cel_validation_with_transition_rules(cluster: Cluster, ns: str) -> None:
    bad = json.loads(json.dumps(PLJ))
    bad["spec"]["numShards"] = 0
    result = cluster.apply(bad, ns, check=False)
    assert result.returncode != 0 and "spec.numShards" in result.stderr
    cluster.apply(PLJ, ns)
    # CEL transition rule (self == oldSelf): the spec is immutable.
    result = cluster.kubectl("patch", "plj", "plj", "-n", ns, "--type=merge", "-p", '{"spec":{"numShards":2}}',
                             check=False)
    assert result.returncode != 0 and "spec is immutable" in result.stderr


def test_schema_defaults_are_applied(cluster: Cluster, ns: str) -> None:
    cluster.apply(PLJ, ns)
    spec = cluster.get("plj", "plj", ns)["spec"]
    assert spec["numShards"] == 1 and spec["outputFormat"] == "jsonl"
    assert spec["labeler"]["engine"] == "vllm"  # nested defaults too


def test_unknown_fields_rejected_strictly(cluster: Cluster, ns: str) -> None:
    typo = json.loads(json.dumps(PLJ))
    typo["spec"]["numShard"] = 2
    result = cluster.apply(typo, ns, check=False)
    assert result.returncode != 0 and 'unknown field "spec.numShard"' in result.stderr


def test_unknown_status_fields_are_pruned(cluster: Cluster, ns: str) -> None:
    cluster.apply(PLJ, ns)
    cluster.kubectl("patch", "plj", "plj", "-n", ns, "--subresource=status", "--type=merge",
                    "-p", '{"status":{"phase":"Running","kopf":{"progress":{}}}}')
    status = cluster.get("plj", "plj", ns)["status"]
    assert status == {"phase": "Running"}


def test_label_and_field_selectors(cluster: Cluster, ns: str) -> None:
    cluster.apply([cm("a", {"tier": "x", "run": "1"}), cm("b", {"tier": "y"}), cm("c", {"tier": "z", "run": "2"})],
                  ns)

    def names(*args: str) -> list[str]:
        return sorted(i["metadata"]["name"] for i in cluster.json("get", "cm", "-n", ns, *args)["items"]
                      if i["metadata"]["name"] in "abc")

    assert names("-l", "tier=x") == ["a"]
    assert names("-l", "tier!=x") == ["b", "c"]
    assert names("-l", "tier in (x,z)") == ["a", "c"]
    assert names("-l", "tier notin (x)") == ["b", "c"]
    assert names("-l", "run") == ["a", "c"]
    assert names("-l", "!run") == ["b"]
    assert names("-l", "tier=z,run=2") == ["c"]
    assert names("--field-selector", "metadata.name=b") == ["b"]
    assert names("--field-selector", "metadata.name!=b") == ["a", "c"]


def test_lists_have_kinds_and_core_discovery_is_v1(cluster: Cluster, ns: str) -> None:
    cluster.apply([cm("a"), PLJ], ns)
    core = raw(cluster, f"/api/v1/namespaces/{ns}/configmaps")
    assert (core["kind"], core["apiVersion"]) == ("ConfigMapList", "v1")
    custom = raw(cluster, f"/apis/rlaif.dev/v1alpha1/namespaces/{ns}/preferencelabeljobs")
    assert (custom["kind"], custom["apiVersion"]) == ("PreferenceLabelJobList", "rlaif.dev/v1alpha1")
    assert custom["metadata"]["resourceVersion"]
    assert raw(cluster, "/api/v1")["groupVersion"] == "v1"
    resources = cluster.kubectl("api-resources", "--api-group=rlaif.dev", "-o", "name").stdout.split()
    assert set(resources) >= {"preferencelabeljobs.rlaif.dev", "rlaifpipelines.rlaif.dev"}
    assert "plj" in cluster.kubectl("get", "plj", "-n", ns).stdout  # kubectl get of both kinds works
    assert "a" in cluster.kubectl("get", "cm", "a", "-n", ns).stdout


def test_printer_columns_in_kubectl_get(cluster: Cluster, ns: str) -> None:
    cluster.apply(PLJ, ns)
    cluster.kubectl("patch", "plj", "plj", "-n", ns, "--subresource=status", "--type=merge",
                    "-p", '{"status":{"phase":"Running","metrics":{"alignment":0.75},'
                    '"progress":{"phase":"labeling","done":3,"summary":"labeling 3/4","eta":"9s",'
                    '"observedTime":"2026-01-01T00:00:00Z"}}}')
    header, row = cluster.kubectl("get", "plj", "plj", "-n", ns).stdout.splitlines()[:2]
    assert header.split()[:6] == ["NAME", "PHASE", "PROGRESS", "ETA", "LABELED", "ALIGNMENT"]
    assert row.split()[:5] == ["plj", "Running", "labeling", "3/4", "9s"] and "0.75" in row


def test_watch_resumes_from_a_resource_version(cluster: Cluster, ns: str) -> None:
    cluster.apply(cm("before"), ns)
    rv = raw(cluster, f"/api/v1/namespaces/{ns}/configmaps")["metadata"]["resourceVersion"]
    cluster.apply(cm("after"), ns)
    cluster.kubectl("delete", "cm", "before", "-n", ns)
    events = watch_events(cluster, f"/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={rv}"
                                   "&timeoutSeconds=1")
    seen = [(e["type"], e["object"]["metadata"]["name"]) for e in events if e["type"] != "BOOKMARK"]
    assert seen == [("ADDED", "after"), ("DELETED", "before")]
    everything = watch_events(cluster, f"/api/v1/namespaces/{ns}/configmaps?watch=1&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in everything
            if e["object"]["metadata"]["name"] in ("before", "after")] == [("ADDED", "after")]


def test_watch_with_a_label_selector_sees_objects_leave_it(cluster: Cluster, ns: str) -> None:
    cluster.apply(cm("w", {"tier": "x"}), ns)
    rv = raw(cluster, f"/api/v1/namespaces/{ns}/configmaps")["metadata"]["resourceVersion"]
    cluster.kubectl("label", "cm", "w", "-n", ns, "tier=y", "--overwrite")
    events = watch_events(cluster, f"/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={rv}"
                                   "&labelSelector=tier%3Dx&timeoutSeconds=1")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events if e["type"] != "BOOKMARK"] == \
        [("DELETED", "w")]


def test_too_old_resource_version_is_gone(cluster: Cluster, ns: str, testapi_only: None) -> None:
    cluster.apply(cm("x"), ns)
    # Forget the oldest events, as etcd compaction would (the test server's history is bounded too).
    cluster.testapi.call(lambda store: [store.history.popleft() for _ in range(5)])
    events = watch_events(cluster, f"/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion=1"
                                   "&timeoutSeconds=1")
    assert events and events[0]["type"] == "ERROR" and events[0]["object"]["code"] == 410


def test_optimistic_concurrency_conflict(cluster: Cluster, ns: str) -> None:
    cluster.apply(cm("occ"), ns)
    stale = cluster.get("cm", "occ", ns)
    cluster.kubectl("label", "cm", "occ", "-n", ns, "bump=1")
    stale["data"] = {"k": "stale"}
    result = cluster.kubectl("replace", "-f", "-", "-n", ns, input=json.dumps(stale), check=False)
    assert result.returncode != 0 and "the object has been modified" in result.stderr


def test_owner_reference_garbage_collection(cluster: Cluster, ns: str) -> None:
    cluster.apply(cm("owner"), ns)
    uid = cluster.get("cm", "owner", ns)["metadata"]["uid"]
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}
    cluster.apply([cm("child", ownerReferences=[ref]), cm("orphan", ownerReferences=[ref])], ns)
    cluster.kubectl("delete", "cm", "owner", "-n", ns, "--cascade=background")
    eventually(lambda: cluster.get("cm", "child", ns) is None, what="dependent collected")
    # --cascade=orphan keeps dependents and drops the reference.
    cluster.apply(cm("owner2"), ns)
    uid2 = cluster.get("cm", "owner2", ns)["metadata"]["uid"]
    cluster.apply(cm("kept", ownerReferences=[{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner2",
                                               "uid": uid2}]), ns)
    cluster.kubectl("delete", "cm", "owner2", "-n", ns, "--cascade=orphan")
    kept = eventually(lambda: (k := cluster.get("cm", "kept", ns)) and not k["metadata"].get("ownerReferences")
                      and k, what="orphaned dependent")
    assert kept["metadata"]["name"] == "kept"


def test_finalizers_hold_deletion(cluster: Cluster, ns: str) -> None:
    cluster.apply(cm("held", finalizers=["example.com/hold"]), ns)
    cluster.kubectl("delete", "cm", "held", "-n", ns, "--wait=false")
    held = cluster.get("cm", "held", ns)
    assert held is not None and held["metadata"]["deletionTimestamp"]
    cluster.kubectl("patch", "cm", "held", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    eventually(lambda: cluster.get("cm", "held", ns) is None, what="deleted once released")


def test_crd_created_at_runtime_is_served(cluster: Cluster, ns: str) -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.contract.rlaif.dev"},
           "spec": {"group": "contract.rlaif.dev", "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                      "spec": {"type": "object", "properties": {
                                          "size": {"type": "integer", "minimum": 1}}}}}}}]}}
    cluster.apply(crd, ns)
    try:
        cluster.wait("crd/widgets.contract.rlaif.dev", ns, "condition=Established")
        widget = {"apiVersion": "contract.rlaif.dev/v1", "kind": "Widget", "metadata": {"name": "w"},
                  "spec": {"size": 2}}
        eventually(lambda: cluster.apply(widget, ns, check=False).returncode == 0, what="widget accepted")
        assert cluster.get("widget", "w", ns)["spec"]["size"] == 2
        bad = {**widget, "metadata": {"name": "bad"}, "spec": {"size": 0}}
        assert cluster.apply(bad, ns, check=False).returncode != 0
    finally:
        cluster.kubectl("delete", "crd", "widgets.contract.rlaif.dev", check=False)


def test_namespace_deletion_removes_its_contents(cluster: Cluster) -> None:
    name = cluster.new_namespace("gone")
    cluster.apply([cm("a"), PLJ], name)
    cluster.kubectl("delete", "namespace", name, "--timeout=60s")
    assert cluster.kubectl("get", "namespace", name, check=False).returncode != 0


def test_events_by_involved_object(cluster: Cluster, ns: str) -> None:
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
             "involvedObject": {"kind": "ConfigMap", "name": "target", "namespace": ns},
             "reason": "Tested", "message": "hello", "type": "Normal"}
    cluster.apply(event, ns)
    assert [e["reason"] for e in cluster.events(ns, "target")] == ["Tested"]


# --- the Job controller and the kubelet a test plays ---------------------------------------------------


def indexed_job(name: str, completions: int = 2, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"completionMode": "Indexed", "completions": completions, "parallelism": completions,
                     "backoffLimit": 1, **spec,
                     "template": {"spec": {"restartPolicy": "Never", "containers": [
                         {"name": "main", "image": "busybox:1.36", "command": ["sh", "-c", "exit 0"]}]}}}}


def job_condition(cluster: Cluster, name: str, ns: str) -> str | None:
    job = cluster.get("job", name, ns) or {}
    return next((c["type"] for c in (job.get("status") or {}).get("conditions", [])
                 if c["type"] in ("Complete", "Failed") and c["status"] == "True"), None)


def test_indexed_job_gets_one_pod_per_index(cluster: Cluster, ns: str) -> None:
    cluster.apply(indexed_job("idx"), ns)
    pods = eventually(lambda: len(p := cluster.pods_of("idx", ns)) == 2 and p, what="2 pods")
    for pod in pods:
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        assert pod["spec"]["hostname"] == f"idx-{index}"
        assert any(e["name"] == "JOB_COMPLETION_INDEX" for e in pod["spec"]["containers"][0]["env"])
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"


def test_job_completes_when_every_index_succeeds(cluster: Cluster, ns: str, testapi_only: None) -> None:
    cluster.apply(indexed_job("done"), ns)
    eventually(lambda: len(cluster.pods_of("done", ns)) == 2, what="pods")
    cluster.finish_pods("done", ns, 0, {"outputs": {}, "metrics": {"x": 1}}, count=1)
    time.sleep(0.3)
    assert job_condition(cluster, "done", ns) is None
    cluster.finish_pods("done", ns, 0, "")
    eventually(lambda: job_condition(cluster, "done", ns) == "Complete", what="Complete")
    job = cluster.get("job", "done", ns)
    assert job["status"]["succeeded"] == 2 and job["status"]["completedIndexes"] == "0-1"
    pod = next(p for p in cluster.pods_of("done", ns) if p["status"]["containerStatuses"][0]["state"][
        "terminated"]["message"])
    assert json.loads(pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"])["metrics"] == {"x": 1}


def test_pod_failure_policy_and_backoff(cluster: Cluster, ns: str, testapi_only: None) -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3]}},
                        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}
    cluster.apply([indexed_job("cfg", 1, podFailurePolicy=policy), indexed_job("flaky", 1, podFailurePolicy=policy),
                   indexed_job("preempt", 1, podFailurePolicy=policy, backoffLimit=0)], ns)
    for name in ("cfg", "flaky", "preempt"):
        eventually(lambda n=name: cluster.pods_of(n, ns), what=f"{name} pod")
    cluster.finish_pods("cfg", ns, exit_code=3)
    eventually(lambda: job_condition(cluster, "cfg", ns) == "Failed", what="FailJob rule")
    failed = next(c for c in cluster.get("job", "cfg", ns)["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    cluster.finish_pods("flaky", ns, exit_code=1)  # counted: 1 <= backoffLimit 1, so a new pod
    eventually(lambda: len(cluster.pods_of("flaky", ns)) == 2, what="replacement")
    cluster.finish_pods("flaky", ns, exit_code=1)
    eventually(lambda: job_condition(cluster, "flaky", ns) == "Failed", what="backoff exhausted")
    cluster.finish_pods("preempt", ns, exit_code=137, disruption="PreemptionByScheduler")  # ignored
    eventually(lambda: len(cluster.pods_of("preempt", ns)) == 2, what="replacement after preemption")
    assert job_condition(cluster, "preempt", ns) is None


def test_fail_job_on_a_pod_condition_in_the_job_controllers_words(cluster: Cluster, ns: str,
                                                                   testapi_only: None) -> None:
    """A gang's Job fails on a disruption (FailJob on DisruptionTarget); the operator recognises it by the
    message Kubernetes writes (pkg/controller/job/pod_failure_policy.go): "Pod %s/%s has condition %v
    matching %v rule at index %d"."""
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3]}},
                        {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]}
    cluster.apply(indexed_job("gang", podFailurePolicy=policy, backoffLimit=0), ns)
    eventually(lambda: len(cluster.pods_of("gang", ns)) == 2, what="two pods")
    pod = cluster.pods_of("gang", ns)[0]
    victim = pod["metadata"]["name"]
    status = kubelet.finished(pod, 137, disruption="PreemptionByScheduler")  # as the kubelet reports it
    cluster.kubectl("patch", "pod", victim, "-n", ns, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": status}))
    eventually(lambda: job_condition(cluster, "gang", ns) == "Failed", what="FailJob on DisruptionTarget")
    failed = next(c for c in cluster.get("job", "gang", ns)["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "PodFailurePolicy"
    assert failed["message"] == f"Pod {ns}/{victim} has condition DisruptionTarget matching FailJob rule at index 1"
    assert not [p for p in cluster.pods_of("gang", ns) if p["status"].get("phase") in ("Pending", "Running")
                and not p["metadata"].get("deletionTimestamp")]  # the other worker is stopped too


def test_suspended_job_has_no_pods_until_resumed(cluster: Cluster, ns: str) -> None:
    cluster.apply(indexed_job("sus", suspend=True), ns)
    eventually(lambda: (j := cluster.get("job", "sus", ns)) and any(
        c["type"] == "Suspended" for c in j.get("status", {}).get("conditions", [])), what="Suspended")
    assert cluster.pods_of("sus", ns) == []
    cluster.kubectl("patch", "job", "sus", "-n", ns, "--type=merge", "-p", '{"spec":{"suspend":false}}')
    eventually(lambda: len(cluster.pods_of("sus", ns)) == 2, what="pods after resume")


def test_builtin_objects_are_validated_against_kubernetes_schemas(cluster: Cluster, ns: str) -> None:
    job = indexed_job("broken")
    job["spec"]["template"]["spec"]["restartPolicy"] = "Always"  # not allowed for Jobs
    result = cluster.apply(job, ns, check=False)
    assert result.returncode != 0 and "restartPolicy" in result.stderr
    job = indexed_job("typed")
    job["spec"]["completions"] = "two"
    result = cluster.apply(job, ns, check=False)
    assert result.returncode != 0


def test_crds_in_the_repository_are_established(cluster: Cluster) -> None:
    for path in sorted((REPO / "crds").glob("*.yaml")):
        name = path.name.split("_", 1)[1].removesuffix(".yaml") + ".rlaif.dev"
        crd = cluster.json("get", "crd", name)
        assert any(c["type"] == "Established" and c["status"] == "True" for c in crd["status"]["conditions"])
