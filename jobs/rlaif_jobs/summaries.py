"""How a workload reports back: ``summary.json`` in its output folder plus the termination message.

The summary is ``{"stage", "outputs": {name: uri}, "metrics": {name: number}, ...}``. The operator reads
the same JSON from the pod's termination message (Kubernetes keeps at most 4 KiB of it), and the
local runner reads ``summary.json``; so both see the same outputs and metrics.

Metric names the platform shows (printer columns, pipeline status) — workloads use these keys:
labeling ``labeled``, ``alignment``, ``samePositionRate``; reward ``evalAccuracy``, ``evalLoss``;
policy ``meanReward``, ``kl``, ``winRate``.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from rlaif_jobs import io
from rlaif_jobs.errors import EXIT_CONFIG_ERROR

__all__ = ["EXIT_CONFIG_ERROR", "read_summary", "summary_uri", "write_summary", "write_termination_message"]

TERMINATION_LOG_ENV = "RLAIF_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"
MAX_TERMINATION_BYTES = 4096


def summary_uri(output_uri: str) -> str:
    return io.join(output_uri, "summary.json")


def write_summary(output_uri: str, stage: str, outputs: dict[str, str], metrics: dict[str, Any],
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Writes summary.json atomically and the compact termination message; returns the summary."""
    numeric = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and v == v}
    summary = {"stage": stage, "outputs": outputs, "metrics": numeric, **(extra or {})}
    io.write_json(summary_uri(output_uri), summary)
    write_termination_message({"outputs": outputs, "metrics": numeric})
    return summary


def write_termination_message(payload: dict[str, Any]) -> None:
    """Writes the payload to the termination-message file if there is one (in a pod), within 4 KiB."""
    path = os.environ.get(TERMINATION_LOG_ENV) or DEFAULT_TERMINATION_LOG
    if not os.environ.get(TERMINATION_LOG_ENV) and not Path(path).exists():
        return  # not in a pod: nothing to write
    text = json.dumps(payload, separators=(",", ":"), sort_keys=True)
    if len(text.encode()) > MAX_TERMINATION_BYTES:  # keep outputs, drop metrics until it fits
        payload = {"outputs": payload.get("outputs", {}), "metrics": {}}
        text = json.dumps(payload, separators=(",", ":"))[:MAX_TERMINATION_BYTES]
    with contextlib.suppress(OSError):  # reporting must never fail the workload itself
        Path(path).write_text(text)


def read_summary(output_uri: str) -> dict[str, Any] | None:
    """The summary a finished stage wrote, or None if it has not finished."""
    uri = summary_uri(output_uri)
    return io.read_json(uri) if io.exists(uri) else None

# Output names in summary["outputs"] that downstream stages consume.
OUTPUT_LABELS = "labels"  # labeling -> reward model: the merged labels file
OUTPUT_MODEL = "model"  # reward model -> policy, and the policy's final export: an HF folder
