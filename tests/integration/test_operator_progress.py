"""Live progress on a cluster: the operator reads the structured progress lines a running stage's rank-0
pod logs into ``status.progress`` (and the pipeline's), stops once the stage ends, and keeps the last
log lines in ``status.logTail`` after the pods are gone."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from clusterkit import Cluster, Operator, eventually
from test_operator_pipeline import LABEL_REPORT, pipeline

from rlaif_jobs.progress import LOG_PREFIX

pytestmark = pytest.mark.usefixtures("testapi_only")


def progress_line(phase: str, done: int, total: int, rate: float, **extra: Any) -> str:
    event = {"t": time.time(), "phase": phase, "done": done, "total": total, "unit": "pairs", "rate": rate,
             **extra}
    return LOG_PREFIX + json.dumps(event) + "\n"


def test_progress_appears_while_running_and_freezes_after(cluster: Cluster, operator: Operator, ns: str) -> None:
    cluster.apply(pipeline("live"), ns)
    job = "live-label-label"
    pods = eventually(lambda: cluster.pods_of(job, ns), what="the labeler's pod")
    name = pods[0]["metadata"]["name"]
    cluster.testapi.append_log(ns, name, "INFO loading the labeler\n" + progress_line("labeling", 0, 48, 0.0))
    cluster.run_pods(job, ns)

    first = eventually(lambda: (s := cluster.get("plj", "live-label", ns)["status"]).get("progress") and s,
                       what="status.progress")
    assert first["phase"] == "Running"
    assert first["progress"]["summary"] == "labeling 0/48 pairs (0%)"

    cluster.testapi.append_log(ns, name, "INFO batch 3\n" + progress_line("labeling", 12, 48, 2.0,
                                                                           metrics={"alignment": 0.8}))
    moved = eventually(lambda: (p := cluster.get("plj", "live-label", ns)["status"].get("progress"))
                       and p["done"] == 12 and p, what="progress to move to 12/48")
    assert (moved["percent"], moved["rate"], moved["eta"]) == (25, 2.0, "18s")
    assert moved["metrics"] == {"alignment": 0.8} and moved["unit"] == "pairs"
    assert moved["observedTime"] and moved["reportedTime"]
    # The pipeline shows its running stage's progress, the stage named.
    pipe = eventually(lambda: (s := cluster.get("rlp", "live", ns)["status"]).get("progress")
                      and s["progress"]["done"] == 12 and s, what="the pipeline's progress")
    assert pipe["progress"]["summary"] == "label: labeling 12/48 pairs (25%)"
    assert pipe["stages"][0]["progress"] == "labeling 12/48 pairs (25%)" and pipe["stages"][0]["eta"] == "18s"
    table = cluster.kubectl("get", "plj", "live-label", "-n", ns).stdout
    assert "labeling 12/48 pairs (25%)" in table and "18s" in table

    # It ends: progress goes, the last lines stay (progress lines left out), and nothing moves after.
    cluster.testapi.append_log(ns, name, progress_line("labeling", 48, 48, 2.0) + "INFO wrote 48 labels\n")
    assert cluster.finish_pods(job, ns, 0, LABEL_REPORT) == 1
    done = eventually(lambda: (s := cluster.get("plj", "live-label", ns)["status"])["phase"] == "Succeeded" and s,
                      what="the label job to succeed")
    assert "progress" not in done
    assert done["logTail"][-2:] == ["INFO batch 3", "INFO wrote 48 labels"]
    assert not any(LOG_PREFIX in line for line in done["logTail"])
    pipe = eventually(lambda: (s := cluster.get("rlp", "live", ns)["status"])["stages"][0]["phase"] == "Succeeded"
                      and s, what="the pipeline to see it")
    assert "progress" not in pipe["stages"][0]
    version = cluster.get("plj", "live-label", ns)["metadata"]["resourceVersion"]
    cluster.testapi.append_log(ns, name, progress_line("labeling", 50, 48, 2.0))
    time.sleep(2.5)  # more than two progress intervals: a finished stage is not read again
    assert cluster.get("plj", "live-label", ns)["metadata"]["resourceVersion"] == version
