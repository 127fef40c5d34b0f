"""Live progress, pure parts: the workload's log lines (rlaif_jobs.progress) and the operator's reading
of them (rlaif_operator.status.progress), and how the stage and pipeline statuses carry them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from rlaif_jobs import progress as workload
from rlaif_operator.status.progress import duration, latest_event, log_tail, to_progress

NOW = datetime(2026, 12, 3, 12, 0, 0, tzinfo=UTC)


def line(**event: Any) -> str:
    return workload.LOG_PREFIX + json.dumps(event)


def test_latest_event_takes_the_last_well_formed_line() -> None:
    text = "\n".join([
        line(phase="labeling", done=1, total=4),
        "some library output",
        "train:  40%|####      | 4/10 [00:02<00:03]\r" + line(phase="train", done=4, total=10),
        workload.LOG_PREFIX + "{not json",
        line(phase="oops", done="3"),  # done must be an integer
    ])
    assert latest_event(text) == {"phase": "train", "done": 4, "total": 10}
    assert latest_event("no progress here\n") is None


def test_to_progress_computes_percent_eta_and_summary() -> None:
    p = to_progress({"t": 1.7e9, "phase": "train", "done": 30, "total": 120, "unit": "steps", "rate": 0.1,
                     "doing": "rollout", "metrics": {"reward": 0.25, "bad": "x", "inf": float("inf")}}, NOW)
    assert (p.percent, p.eta, p.rate) == (25, "15m00s", 0.1)
    assert p.summary == "train 30/120 steps (25%), rollout"
    assert p.metrics == {"reward": 0.25}
    assert p.observed_time == "2026-12-03T12:00:00Z" and p.reported_time is not None


def test_to_progress_without_total_or_rate_has_no_eta() -> None:
    p = to_progress({"phase": "loading the labeler", "done": 0, "total": None, "unit": ""}, NOW)
    assert (p.percent, p.eta, p.summary) == (None, None, "loading the labeler 0")
    assert to_progress({"phase": "x", "done": 5, "total": 5, "rate": 0.0}, NOW).eta is None


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (59.6, "1m00s"), (3599, "59m59s"), (3600, "1h00m"),
                                                (90061, "1d01h")])
def test_duration(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_log_tail_drops_progress_lines_and_cuts_long_ones() -> None:
    text = "\n".join(["a", line(phase="p", done=1), "", "bar 10%\rbar 100%", "x" * 500, "b"])
    assert log_tail(text, lines=3) == ["bar 100%", "x" * 300 + "...", "b"]
    assert log_tail(text) == ["a", "bar 100%", "x" * 300 + "...", "b"]


def test_workload_logs_throttled_progress_lines_with_a_rate(monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(workload.LOG_ENV, "1")
    monkeypatch.delenv(workload.ENV, raising=False)
    monkeypatch.setattr(workload, "_phases", {})
    clock = iter([100.0, 101.0, 106.0, 107.0])
    monkeypatch.setattr(workload.time, "time", lambda: next(clock))
    workload.report("labeling", 0, 10, "pairs")  # first: logged
    workload.report("labeling", 2, 10, "pairs")  # within LOG_EVERY: dropped
    workload.report("labeling", 6, 10, "pairs", metrics={"alignment": 0.5})  # 6 s later: logged
    workload.report("labeling", 10, 10, "pairs")  # the last: always logged
    events = [json.loads(x[len(workload.LOG_PREFIX):]) for x in capsys.readouterr().err.splitlines()]
    assert [e["done"] for e in events] == [0, 6, 10]
    assert "rate" not in events[0]
    assert events[1]["rate"] == pytest.approx(1.0) and events[1]["metrics"] == {"alignment": 0.5}
    assert events[2]["rate"] == pytest.approx(10 / 7)
    assert latest_event("\n".join(workload.LOG_PREFIX + json.dumps(e) for e in events))["done"] == 10


def test_workload_is_silent_without_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(workload.LOG_ENV, raising=False)
    monkeypatch.delenv(workload.ENV, raising=False)
    workload.report("labeling", 1, 2)
    assert capsys.readouterr().err == ""
