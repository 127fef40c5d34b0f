"""The metrics JSONL logger: rank 0 only, NaN as null, and a resumed run drops the re-trained steps."""

from __future__ import annotations

import json

from rlaif_jobs.train.metrics import MetricsLogger, read_metrics


def test_writes_lines_with_step_and_time(tmp_path):
    path = tmp_path / "m.jsonl"
    m = MetricsLogger(path)
    m.log(1, trainLoss=0.5, evalAccuracy=float("nan"))
    m.log(2, trainLoss=0.4)
    m.close()
    recs = read_metrics(path)
    assert [r["step"] for r in recs] == [1, 2]
    assert recs[0]["trainLoss"] == 0.5 and recs[0]["evalAccuracy"] is None
    assert {"time", "elapsed", "cpuSeconds"} <= set(recs[0])


def test_other_ranks_write_nothing(tmp_path):
    m = MetricsLogger(tmp_path / "m.jsonl", enabled=False)
    m.log(1, trainLoss=0.5)
    m.close()
    assert not (tmp_path / "m.jsonl").exists()


def test_resume_keeps_lines_up_to_the_checkpoint_and_fresh_start_truncates(tmp_path):
    path = tmp_path / "m.jsonl"
    lines = [json.dumps({"step": s, "trainLoss": 1.0 / s}) for s in range(1, 8)]
    path.write_text("\n".join(lines) + '\n{"step": 8, "trainLo')  # the last line cut by a kill
    m = MetricsLogger(path, resume_step=5)
    m.log(6, trainLoss=0.1)
    m.close()
    assert [r["step"] for r in read_metrics(path)] == [1, 2, 3, 4, 5, 6]
    MetricsLogger(path).close()  # a fresh start (no checkpoint) begins a new file
    assert read_metrics(path) == []
