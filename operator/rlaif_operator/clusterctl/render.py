"""What ``rlaif status`` prints: pure functions from resource dicts (as the API returns them) to text.

Every status field may be absent (a resource the operator has not reconciled yet, an operator older than
the field), so nothing here assumes one; a missing value prints as ``-`` or its line is left out.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rlaif_operator.api.kinds import KINDS, STAGE_KINDS
from rlaif_operator.builders.names import LABEL_PIPELINE

NONE = "-"


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 timestamp as the API writes it (``2024-05-01T12:00:00Z``), or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def short_duration(seconds: float) -> str:
    """kubectl's AGE style: 42s, 7m30s, 17m, 2h15m, 5h, 3d4h, 12d."""
    s = max(0, int(seconds))
    minutes, hours = s // 60, s // 3600
    days = hours // 24
    if s < 120:
        return f"{s}s"
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 60:
        return f"{minutes}m"
    if hours < 3:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    return f"{days}d"


def age(timestamp: Any, now: datetime) -> str:
    moment = parse_time(timestamp)
    return short_duration((now - moment).total_seconds()) if moment else NONE


def columns(rows: list[list[str]], gap: int = 3) -> str:
    """Rows as aligned columns (the first row is the header); the last column is not padded."""
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(max(len(r) for r in rows))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append((" " * gap).join(cells).rstrip())
    return "\n".join(lines)


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, dict) else {}


def _progress(obj: dict[str, Any]) -> dict[str, Any]:
    progress = _status(obj).get("progress")
    return progress if isinstance(progress, dict) else {}


def ref(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"


def progress_cells(obj: dict[str, Any]) -> tuple[str, str]:
    """(progress, ETA) for the table: the operator's progress summary and ETA while it runs; for a
    pipeline without one, how many of its stages succeeded."""
    progress = _progress(obj)
    summary, eta = progress.get("summary"), progress.get("eta")
    if not summary and obj.get("kind") == "RLAIFPipeline":
        stages = _status(obj).get("stages") or []
        if stages:
            done = sum(1 for s in stages if isinstance(s, dict) and s.get("phase") == "Succeeded")
            current = _status(obj).get("currentStage")
            summary = f"{done}/{len(stages)} stages succeeded" + (f", at {current}" if current else "")
    return str(summary or NONE), str(eta or NONE)


def _sort_key(obj: dict[str, Any]) -> tuple[str, int, str]:
    """A pipeline, then its stages in run order; standalone stages by name."""
    meta = obj.get("metadata") or {}
    kind = obj.get("kind", "")
    group = (meta.get("labels") or {}).get(LABEL_PIPELINE) or meta.get("name", "")
    rank = 0 if kind == "RLAIFPipeline" else 1 + (STAGE_KINDS.index(kind) if kind in STAGE_KINDS else len(KINDS))
    return group, rank, meta.get("name", "")


def table(resources: list[dict[str, Any]], now: datetime) -> str:
    """``rlaif status``: one line per resource (kind, name, phase, progress, ETA, age)."""
    rows = [["KIND", "NAME", "PHASE", "PROGRESS", "ETA", "AGE"]]
    for obj in sorted(resources, key=_sort_key):
        meta = obj.get("metadata") or {}
        summary, eta = progress_cells(obj)
        rows.append([obj.get("kind", "?"), meta.get("name", "?"), _status(obj).get("phase") or NONE,
                     summary, eta, age(meta.get("creationTimestamp"), now)])
    return columns(rows)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _field(label: str, value: Any, width: int = 13) -> str:
    return f"{(label + ':').ljust(width)}{value}"


def progress_lines(progress: dict[str, Any], now: datetime) -> list[str]:
    """``status.progress`` in detail (phase, done/total unit, percent, rate, ETA, metrics, when read)."""
    if not progress:
        return []
    lines = [_field("Progress", progress.get("summary") or progress.get("phase") or NONE)]
    done, total, unit = progress.get("done"), progress.get("total"), progress.get("unit") or ""
    counted = f"{done if done is not None else '?'}" + (f"/{total}" if total is not None else "")
    counted += f" {unit}" if unit else ""
    if progress.get("percent") is not None:
        counted += f" ({progress['percent']}%)"
    lines.append("  " + _field("Phase", progress.get("phase") or NONE, 11))
    lines.append("  " + _field("Done", counted, 11))
    if progress.get("rate") is not None:
        lines.append("  " + _field("Rate", f"{_number(progress['rate'])} {unit or 'units'}/s", 11))
    if progress.get("eta"):
        lines.append("  " + _field("ETA", progress["eta"], 11))
    metrics = progress.get("metrics") or {}
    if metrics:
        lines.append("  " + _field("Metrics", ", ".join(f"{k}={_number(v)}" for k, v in sorted(metrics.items())), 11))
    observed = progress.get("observedTime")
    if observed:
        lines.append("  " + _field("Observed", f"{observed} ({age(observed, now)} ago)", 11))
    return lines


def _mapping(title: str, values: Any) -> list[str]:
    if not isinstance(values, dict) or not values:
        return []
    width = max(len(str(k)) for k in values) + 2
    return [f"{title}:"] + [f"  {(str(k) + ':').ljust(width)}{_number(v)}" for k, v in sorted(values.items())]


def describe(obj: dict[str, Any], now: datetime) -> str:
    """``rlaif status NAME``: phase, message, progress, a pipeline's stages, conditions, outputs, metrics,
    restarts and preemptions."""
    meta = obj.get("metadata") or {}
    status = _status(obj)
    lines = [f"{ref(obj)}   namespace {meta.get('namespace', NONE)}   age {age(meta.get('creationTimestamp'), now)}"]
    lines.append(_field("Phase", status.get("phase") or f"{NONE} (not reconciled yet)"))
    if status.get("message"):
        lines.append(_field("Message", status["message"]))
    generation, observed = meta.get("generation"), status.get("observedGeneration")
    if generation is not None and observed is not None and observed < generation:
        lines.append(_field("Note", f"status is of generation {observed}; the spec is at {generation}"))
    for label, key in (("Started", "startTime"), ("Finished", "completionTime")):
        if status.get(key):
            lines.append(_field(label, f"{status[key]} ({age(status[key], now)} ago)"))
    if obj.get("kind") == "RLAIFPipeline" and status.get("currentStage"):
        lines.append(_field("Stage", status["currentStage"]))
    lines += progress_lines(_progress(obj), now)
    counters = [f"{label} {status[key]}" for label, key in (("restarts", "restarts"), ("preemptions", "preemptions"))
                if status.get(key) is not None]
    if counters:
        lines.append(_field("Restarts", ", ".join(counters)))

    stages = [s for s in status.get("stages") or [] if isinstance(s, dict)]
    if stages:
        current = status.get("currentStage")
        rows = [["", "KIND", "NAME", "PHASE", "PROGRESS", "ETA"]]
        rows += [["*" if s.get("name") == current else "", s.get("kind") or NONE, s.get("name") or NONE,
                  s.get("phase") or NONE, s.get("progress") or NONE, s.get("eta") or NONE] for s in stages]
        lines += ["Stages:"] + ["  " + line for line in columns(rows, gap=2).splitlines()]

    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict)]
    if conditions:
        rows = [["TYPE", "STATUS", "REASON", "MESSAGE"]]
        rows += [[c.get("type") or NONE, c.get("status") or NONE, c.get("reason") or NONE, c.get("message") or ""]
                 for c in conditions]
        lines += ["Conditions:"] + ["  " + line for line in columns(rows, gap=2).splitlines()]
    lines += _mapping("Outputs", status.get("outputs"))
    lines += _mapping("Metrics", status.get("metrics"))
    if obj.get("kind") != "RLAIFPipeline" and status.get("logTail"):
        lines.append(f"Log:         {len(status['logTail'])} last lines kept: rlaif logs {ref(obj).lower()}")
    return "\n".join(lines)


def now_utc() -> datetime:
    return datetime.now(UTC)
