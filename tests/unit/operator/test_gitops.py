"""GitOps: the Argo CD health check (Lua, run here by a real Lua interpreter through lupa, as Argo CD
runs it: the script is the body of a function of ``obj``) against status fixtures of the four kinds,
and the examples under examples/gitops (the Lua embedded verbatim, paths that exist, valid runs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lupa
import pytest
import yaml

from rlaif_operator.api.manifests import load_resources

REPO = Path(__file__).resolve().parents[3]
LUA = (REPO / "charts" / "rlaif-operator" / "files" / "argocd-health.lua").read_text()
GITOPS = REPO / "examples" / "gitops"
KINDS = ("PreferenceLabelJob", "RewardModelRun", "PolicyRLRun", "RLAIFPipeline")


def cond(ctype: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": ctype, "status": status, "reason": reason, "message": message}


# (fixture id, status, expected Argo CD health, a phrase the message carries)
FIXTURES: list[tuple[str, dict[str, Any] | None, str, str]] = [
    ("succeeded", {"phase": "Succeeded", "message": "labeled 48 pairs", "conditions": [
        cond("InputsReady", "True"), cond("Running", "False", "Completed"), cond("Succeeded", "True", "Completed")]},
     "Healthy", "labeled 48 pairs"),
    ("new", None, "Progressing", "Waiting for the rlaif operator"),
    ("waiting-upstream", {"phase": "Waiting", "conditions": [
        cond("InputsReady", "False", "WaitingForUpstream", "waiting for PreferenceLabelJob/demo-label")]},
     "Progressing", "WaitingForUpstream: waiting for PreferenceLabelJob/demo-label"),
    ("running", {"phase": "Running", "conditions": [
        cond("InputsReady", "True"), cond("Running", "True", "JobRunning", "2/2 pods running")]},
     "Progressing", "JobRunning: 2/2 pods running"),
    ("stale-generation", {"phase": "Succeeded", "observedGeneration": 1}, "Progressing", "latest spec"),
    ("failed", {"phase": "Failed", "conditions": [
        cond("Failed", "True", "BackoffLimitExceeded", "the Job failed 4 times; kubectl logs job/demo-reward")]},
     "Degraded", "BackoffLimitExceeded: the Job failed 4 times"),
    ("invalid-spec", {"phase": "Failed", "conditions": [
        cond("Failed", "True", "InvalidSpec", "spec.runtime.image 'evil/x' is not allowed on this cluster")]},
     "Degraded", "InvalidSpec: spec.runtime.image"),
    ("secret-missing", {"phase": "Waiting", "conditions": [
        cond("InputsReady", "False", "SecretNotFound", "Secret hf-token not found: create it")]},
     "Degraded", "SecretNotFound: Secret hf-token not found"),
    ("kueue-queued", {"phase": "Pending", "conditions": [
        cond("InputsReady", "True"), cond("Running", "False", "Queued", "waiting for Kueue to admit the Job")]},
     "Suspended", "Queued: waiting for Kueue"),
]


@pytest.fixture(scope="module")
def health() -> Any:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.execute(f"function health(obj)\n{LUA}\nend")
    check = lua.globals().health

    def run(obj: dict[str, Any]) -> dict[str, str]:
        result = check(lua.table_from(obj, recursive=True))
        return {"status": result["status"], "message": result["message"]}

    return run


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("status", "expected", "phrase"), [f[1:] for f in FIXTURES], ids=[f[0] for f in FIXTURES])
def test_argocd_health(health: Any, kind: str, status: dict[str, Any] | None, expected: str, phrase: str) -> None:
    obj: dict[str, Any] = {"apiVersion": "rlaif.dev/v1alpha1", "kind": kind,
                           "metadata": {"name": "demo", "generation": 2}, "spec": {}}
    if status is not None:
        obj["status"] = {"observedGeneration": 2, **status}
    hs = health(obj)
    assert hs["status"] == expected
    assert phrase in hs["message"]


def test_the_four_statuses_argocd_knows_are_all_reached() -> None:
    assert {f[2] for f in FIXTURES} == {"Healthy", "Progressing", "Degraded", "Suspended"}


def test_argocd_cm_ships_the_chart_lua_for_each_kind() -> None:
    data = yaml.safe_load((GITOPS / "argocd" / "argocd-cm-health.yaml").read_text())["data"]
    for kind in KINDS:
        assert data[f"resource.customizations.health.rlaif.dev_{kind}"] == LUA
    assert data["application.resourceTrackingMethod"] == "annotation"


def test_examples_point_at_what_exists() -> None:
    flux = {d["kind"]: d for p in sorted((GITOPS / "flux").glob("*.yaml")) for d in yaml.safe_load_all(p.read_text())}
    assert (REPO / flux["HelmRelease"]["spec"]["chart"]["spec"]["chart"]).is_dir()
    assert (REPO / flux["Kustomization"]["spec"]["path"]).is_dir()
    assert flux["Kustomization"]["spec"]["prune"] is True
    apps = [yaml.safe_load(p.read_text()) for p in sorted((GITOPS / "argocd").glob("*-application.yaml"))]
    assert {a["kind"] for a in apps} == {"Application"}
    for app in apps:
        assert (REPO / app["spec"]["source"]["path"]).is_dir()
    runs = yaml.safe_load((GITOPS / "runs" / "kustomization.yaml").read_text())["resources"]
    for name in runs:
        (resource,) = load_resources(GITOPS / "runs" / name)  # a valid run, named as the file
        assert f"{resource.metadata.name}.yaml" == name


def test_argocd_agrees_with_kstatus_on_statuses_the_operator_computes(health: Any) -> None:
    """The operator's own statuses (running, failed, succeeded), read by the Argo CD check and by the
    kstatus rules Flux and kubectl wait apply (Stalled True: failed; Ready True: done; else in progress):
    both say the same thing."""
    from datetime import UTC, datetime

    from rlaif_operator.api.kinds import RewardModelRun
    from rlaif_operator.status import JobObservation, StageObservation, compute_status, status_for_patch

    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    body = {"apiVersion": "rlaif.dev/v1alpha1", "kind": "RewardModelRun",
            "metadata": {"name": "rm", "namespace": "ns", "uid": "u1", "generation": 1},
            "spec": {"baseModel": {"uri": "/sft"}, "preferences": {"uri": "/l.jsonl"}, "output": {"uri": "/o"}}}
    job = {"name": "rm-reward", "exists": True, "active": 1, "start_time": "2025-03-01T11:00:00Z"}
    observations = {
        "Progressing": JobObservation(**job),
        "Degraded": JobObservation(**job, failed_reason="BackoffLimitExceeded", failed_message="pods failed"),
        "Healthy": JobObservation(**job, complete=True, reports=({"outputs": {"model": "/o/model"}, "metrics": {}},)),
    }
    kstatus_says = {"Progressing": "InProgress", "Degraded": "Failed", "Healthy": "Current"}
    for argo, job_obs in observations.items():
        status = compute_status(RewardModelRun.model_validate(body), StageObservation(job=job_obs, started=True), now)
        wire = status_for_patch(status)
        assert health({**body, "status": wire})["status"] == argo
        by_type = {c["type"]: c["status"] for c in wire["conditions"]}
        kstatus = ("Failed" if by_type["Stalled"] == "True" else "InProgress" if by_type["Reconciling"] == "True"
                   else "Current" if by_type["Ready"] == "True" else "Unknown")
        assert kstatus == kstatus_says[argo]
