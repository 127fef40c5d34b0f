"""Per-step metrics: JSON lines on rank 0, fanned out to the experiment trackers the config enables.

Each line is ``{"step": N, "time": unix seconds, "elapsed": seconds since the logger started,
"cpuSeconds": this process's CPU time, ...}`` (CPU time tells compute from waiting on a shared machine).
A resumed run first drops the lines of steps after the checkpoint it resumes from (they were trained
again), so the file reads as one run. The JSONL is the source of truth; the trackers
(``rlaif_jobs.train.trackers``: TensorBoard, MLflow, W&B) get the numeric values of each line. Other
ranks hold a logger that writes nothing and starts no tracker.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from rlaif_jobs import io
from rlaif_jobs.train.trackers import Trackers


class MetricsLogger:
    """Appends metric records to ``path`` (JSONL) when ``enabled`` (rank 0) and sends them to ``trackers``.

    Inputs: the file, whether this rank writes, ``resume_step`` (keep only lines with step <= it; None
    on a fresh start keeps nothing: the file is started anew) and the stage's ``Trackers`` (None: the
    JSONL only), which this logger starts (raising TrackingError at once when one cannot) and finishes.
    """

    def __init__(self, path: str | Path, enabled: bool = True, resume_step: int | None = None,
                 trackers: Trackers | None = None):
        self.path = Path(str(path).removeprefix("file://"))
        self.enabled = enabled
        self.start = time.time()
        self._file = None
        self.trackers: Trackers | None = None
        if not enabled:
            return
        if trackers is not None:
            trackers.start()  # before the file is rewritten: a tracker that cannot start changes nothing
            self.trackers = trackers
        kept = self._kept_lines(resume_step)
        io.write_jsonl(str(self.path), kept)  # atomic rewrite, then append
        self._file = self.path.open("a", buffering=1)

    def _kept_lines(self, resume_step: int | None) -> list[dict]:
        if resume_step is None or not self.path.exists():
            return []
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by the kill that ended the previous attempt
            if isinstance(rec, dict) and rec.get("step", 0) <= resume_step:
                kept.append(rec)
        return kept

    def log(self, step: int, **metrics: Any) -> None:
        """Writes one record for ``step``; non-finite floats become null (JSON has no NaN)."""
        if not self.enabled or self._file is None:
            return
        now = time.time()
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in metrics.items()}
        rec = {"step": step, "time": round(now, 3), "elapsed": round(now - self.start, 3),
               "cpuSeconds": round(time.process_time(), 3), **clean}
        self._file.write(json.dumps(rec) + "\n")
        if self.trackers is not None:
            self.trackers.log(step, clean)

    def close(self, summary: dict[str, Any] | None = None, ok: bool = True) -> list[str]:
        """Closes the file and finishes the trackers (``summary``: the stage's final figures, which the
        trackers record as the runs' summary; ``ok``: whether the stage succeeded). Returns the fields of
        the trackers that failed on the way (the stage's summary reports them: never only a log line)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        failed: list[str] = []
        if self.trackers is not None:
            self.trackers.finish(summary or {}, ok)
            failed = self.trackers.failed
            self.trackers = None
        return failed


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a metrics file (for tests, benchmarks and summaries)."""
    p = Path(str(path).removeprefix("file://"))
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
