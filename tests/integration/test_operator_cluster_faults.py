"""The operator keeps its promises when the cluster misbehaves: lost Jobs, names taken by strangers,
pods that cannot start or die for memory, refused creates, paths that would not outlive a pod.

The real operator process against the test API server, driven with kubectl; the tests play the kubelet.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from clusterkit import Cluster, Operator, eventually
from test_operator_pipeline import LABEL_REPORT, LABELING, STORAGE, pipeline, wait_job
from testapi import kubelet

pytestmark = pytest.mark.usefixtures("testapi_only")


def plj(name: str, **overrides: Any) -> dict[str, Any]:
    spec = copy.deepcopy(LABELING)
    for key, value in overrides.items():
        spec[key] = {**spec.get(key, {}), **value} if isinstance(value, dict) else value
    return {"apiVersion": "rlaif.dev/v1alpha1", "kind": "PreferenceLabelJob", "metadata": {"name": name},
            "spec": spec}


def condition(cluster: Cluster, name: str, ns: str, ctype: str) -> dict[str, Any]:
    return cluster.condition("plj", name, ns, ctype) or {}


def reason_is(cluster: Cluster, name: str, ns: str, ctype: str, reason: str) -> bool:
    return condition(cluster, name, ns, ctype).get("reason") == reason


def events(cluster: Cluster, ns: str, name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in cluster.events(ns, name) if e["reason"] == reason]


def set_pod_status(cluster: Cluster, pod: dict[str, Any], status: dict[str, Any], ns: str) -> None:
    cluster.kubectl("patch", "pod", pod["metadata"]["name"], "-n", ns, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": status}))


def first_pod(cluster: Cluster, job: str, ns: str) -> dict[str, Any]:
    return eventually(lambda: (p := cluster.pods_of(job, ns)) and p[0], what=f"a pod of {job}")


# --- item 1: a lost Job is a fact, not a reason to start over ---------------------------------------------


def test_job_deleted_by_hand_fails_the_stage_until_a_restart_is_asked_for(
        cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(plj("lost"), ns)
    job = wait_job(cluster, "lost-label", ns)
    assert job["metadata"]["finalizers"] == ["rlaif.dev/result"]
    eventually(lambda: cluster.get("plj", "lost", ns)["status"].get("jobUid") == job["metadata"]["uid"],
               what="the Job's uid in status")
    first_pod(cluster, "lost-label", ns)

    cluster.kubectl("delete", "job", "lost-label", "-n", ns, "--wait=false")
    cluster.wait("plj/lost", ns, "condition=Failed")
    failed = condition(cluster, "lost", ns, "Failed")
    assert failed["reason"] == "JobDeleted"
    assert "rlaif.dev/restart" in failed["message"]
    assert [e["type"] for e in events(cluster, ns, "lost", "JobDeleted")] == ["Warning"]
    eventually(lambda: cluster.get("job", "lost-label", ns) is None, what="the Job released and gone")
    time.sleep(2)  # a few re-checks' worth: the operator must not bring the Job back on its own
    assert cluster.get("job", "lost-label", ns) is None
    assert cluster.phase("plj", "lost", ns) == "Failed"

    # Re-running is the user's explicit act.
    cluster.kubectl("annotate", "plj", "lost", "-n", ns, "rlaif.dev/restart=1")
    again = wait_job(cluster, "lost-label", ns)
    assert again["metadata"]["uid"] != job["metadata"]["uid"]
    eventually(lambda: events(cluster, ns, "lost", "Restarted"), what="the Restarted Event")
    first_pod(cluster, "lost-label", ns)
    cluster.finish_pods("lost-label", ns, 0, LABEL_REPORT)
    cluster.wait("plj/lost", ns, "condition=Succeeded")
    status = cluster.get("plj", "lost", ns)["status"]
    assert status["jobUid"] == again["metadata"]["uid"] and status["restartHandled"] == "1"
    # The same annotation again is not a new request; on a Succeeded stage a new one is refused, visibly.
    cluster.kubectl("annotate", "plj", "lost", "-n", ns, "rlaif.dev/restart=2", "--overwrite")
    eventually(lambda: events(cluster, ns, "lost", "RestartIgnored"), what="RestartIgnored")
    assert cluster.phase("plj", "lost", ns) == "Succeeded"
    assert cluster.get("job", "lost-label", ns)["metadata"]["uid"] == again["metadata"]["uid"]


def test_ttl_cannot_delete_a_job_before_its_result_is_recorded(
        cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(plj("quick", runtime={"ttlSecondsAfterFinished": 0}), ns)
    wait_job(cluster, "quick-label", ns)
    first_pod(cluster, "quick-label", ns)
    operator.stop()
    try:
        # The Job finishes and its TTL (0 s) fires while the operator is away: the finalizer holds it.
        cluster.finish_pods("quick-label", ns, 0, LABEL_REPORT)
        eventually(lambda: (cluster.get("job", "quick-label", ns) or {}).get("metadata", {}).get(
            "deletionTimestamp"), what="the TTL's delete")
        assert cluster.pods_of("quick-label", ns), "the pods (and their termination messages) are kept"
    finally:
        operator.start()
    cluster.wait("plj/quick", ns, "condition=Succeeded")
    status = cluster.get("plj", "quick", ns)["status"]
    assert status["outputs"] == LABEL_REPORT["outputs"]
    assert status["metrics"]["alignment"] == pytest.approx(0.81)
    eventually(lambda: cluster.get("job", "quick-label", ns) is None, what="the Job, released, is deleted")


def test_a_job_that_vanished_while_the_operator_was_away_is_reported_not_rerun(
        cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(plj("vanish"), ns)
    wait_job(cluster, "vanish-label", ns)
    eventually(lambda: cluster.get("plj", "vanish", ns)["status"].get("jobUid"), what="jobUid")
    operator.stop()
    try:
        # Someone strips the finalizer and deletes the Job: nothing is left to read the result from.
        cluster.kubectl("patch", "job", "vanish-label", "-n", ns, "--type=json",
                        "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]')
        cluster.kubectl("delete", "job", "vanish-label", "-n", ns)
    finally:
        operator.start()
    cluster.wait("plj/vanish", ns, "condition=Failed")
    failed = condition(cluster, "vanish", ns, "Failed")
    assert failed["reason"] == "JobDeleted"
    assert "/data/run/label/summary.json is on a volume the operator does not mount" in failed["message"]
    time.sleep(2)
    assert cluster.get("job", "vanish-label", ns) is None


# --- item 2: children are ours or untouched --------------------------------------------------------------


def test_a_strangers_configmap_keeps_the_stage_waiting_naming_it(
        cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.kubectl("create", "configmap", "taken-label-config", "-n", ns, "--from-literal=config.json={}")
    cluster.apply(plj("taken"), ns)
    eventually(lambda: reason_is(cluster, "taken", ns, "Running", "NameConflict"), what="NameConflict")
    running = condition(cluster, "taken", ns, "Running")
    assert "ConfigMap/taken-label-config (controlled by no object) already exists" in running["message"]
    assert cluster.phase("plj", "taken", ns) == "Waiting"
    assert [e["type"] for e in events(cluster, ns, "taken", "NameConflict")] == ["Warning"]
    assert cluster.get("job", "taken-label", ns) is None
    assert cluster.get("configmap", "taken-label-config", ns)["data"] == {"config.json": "{}"}  # untouched
    cluster.kubectl("delete", "configmap", "taken-label-config", "-n", ns)
    wait_job(cluster, "taken-label", ns, timeout=30)  # found on a re-check: no event announces the delete
    config = cluster.get("configmap", "taken-label-config", ns)
    assert config["metadata"]["ownerReferences"][0]["name"] == "taken"


def test_a_stage_recreated_before_the_garbage_collector_ran_never_adopts_the_old_children(
        cluster: Cluster, operator: Operator, ns: str) -> None:
    """Deleted and re-applied under the same name while the old ConfigMap and Job still wait for a slow
    garbage collector: the new stage waits (NameConflict) instead of mounting the old ConfigMap, then
    makes its own once the old ones are gone."""
    api = cluster.testapi
    api.call(lambda _: setattr(api.handler.controllers, "gc_delay_seconds", 4.0))
    try:
        cluster.apply(plj("again"), ns)
        old_job = wait_job(cluster, "again-label", ns)
        old_uid = cluster.get("plj", "again", ns)["metadata"]["uid"]
        cluster.kubectl("delete", "plj", "again", "-n", ns, "--wait=false")
        eventually(lambda: cluster.get("plj", "again", ns) is None, what="the old stage gone")
        cluster.apply(plj("again"), ns)
        new_uid = cluster.get("plj", "again", ns)["metadata"]["uid"]
        assert new_uid != old_uid
        eventually(lambda: reason_is(cluster, "again", ns, "Running", "NameConflict"), what="NameConflict")
        config = cluster.get("configmap", "again-label-config", ns)
        assert config["metadata"]["ownerReferences"][0]["uid"] == old_uid, "the old ConfigMap was left alone"
        job = eventually(lambda: (j := cluster.get("job", "again-label", ns)) and j["metadata"]["uid"] != old_job[
            "metadata"]["uid"] and j, timeout=40, what="the new stage's own Job, after the collector ran")
        assert job["metadata"]["ownerReferences"][0]["uid"] == new_uid
        config = cluster.get("configmap", "again-label-config", ns)
        assert config["metadata"]["ownerReferences"][0]["uid"] == new_uid
    finally:
        api.call(lambda _: setattr(api.handler.controllers, "gc_delay_seconds", 0.0))


# --- item 4: failures say what happened -------------------------------------------------------------------


def test_oom_killed_pods_name_the_memory_limit_and_the_fix(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(plj("hungry", runtime={"backoffLimit": 3}), ns)
    pod = first_pod(cluster, "hungry-label", ns)
    set_pod_status(cluster, pod, kubelet.finished(pod, 137, "", reason="OOMKilled"), ns)
    cluster.wait("plj/hungry", ns, "condition=Failed")
    failed = condition(cluster, "hungry", ns, "Failed")
    assert failed["reason"] == "OOMKilled"
    assert "memory limit 16Gi" in failed["message"] and "raise spec.resources.memory" in failed["message"]
    assert [e["type"] for e in events(cluster, ns, "hungry", "OOMKilled")] == ["Warning"]
    assert len(cluster.pods_of("hungry-label", ns)) == 1, "not retried unchanged (backoffLimit 3 left unused)"


def test_a_preempted_pod_is_still_replaced_not_failed_as_oom(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(plj("bumped", runtime={"backoffLimit": 0}), ns)
    first_pod(cluster, "bumped-label", ns)
    cluster.finish_pods("bumped-label", ns, exit_code=137, disruption="PreemptionByScheduler")
    eventually(lambda: len(cluster.pods_of("bumped-label", ns)) == 2, what="replacement after preemption")
    assert cluster.phase("plj", "bumped", ns) != "Failed"


def test_a_failed_pods_termination_message_is_on_the_stage(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(plj("crash", runtime={"backoffLimit": 0}), ns)
    first_pod(cluster, "crash-label", ns)
    cluster.finish_pods("crash-label", ns, 1, "Traceback (most recent call last):\nValueError: labeler.model: boom")
    cluster.wait("plj/crash", ns, "condition=Failed")
    failed = condition(cluster, "crash", ns, "Failed")
    assert failed["reason"] == "BackoffLimitExceeded"
    assert "the last failed pod said:" in failed["message"] and "ValueError: labeler.model: boom" in failed["message"]


@pytest.mark.parametrize(("reason", "message", "fix"), [
    ("ImagePullBackOff", 'Back-off pulling image "ghcr.io/rlaif/labeler:nope"', "check runtime.image"),
    ("CreateContainerConfigError", 'secret "hf" not found', "create the Secret"),
])
def test_pods_that_cannot_start_say_why(cluster: Cluster, operator: Operator, ns: str, reason: str, message: str,
                                        fix: str) -> None:
    name = reason.lower()[:12]
    cluster.apply(plj(name), ns)
    pod = first_pod(cluster, f"{name}-label", ns)
    set_pod_status(cluster, pod, kubelet.waiting(pod, reason, message), ns)
    eventually(lambda: reason_is(cluster, name, ns, "Running", reason), what=reason)
    running = condition(cluster, name, ns, "Running")
    assert message in running["message"] and fix in running["message"]
    assert cluster.phase("plj", name, ns) == "Pending"
    assert [e["type"] for e in events(cluster, ns, name, reason)] == ["Warning"]
    # The kubelet gets past it: the stage runs.
    set_pod_status(cluster, pod, kubelet.running(pod), ns)
    cluster.wait(f"plj/{name}", ns, "jsonpath={.status.phase}=Running")


def test_a_volume_that_cannot_mount_is_named(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(plj("mount"), ns)
    pod = first_pod(cluster, "mount-label", ns)
    set_pod_status(cluster, pod, kubelet.creating(pod), ns)
    pod = cluster.get("pod", pod["metadata"]["name"], ns)
    text = 'MountVolume.SetUp failed for volume "data": persistentvolumeclaim "rlaif-data" not found'
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(kubelet.mount_failed_event(pod, text)))
    eventually(lambda: reason_is(cluster, "mount", ns, "Running", "FailedMount"), what="FailedMount")
    assert text in condition(cluster, "mount", ns, "Running")["message"]
    assert events(cluster, ns, "mount", "FailedMount")


def test_pods_the_api_refuses_are_named(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(plj("nosa", runtime={"serviceAccountName": "labeler-sa"}), ns)
    wait_job(cluster, "nosa-label", ns)
    eventually(lambda: reason_is(cluster, "nosa", ns, "Running", "FailedCreate"), what="FailedCreate")
    running = condition(cluster, "nosa", ns, "Running")
    assert 'serviceaccount "labeler-sa" not found' in running["message"]
    assert [e["type"] for e in events(cluster, ns, "nosa", "FailedCreate")] == ["Warning"]
    cluster.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "labeler-sa"}}, ns)
    first_pod(cluster, "nosa-label", ns)
    cluster.wait("plj/nosa", ns, "jsonpath={.status.phase}=Running", timeout=30)


def test_a_child_the_api_rejects_fails_with_the_apis_message(
        cluster: Cluster, operator: Operator, ns: str) -> None:
    bad = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": "gpu"}}}
    cluster.apply(plj("affine", resources={"affinity": bad}), ns)
    cluster.wait("plj/affine", ns, "condition=Failed")
    failed = condition(cluster, "affine", ns, "Failed")
    assert failed["reason"] == "ChildRejected"
    assert "Job/affine-label" in failed["message"] and "nodeSelectorTerms" in failed["message"]
    assert [e["type"] for e in events(cluster, ns, "affine", "ChildRejected")] == ["Warning"]


# --- item 6: storage that outlives the pod ----------------------------------------------------------------


def test_paths_on_the_pods_own_disk_are_invalid_on_a_cluster(cluster: Cluster, operator: Operator, ns: str) -> None:
    spec = plj("ephemeral")
    spec["spec"]["runtime"] = {}
    cluster.apply(spec, ns)
    cluster.wait("plj/ephemeral", ns, "condition=Failed")
    failed = condition(cluster, "ephemeral", ns, "Failed")
    assert failed["reason"] == "InvalidSpec"
    assert "spec.output.uri is the path /data/run/label, but no volume is mounted" in failed["message"]
    assert "runtime.storage.pvcName" in failed["message"] and "s3://" in failed["message"]
    assert cluster.get("job", "ephemeral-label", ns) is None
    outside = plj("outside", output={"uri": "/scratch/labels"}, runtime=STORAGE)
    cluster.apply(outside, ns)
    cluster.wait("plj/outside", ns, "condition=Failed")
    assert "outside spec.runtime.storage.mountPath (/data)" in condition(cluster, "outside", ns, "Failed")["message"]


# --- item 5: gang semantics for multi-node training --------------------------------------------------------


def rmr(name: str, backoff_limit: int) -> dict[str, Any]:
    spec = {"baseModel": {"uri": "builtin://smollm2-135m-instruct"}, "output": {"uri": f"/data/{name}"},
            "preferences": {"uri": "/data/labels.jsonl"}, "resources": {"gpusPerNode": 1, "nodes": 2},
            "runtime": {**STORAGE, "backoffLimit": backoff_limit}}
    return {"apiVersion": "rlaif.dev/v1alpha1", "kind": "RewardModelRun", "metadata": {"name": name}, "spec": spec}


def test_one_failed_worker_restarts_the_whole_group(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(rmr("gang", backoff_limit=1), ns)
    job = wait_job(cluster, "gang-reward", ns)
    assert job["spec"]["backoffLimit"] == 0  # the Job never replaces one worker alone
    eventually(lambda: len(cluster.pods_of("gang-reward", ns)) == 2, what="two workers")
    cluster.finish_pods("gang-reward", ns, 1, "RuntimeError: NCCL error: unhandled system error", count=1)
    # The group failed as a whole: a new Job (all workers), the restart counted and announced.
    again = eventually(lambda: (j := cluster.get("job", "gang-reward", ns)) and j["metadata"]["uid"] !=
                       job["metadata"]["uid"] and j, what="the group's new Job")
    status = cluster.get("rmr", "gang", ns)["status"]
    assert status["restarts"] == 1 and status["phase"] != "Failed"
    restart = [e for e in cluster.events(ns, "gang") if e["reason"] == "GangRestart"]
    assert restart and "restarting all 2 workers from the last checkpoint" in restart[0]["message"]
    assert "NCCL error" in restart[0]["message"]
    eventually(lambda: len([p for p in cluster.pods_of("gang-reward", ns)
                            if p["metadata"]["ownerReferences"][0]["uid"] == again["metadata"]["uid"]]) == 2,
               what="two new workers")
    # Out of restarts (backoffLimit 1): the next failure fails the stage.
    cluster.finish_pods("gang-reward", ns, 1, "RuntimeError: NCCL timeout", count=1)
    cluster.wait("rmr/gang", ns, "condition=Failed")
    failed = cluster.condition("rmr", "gang", ns, "Failed")
    assert failed["reason"] == "BackoffLimitExceeded" and "NCCL timeout" in failed["message"]
    assert cluster.get("rmr", "gang", ns)["status"]["restarts"] == 1


def test_a_restarted_group_can_succeed(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(rmr("regroup", backoff_limit=3), ns)
    job = wait_job(cluster, "regroup-reward", ns)
    eventually(lambda: len(cluster.pods_of("regroup-reward", ns)) == 2, what="two workers")
    cluster.finish_pods("regroup-reward", ns, 1, "worker 1 lost", count=1)
    eventually(lambda: (j := cluster.get("job", "regroup-reward", ns)) and j["metadata"]["uid"] !=
               job["metadata"]["uid"], what="the group's new Job")
    eventually(lambda: len([p for p in cluster.pods_of("regroup-reward", ns)
                            if p["status"].get("phase") in ("Pending", "Running")]) == 2, what="two new workers")
    cluster.finish_pods("regroup-reward", ns, 0, {"outputs": {"model": "/data/regroup/model"},
                                                  "metrics": {"evalAccuracy": 0.7}})
    cluster.wait("rmr/regroup", ns, "condition=Succeeded")
    status = cluster.get("rmr", "regroup", ns)["status"]
    assert status["restarts"] == 1 and status["outputs"]["model"] == "/data/regroup/model"
    assert [j["metadata"]["name"] for j in cluster.items("jobs", ns)] == ["regroup-reward"]


def test_a_preempted_worker_restarts_the_whole_group_without_counting(
        cluster: Cluster, operator: Operator, ns: str) -> None:
    # backoffLimit 0: a counted restart would fail the stage, so its success proves the preemption was not counted
    cluster.apply(rmr("bumped", backoff_limit=0), ns)
    job = wait_job(cluster, "bumped-reward", ns)
    assert job["spec"]["podFailurePolicy"]["rules"][1]["action"] == "FailJob"  # DisruptionTarget fails the gang
    eventually(lambda: len(cluster.pods_of("bumped-reward", ns)) == 2, what="two workers")
    # The scheduler preempts worker 1: DisruptionTarget=True, then killed (as the kubelet reports it).
    victim = sorted(cluster.pods_of("bumped-reward", ns), key=lambda p: p["metadata"]["annotations"][
        "batch.kubernetes.io/job-completion-index"])[1]
    set_pod_status(cluster, victim, kubelet.finished(victim, 137, disruption="PreemptionByScheduler"), ns)
    # The Job fails by its FailJob rule, in the Job controller's words; the operator starts the group again.
    again = eventually(lambda: (j := cluster.get("job", "bumped-reward", ns)) and j["metadata"]["uid"] !=
                       job["metadata"]["uid"] and j, what="the group's new Job")
    status = cluster.get("rmr", "bumped", ns)["status"]
    assert status["preemptions"] == 1 and not status.get("restarts") and status["phase"] != "Failed"
    preempted = events(cluster, ns, "bumped", "GangPreempted")
    assert preempted and not events(cluster, ns, "bumped", "GangRestart")
    message = preempted[0]["message"]
    assert f"pod {victim['metadata']['name']}: PreemptionByScheduler" in message
    assert "restarting all 2 workers from the last checkpoint" in message and "not counted" in message
    eventually(lambda: len([p for p in cluster.pods_of("bumped-reward", ns)
                            if p["metadata"]["ownerReferences"][0]["uid"] == again["metadata"]["uid"]
                            and p["status"].get("phase") in ("Pending", "Running")]) == 2, what="two new workers")
    cluster.finish_pods("bumped-reward", ns, 0, {"outputs": {"model": "/data/bumped/model"},
                                                 "metrics": {"evalAccuracy": 0.7}})
    cluster.wait("rmr/bumped", ns, "condition=Succeeded")
    status = cluster.get("rmr", "bumped", ns)["status"]
    assert status["preemptions"] == 1 and not status.get("restarts")
    assert status["outputs"]["model"] == "/data/bumped/model"


def test_a_strangers_stage_keeps_the_pipeline_waiting(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(plj("conf-label"), ns)  # a stage of the pipeline's name, made by hand: not the pipeline's
    cluster.apply(pipeline("conf"), ns)
    eventually(lambda: (c := cluster.condition("rlp", "conf", ns, "Running")) and c["reason"] == "NameConflict",
               what="the pipeline's NameConflict")
    assert "PreferenceLabelJob/conf-label already exists" in cluster.condition("rlp", "conf", ns, "Running")["message"]
    assert cluster.phase("rlp", "conf", ns) == "Waiting"
    assert not cluster.get("plj", "conf-label", ns)["metadata"].get("ownerReferences")  # untouched
    cluster.kubectl("delete", "plj", "conf-label", "-n", ns)
    eventually(lambda: (p := cluster.get("plj", "conf-label", ns)) and p["metadata"].get("ownerReferences"),
               timeout=30, what="the pipeline's own stage")
