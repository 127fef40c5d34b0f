"""bench/handoffs.py: the operator-side hand-off comes from the operator's own trace lines only."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from handoffs import Edge, operator_handoffs, read_trace  # noqa: E402


def line(event: str, write: str, obj: str, received: float, seconds: float) -> str:
    return json.dumps({"event": event, "write": write, "object": obj, "receivedAt": received,
                       "sentAt": received + seconds, "seconds": seconds})


def test_the_first_create_and_the_status_patch_of_the_same_event_make_the_handoff(tmp_path: Path) -> None:
    trace = tmp_path / "trace.jsonl"
    trace.write_text("\n".join([
        line("Job/n/up-label", "status", "PreferenceLabelJob/n/up", 100.0, 0.2),  # the Job running: not it
        line("Job/n/up-label", "status", "PreferenceLabelJob/n/up", 200.0, 0.05),  # Succeeded reported ...
        line("Job/n/up-label", "create", "Job/n/down-reward", 200.0, 0.12),  # ... and the next Job created
        line("RewardModelRun/n/down", "create", "Job/n/down-reward", 300.0, 0.01),  # a later retry: not it
        line("Job/n/x-label", "create", "Job/n/x-reward", 400.0, 0.3),  # caused by another event
        '{"event": "Job/n/torn',  # the operator was stopped mid-line
    ]) + "\n")
    edges = [Edge("Job/n/up-label", "PreferenceLabelJob/n/up", "Job/n/down-reward"),
             Edge("Job/n/x-up", "PreferenceLabelJob/n/x", "Job/n/x-reward"),
             Edge("Job/n/never", "PreferenceLabelJob/n/never", "Job/n/never-reward")]
    found = operator_handoffs(read_trace(trace), edges)
    assert [(h.create_seconds, h.status_seconds, h.by_upstream_job) for h in found] == [
        (0.12, 0.05, True), (0.3, None, False)]
