"""Per-step metrics: JSON lines on rank 0 (and TensorBoard events when the package is installed).

Each line is ``{"step": N, "time": unix seconds, "elapsed": seconds since the logger started,
"cpuSeconds": this process's CPU time, ...}`` (CPU time tells compute from waiting on a shared machine).
A resumed run first drops the lines of steps after the checkpoint it resumes from (they were trained
again), so the file reads as one run. Other ranks hold a logger that writes nothing.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from rlaif_jobs import io

log = logging.getLogger(__name__)


class MetricsLogger:
    """Appends metric records to ``path`` (JSONL) when ``enabled`` (rank 0); optional TensorBoard.

    Inputs: the file, whether this rank writes, an optional TensorBoard folder (skipped with a log line
    when ``tensorboard`` is not importable) and ``resume_step`` (keep only lines with step <= it; None
    on a fresh start keeps nothing: the file is started anew).
    """

    def __init__(self, path: str | Path, enabled: bool = True, tensorboard_dir: str | Path | None = None,
                 resume_step: int | None = None):
        self.path = Path(str(path).removeprefix("file://"))
        self.enabled = enabled
        self.start = time.time()
        self._file = None
        self._tb = None
        if not enabled:
            return
        kept = self._kept_lines(resume_step)
        io.write_jsonl(str(self.path), kept)  # atomic rewrite, then append
        self._file = self.path.open("a", buffering=1)
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(log_dir=str(tensorboard_dir))
            except ImportError:
                log.info("tensorboard is not installed: metrics go to %s only", self.path)

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
        if self._tb is not None:
            for k, v in clean.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and v is not None:
                    self._tb.add_scalar(k, v, step)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a metrics file (for tests, benchmarks and summaries)."""
    p = Path(str(path).removeprefix("file://"))
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
