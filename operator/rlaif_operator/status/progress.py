"""A running stage's progress and last log lines, read from its pod's log (pure: text in, values out).

The workloads print one ``RLAIF_PROGRESS {json}`` line per progress event on a cluster
(``rlaif_jobs.progress``: phase, done, total, unit, rate, doing, metrics, t). The operator reads the tail
of the rank-0 pod's log (``observe.py``) and turns the latest such line into ``status.progress``;
when the stage finishes, the last ordinary lines become ``status.logTail``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from rlaif_jobs.progress import LOG_PREFIX
from rlaif_operator.api.common import Progress

TAIL_LINES = 20  # lines kept in status.logTail
TAIL_LINE_CHARS = 300  # characters kept of each (a tqdm redraw can be one very long line)


def latest_event(log_text: str) -> dict[str, Any] | None:
    """The last well-formed progress event in a log excerpt, or None."""
    for line in reversed(log_text.splitlines()):
        # tqdm redraws with carriage returns: the event may follow one on the same line
        at = line.rfind(LOG_PREFIX)
        if at < 0:
            continue
        try:
            event = json.loads(line[at + len(LOG_PREFIX):])
        except ValueError:
            continue
        if isinstance(event, dict) and isinstance(event.get("phase"), str) and isinstance(event.get("done"), int):
            return event
    return None


def duration(seconds: float) -> str:
    """A short human duration: 45s, 12m30s, 3h05m, 2d04h."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def to_progress(event: dict[str, Any], observed: datetime) -> Progress:
    """``status.progress`` from a progress event read at ``observed``."""
    done = max(0, int(event["done"]))
    total = event.get("total")
    total = int(total) if isinstance(total, int) and total >= 0 else None
    unit = str(event.get("unit") or "")
    rate = _number(event.get("rate"))
    rate = rate if rate is not None and rate >= 0 else None
    percent = min(100, int(100 * done / total)) if total else None
    eta = None
    if total is not None and rate:
        eta = duration(max(0, total - done) / rate)
    summary = f"{event['phase']} {done}" + (f"/{total}" if total is not None else "") + (f" {unit}" if unit else "")
    if percent is not None:
        summary += f" ({percent}%)"
    if event.get("doing"):
        summary += f", {event['doing']}"
    metrics = {str(k): v for k, v in (event.get("metrics") or {}).items() if _number(v) is not None}
    reported = _number(event.get("t"))
    return Progress(phase=str(event["phase"]), done=done, total=total, unit=unit, percent=percent,
                    rate=round(rate, 4) if rate is not None else None, eta=eta, summary=summary,
                    metrics=metrics, observed_time=_rfc3339(observed),
                    reported_time=_rfc3339(datetime.fromtimestamp(reported, UTC)) if reported else None)


def log_tail(log_text: str, lines: int = TAIL_LINES) -> list[str]:
    """The last ``lines`` lines a pod logged, without progress events and blank lines, each cut to
    ``TAIL_LINE_CHARS`` (a carriage-return redraw keeps its last frame)."""
    kept: list[str] = []
    for line in reversed(log_text.split("\n")):  # not splitlines(): a "\r" redraw is one line
        line = line.rsplit("\r", 1)[-1].rstrip()
        if not line or LOG_PREFIX in line:
            continue
        kept.append(line if len(line) <= TAIL_LINE_CHARS else line[:TAIL_LINE_CHARS] + "...")
        if len(kept) == lines:
            break
    return kept[::-1]


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
