"""The per-run metrics (metrics.record_status / forget), read back through prometheus_client's registry as
a scrape would: one series per phase (1 for the current), progress and ETA while reported, the duration
to completion or to now, and nothing left once a run is forgotten."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY, generate_latest

from rlaif_operator import metrics
from rlaif_operator.api.common import Progress, Status

RUN = {"kind": "RewardModelRun", "namespace": "team-a", "name": "rm"}


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, {**RUN, **labels})


def series(name: str) -> list[dict[str, str]]:
    return [s.labels for family in REGISTRY.collect() for s in family.samples
            if s.name == name and s.labels.get("name") == RUN["name"]]


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    yield
    metrics.forget(RUN["kind"], RUN["namespace"], RUN["name"])


def progress(**kw: object) -> Progress:
    fields: dict[str, object] = {"phase": "training", "done": 30, "total": 120, "unit": "steps", "summary": "s",
                                 "observed_time": "2025-03-01T12:00:00Z", **kw}
    return Progress.model_validate(fields)


def test_phase_is_one_hot_over_every_phase() -> None:
    metrics.record_status(RUN["kind"], RUN["namespace"], RUN["name"], Status(phase="Running"))
    assert {p: sample("rlaif_run_phase", phase=p) for p in metrics.PHASES} == {
        "Pending": 0.0, "Waiting": 0.0, "Running": 1.0, "Succeeded": 0.0, "Failed": 0.0}
    metrics.record_status(RUN["kind"], RUN["namespace"], RUN["name"], Status(phase="Succeeded"))
    assert sample("rlaif_run_phase", phase="Running") == 0.0 and sample("rlaif_run_phase", phase="Succeeded") == 1.0
    assert len(series("rlaif_run_phase")) == len(metrics.PHASES)  # replaced, not added


def test_progress_and_eta_while_reported_absent_otherwise() -> None:
    running = Status(phase="Running", progress=progress(rate=0.5, percent=25, eta="3m00s"))
    metrics.record_status(RUN["kind"], RUN["namespace"], RUN["name"], running)
    assert sample("rlaif_run_progress_ratio") == 0.25
    assert sample("rlaif_run_eta_seconds") == 180.0  # (120 - 30) / 0.5
    # No total: the percent, and the ETA as the workload worded it
    metrics.record_status(RUN["kind"], RUN["namespace"], RUN["name"], Status(
        phase="Running", progress=progress(total=None, percent=40, eta="1h05m")))
    assert sample("rlaif_run_progress_ratio") == 0.4 and sample("rlaif_run_eta_seconds") == 3900.0
    # No progress (not reported yet, or finished): no series, not a stale value
    metrics.record_status(RUN["kind"], RUN["namespace"], RUN["name"], Status(phase="Running"))
    assert sample("rlaif_run_progress_ratio") is None and sample("rlaif_run_eta_seconds") is None
    assert sample("rlaif_run_phase", phase="Running") == 1.0


def test_duration_runs_until_completion() -> None:
    metrics.record_status(RUN["kind"], RUN["namespace"], RUN["name"], Status(phase="Pending"))
    assert sample("rlaif_run_duration_seconds") is None  # not started
    started = time.time() - 100
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
    metrics.record_status(RUN["kind"], RUN["namespace"], RUN["name"], Status(phase="Running", start_time=start))
    assert 99 <= (sample("rlaif_run_duration_seconds") or 0) <= 110  # to now
    metrics.record_status(RUN["kind"], RUN["namespace"], RUN["name"], Status(
        phase="Succeeded", start_time="2025-03-01T12:00:00Z", completion_time="2025-03-01T12:20:00Z"))
    assert sample("rlaif_run_duration_seconds") == 1200.0


def test_forget_removes_every_series_of_the_run_only() -> None:
    other = {"kind": "PolicyRLRun", "namespace": "team-a", "name": "pol"}
    status = Status(phase="Running", start_time="2025-03-01T12:00:00Z", progress=progress(rate=1.0))
    metrics.record_status(RUN["kind"], RUN["namespace"], RUN["name"], status)
    metrics.record_status(other["kind"], other["namespace"], other["name"], status)
    metrics.forget(RUN["kind"], RUN["namespace"], RUN["name"])
    text = generate_latest(REGISTRY).decode()
    assert 'name="rm"' not in text
    for name in ("rlaif_run_phase", "rlaif_run_progress_ratio", "rlaif_run_eta_seconds", "rlaif_run_duration_seconds"):
        assert series(name) == []
        assert [s for f in REGISTRY.collect() for s in f.samples if s.name == name and s.labels["name"] == "pol"]
    metrics.forget(other["kind"], other["namespace"], other["name"])
    metrics.forget(other["kind"], other["namespace"], other["name"])  # twice: harmless
    assert 'name="pol"' not in generate_latest(REGISTRY).decode()


def test_operator_level_metrics_are_kept() -> None:
    text = generate_latest(REGISTRY).decode()
    for name in ("rlaif_operator_stage_duration_seconds", "rlaif_operator_reconciles_total",
                 "rlaif_operator_handoff_seconds", "rlaif_operator_watch_events_total"):
        assert f"# TYPE {name} " in text
