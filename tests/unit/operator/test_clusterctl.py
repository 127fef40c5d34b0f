"""The cluster verbs' pure parts: status rendering from resource dicts (fields present and absent), the
wait verdicts, the choice of a pipeline's stage and of the rank-0 pod, durations and kind aliases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from rlaif_operator.clusterctl import logs, render, resources, submit, wait
from rlaif_operator.clusterctl.resources import ClusterctlError

NOW = datetime(2025, 5, 1, 12, 0, 0, tzinfo=UTC)


def cond(ctype: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": ctype, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2025-05-01T11:00:00Z"}


def obj(kind: str, name: str, status: dict[str, Any] | None = None, created: str = "2025-05-01T11:00:00Z",
        **meta: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"apiVersion": "rlaif.dev/v1alpha1", "kind": kind,
                           "metadata": {"name": name, "namespace": "ns", "creationTimestamp": created, **meta}}
    if status is not None:
        out["status"] = status
    return out


PROGRESS = {"phase": "training", "done": 120, "total": 400, "unit": "steps", "percent": 30, "rate": 1.5,
            "eta": "3m06s", "summary": "training 120/400 steps (30%)", "metrics": {"loss": 0.52, "kl": 0.04},
            "observedTime": "2025-05-01T11:59:20Z"}

PIPELINE = obj("RLAIFPipeline", "demo", {
    "phase": "Running", "message": "stage demo-reward is running", "currentStage": "demo-reward",
    "observedGeneration": 1,
    "progress": {**PROGRESS, "summary": "reward: training 120/400 steps (30%)"},
    "stages": [
        {"kind": "PreferenceLabelJob", "name": "demo-label", "phase": "Succeeded"},
        {"kind": "RewardModelRun", "name": "demo-reward", "phase": "Running",
         "progress": "training 120/400 steps (30%)", "eta": "3m06s"},
        {"kind": "PolicyRLRun", "name": "demo-policy", "phase": "Waiting"},
    ],
    "conditions": [cond("InputsReady", "True", "InputsGiven"), cond("Running", "True", "StageRunning",
                   "stage demo-reward is running"), cond("Ready", "False", "StageRunning")],
    "outputs": {"labels": "/data/run/label/labels.jsonl"}, "metrics": {"alignment": 0.81},
}, generation=1)


# --- status rendering ---------------------------------------------------------------------------------

def test_table_groups_a_pipeline_with_its_stages_in_run_order() -> None:
    items = [
        obj("PolicyRLRun", "demo-policy", {"phase": "Waiting"}, labels={"rlaif.dev/pipeline": "demo"}),
        obj("RewardModelRun", "demo-reward", {"phase": "Running", "progress": PROGRESS},
            labels={"rlaif.dev/pipeline": "demo"}, created="2025-05-01T11:55:00Z"),
        obj("PreferenceLabelJob", "alone", None, created="2025-04-28T10:00:00Z"),
        PIPELINE,
        obj("PreferenceLabelJob", "demo-label", {"phase": "Succeeded"}, labels={"rlaif.dev/pipeline": "demo"}),
    ]
    lines = render.table(items, NOW).splitlines()
    assert lines[0].split() == ["KIND", "NAME", "PHASE", "PROGRESS", "ETA", "AGE"]
    names = [line.split()[1] for line in lines[1:]]
    assert names == ["alone", "demo", "demo-label", "demo-reward", "demo-policy"]
    alone, pipeline, _, reward, policy = lines[1:]
    assert alone.split()[2:] == ["-", "-", "-", "3d2h"]  # never reconciled: no status at all
    assert "reward: training 120/400 steps (30%)" in pipeline and "3m06s" in pipeline and pipeline.endswith("1h")
    assert "training 120/400 steps (30%)" in reward and reward.endswith("5m")
    assert policy.split()[2:] == ["Waiting", "-", "-", "1h"]
    # aligned: every row's PHASE starts in the header's column
    at = lines[0].index("PHASE")
    assert all(line[at - 1] == " " and line[at] != " " for line in lines[1:])


def test_a_pipeline_without_progress_counts_its_stages() -> None:
    status = {**PIPELINE["status"]}
    del status["progress"]
    assert render.progress_cells(obj("RLAIFPipeline", "demo", status)) == (
        "1/3 stages succeeded, at demo-reward", "-")


def test_describe_a_pipeline() -> None:
    text = render.describe(PIPELINE, NOW)
    assert text.splitlines()[0].startswith("RLAIFPipeline/demo   namespace ns   age 1h")
    assert "Phase:       Running" in text and "Message:     stage demo-reward is running" in text
    assert "Stage:       demo-reward" in text
    # the progress in full
    assert "Progress:    reward: training 120/400 steps (30%)" in text
    for line in ("Phase:     training", "Done:      120/400 steps (30%)", "Rate:      1.5 steps/s",
                 "ETA:       3m06s", "Metrics:   kl=0.04, loss=0.52", "Observed:  2025-05-01T11:59:20Z (40s ago)"):
        assert "  " + line in text, line
    # each stage, the current one marked, with its progress and ETA
    stages = text.split("Stages:\n")[1].split("Conditions:")[0].splitlines()
    assert stages[0].split() == ["KIND", "NAME", "PHASE", "PROGRESS", "ETA"]
    assert stages[2].split()[:4] == ["*", "RewardModelRun", "demo-reward", "Running"]
    assert stages[2].rstrip().endswith("training 120/400 steps (30%)  3m06s")
    assert stages[3].split() == ["PolicyRLRun", "demo-policy", "Waiting", "-", "-"]
    conditions = text.split("Conditions:\n")[1].splitlines()
    assert conditions[0].split() == ["TYPE", "STATUS", "REASON", "MESSAGE"]
    assert conditions[2].split() == ["Running", "True", "StageRunning", "stage", "demo-reward", "is", "running"]
    assert "Outputs:\n  labels: /data/run/label/labels.jsonl" in text
    assert "Metrics:\n  alignment: 0.81" in text


def test_describe_a_finished_stage_with_restarts_and_a_kept_log() -> None:
    stage = obj("RewardModelRun", "rm", {
        "phase": "Failed", "message": "the trainer exited 1", "restarts": 2, "preemptions": 1,
        "startTime": "2025-05-01T11:10:00Z", "completionTime": "2025-05-01T11:50:00Z",
        "logTail": ["step 10 loss 0.7", "Traceback ..."], "conditions": [cond("Failed", "True", "JobFailed")]})
    text = render.describe(stage, NOW)
    assert "Restarts:    restarts 2, preemptions 1" in text
    assert "Started:     2025-05-01T11:10:00Z (50m ago)" in text
    assert "Finished:    2025-05-01T11:50:00Z (10m ago)" in text
    assert "2 last lines kept: rlaif logs rewardmodelrun/rm" in text
    assert "Progress" not in text and "Stages" not in text


def test_describe_a_resource_the_operator_has_not_seen() -> None:
    text = render.describe(obj("PolicyRLRun", "p", None), NOW)
    assert text.splitlines()[1] == "Phase:       - (not reconciled yet)"
    assert len(text.splitlines()) == 2


def test_describe_says_when_the_status_is_of_an_older_spec() -> None:
    stage = obj("PolicyRLRun", "p", {"phase": "Succeeded", "observedGeneration": 1}, generation=2)
    assert "status is of generation 1; the spec is at 2" in render.describe(stage, NOW)


def test_progress_with_only_the_required_fields() -> None:
    lines = render.progress_lines({"phase": "labeling", "done": 7, "summary": "labeling 7",
                                   "observedTime": "2025-05-01T11:59:59Z"}, NOW)
    assert lines == ["Progress:    labeling 7", "  Phase:     labeling", "  Done:      7",
                     "  Observed:  2025-05-01T11:59:59Z (1s ago)"]


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (119, "119s"), (150, "2m30s"), (600, "10m"),
                                                (3600, "1h"), (5400, "1h30m"), (3 * 3600, "3h"),
                                                (50 * 3600, "2d2h"), (10 * 86400, "10d")])
def test_short_duration(seconds: int, text: str) -> None:
    assert render.short_duration(seconds) == text


def test_age_of_a_missing_or_bad_timestamp() -> None:
    assert render.age(None, NOW) == render.age("yesterday", NOW) == "-"


# --- wait -----------------------------------------------------------------------------------------------

def staged(phase: str | None, *conditions: dict[str, Any], observed: int | None = 1, generation: int = 1,
           message: str = "") -> dict[str, Any]:
    status: dict[str, Any] = {"conditions": list(conditions), "message": message}
    if phase:
        status["phase"] = phase
    if observed is not None:
        status["observedGeneration"] = observed
    return obj("PolicyRLRun", "p", status, generation=generation)


@pytest.mark.parametrize(("resource", "want", "code"), [
    (staged("Succeeded", cond("Ready", "True")), "Ready", 0),
    (staged("Running", cond("Ready", "False"), cond("Reconciling", "True")), "Ready", None),
    (staged("Failed", cond("Ready", "False"), cond("Stalled", "True")), "Ready", 1),
    (staged("Succeeded"), "Ready", 0),  # an operator without the kstatus conditions: the phase decides
    (staged("Succeeded", cond("Ready", "True")), "Succeeded", 0),
    (staged("Failed"), "Succeeded", 1),
    (staged("Failed"), "Failed", 0),
    (staged("Succeeded"), "Failed", 1),
    (staged("Running"), "Failed", None),
    (staged("Failed"), "Finished", 0),
    (staged("Succeeded"), "Finished", 0),
    (staged("Waiting"), "Finished", None),
    (staged(None), "Ready", None),  # no status yet
    (staged("Succeeded", cond("Ready", "True"), observed=1, generation=2), "Ready", None),  # stale status
])
def test_wait_verdicts(resource: dict[str, Any], want: str, code: int | None) -> None:
    assert wait.verdict(resource, want)[0] == code


def test_a_failure_while_waiting_for_ready_says_why() -> None:
    code, text = wait.verdict(staged("Failed", cond("Stalled", "True"), message="the judge Secret is missing"),
                              "Ready")
    assert code == 1 and text == "PolicyRLRun/p: Failed: the judge Secret is missing"


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("1h30m", 5400),
                                               ("2d", 172800), ("1.5h", 5400), ("500ms", 0.5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert wait.parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "h", "1h 30m", "soon"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ClusterctlError, match="--timeout"):
        wait.parse_duration(text)


# --- logs: which stage, which pod -------------------------------------------------------------------

def test_a_pipelines_stage_current_named_failed_or_last_started() -> None:
    assert logs.pick_stage(PIPELINE, None) == ("RewardModelRun", "demo-reward")
    assert logs.pick_stage(PIPELINE, "label") == ("PreferenceLabelJob", "demo-label")
    assert logs.pick_stage(PIPELINE, "demo-policy") == ("PolicyRLRun", "demo-policy")
    assert logs.pick_stage(PIPELINE, "prl/other") == ("PolicyRLRun", "other")
    finished = {**PIPELINE, "status": {**PIPELINE["status"], "currentStage": None, "stages": [
        {"kind": "PreferenceLabelJob", "name": "demo-label", "phase": "Succeeded"},
        {"kind": "RewardModelRun", "name": "demo-reward", "phase": "Failed"},
        {"kind": "PolicyRLRun", "name": "demo-policy", "phase": "Waiting"}]}}
    assert logs.pick_stage(finished, None) == ("RewardModelRun", "demo-reward")
    done = {**PIPELINE, "status": {"phase": "Succeeded", "stages": [
        {"kind": "PreferenceLabelJob", "name": "demo-label", "phase": "Succeeded"},
        {"kind": "RewardModelRun", "name": "demo-reward", "phase": "Succeeded"}]}}
    assert logs.pick_stage(done, None) == ("RewardModelRun", "demo-reward")
    # not reported yet: the children's names the pipeline gives them
    assert logs.pick_stage(obj("RLAIFPipeline", "x", {}), "policy") == ("PolicyRLRun", "x-policy")
    with pytest.raises(ClusterctlError, match="no stage has started yet"):
        logs.pick_stage(obj("RLAIFPipeline", "x", {"stages": [{"kind": "PolicyRLRun", "name": "x-policy",
                                                               "phase": "Waiting"}]}), None)
    with pytest.raises(ClusterctlError, match="has no stage 'judge'"):
        logs.pick_stage(PIPELINE, "judge")


def pod(name: str, index: str | None, created: str) -> dict[str, Any]:
    annotations = {"batch.kubernetes.io/job-completion-index": index} if index is not None else {}
    return {"metadata": {"name": name, "annotations": annotations, "creationTimestamp": created},
            "spec": {"containers": [{"name": "trainer"}]}}


def test_rank0_is_index_0_and_the_newest_of_its_retries() -> None:
    pods = [pod("j-1-b", "1", "2025-05-01T11:00:00Z"), pod("j-0-old", "0", "2025-05-01T10:00:00Z"),
            pod("j-0-new", "0", "2025-05-01T11:30:00Z")]
    assert (logs.rank0(pods) or {}).get("metadata", {}).get("name") == "j-0-new"
    assert [p["metadata"]["name"] for p in logs.order_pods(pods)] == ["j-0-old", "j-0-new", "j-1-b"]
    assert logs.rank0([]) is None


def test_a_stages_job_is_named_as_the_operator_names_it() -> None:
    assert logs.job_name(obj("PreferenceLabelJob", "demo-label")) == "demo-label-label"
    assert logs.job_name(obj("RewardModelRun", "rm")) == "rm-reward"


# --- kinds and submit outcomes -------------------------------------------------------------------------

def test_kind_aliases() -> None:
    for alias in ("rlp", "RLAIFPipeline", "rlaifpipelines", "rlaifpipeline", "rlaifpipelines.rlaif.dev"):
        assert resources.split_ref(f"{alias}/demo") == ("RLAIFPipeline", "demo")
    assert resources.split_ref("demo") == (None, "demo")
    with pytest.raises(ClusterctlError, match="not an rlaif.dev kind"):
        resources.split_ref("deployment/demo")


def test_submit_outcomes() -> None:
    before: dict[str, Any] = {"kind": "PolicyRLRun", "spec": {"a": 1}, "status": {"phase": "Running"},
              "metadata": {"name": "p", "resourceVersion": "5", "labels": {"team": "a"}}}
    after: dict[str, Any] = {**before, "status": {"phase": "Succeeded"},
             "metadata": {**before["metadata"], "resourceVersion": "9", "managedFields": [{}]}}
    assert submit.outcome(None, after) == "created"
    assert submit.outcome(before, after) == "unchanged"
    relabeled = {**after, "metadata": {**after["metadata"], "labels": {"team": "b"}}}
    assert submit.outcome(before, relabeled) == "configured"
