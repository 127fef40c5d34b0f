"""Prometheus metrics of the operator (served on ``settings.metrics_port`` at /metrics).

Two sorts:

- the operator's own (``rlaif_operator_*``): reconciles, failures, stage durations, hand-off latency, watch
  events; their labels are kinds, reasons and results, a fixed handful;
- per run (``rlaif_run_*``, like kube-state-metrics' ``kube_pod_status_phase``): one series set per live
  resource, labelled ``kind``, ``namespace``, ``name``: ``rlaif_run_phase`` (one series per phase, 1 for the
  current one), ``rlaif_run_progress_ratio`` and ``rlaif_run_eta_seconds`` while the run reports progress,
  ``rlaif_run_duration_seconds`` once it started. ``record_status`` sets them whenever the operator writes a
  status (and when it first sees a resource, so a restarted operator reports every run again);
  ``forget`` drops them when the resource is deleted. Cardinality is bounded by the resources that exist:
  at most 8 series per run (5 phases, progress, ETA, duration), none left behind by a deleted one. Each
  replica reports what it has seen; only the leader writes statuses, so aggregate with ``max by``.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from rlaif_operator.api.common import Phase, Status

RECONCILES = Counter("rlaif_operator_reconciles_total", "Reconciles run, by kind and result (ok, error).",
                     ["kind", "result"])
RECONCILE_SECONDS = Histogram("rlaif_operator_reconcile_seconds", "Time one reconcile took.", ["kind"],
                              buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
STAGE_FAILURES = Counter("rlaif_operator_stage_failures_total", "Resources that became Failed, by reason.",
                         ["kind", "reason"])
STAGE_SECONDS = Histogram("rlaif_operator_stage_duration_seconds",
                          "Start to finish of a stage or pipeline, by kind and final phase.", ["kind", "phase"],
                          buckets=(10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 43200, 86400))
CHILDREN_CREATED = Counter("rlaif_operator_children_created_total", "Objects created, by kind.", ["kind"])
HANDOFF_SECONDS = Histogram("rlaif_operator_handoff_seconds",
                            "Upstream stage finished -> downstream Job created (1 s timestamp resolution).",
                            buckets=(0.5, 1, 2, 5, 10, 30, 60, 300))
WATCH_EVENTS = Counter("rlaif_operator_watch_events_total",
                       "Watch events handled, by kind and what came of them (reconciled, echo: the operator's own"
                       " write coming back, deleted).", ["kind", "outcome"])
QUEUED_RECHECKS = Gauge("rlaif_operator_rechecks_pending", "Resources waiting for a timed re-check.")

PHASES: tuple[Phase, ...] = ("Pending", "Waiting", "Running", "Succeeded", "Failed")
RUN_LABELS = ["kind", "namespace", "name"]
_ETA_PART = re.compile(r"(\d+)([dhms])")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


@dataclass(frozen=True)
class RunRecord:
    """What the per-run metrics say about one resource, as of its last written status."""

    phase: str | None
    progress: float | None  # 0..1
    eta: float | None  # seconds left in the current progress phase, as last reported
    start: float | None  # unix seconds
    end: float | None


def _time(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _eta_seconds(text: str | None) -> float | None:
    """``status.progress.eta`` (45s, 12m30s, 3h05m, 2d04h) in seconds."""
    parts = _ETA_PART.findall(text or "")
    return float(sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)) if parts else None


def run_record(status: Status) -> RunRecord:
    """The per-run metrics of a status: progress from ``status.progress`` (absent before the workload
    reports and once the run finished), its ETA from the rate when there is one, else from ``eta``."""
    progress = eta = None
    p = status.progress
    if p is not None:
        if p.total:
            progress = min(1.0, p.done / p.total)
        elif p.percent is not None:
            progress = p.percent / 100
        rated = p.total is not None and p.rate
        eta = max(0, (p.total or 0) - p.done) / (p.rate or 1) if rated else _eta_seconds(p.eta)
    return RunRecord(phase=status.phase, progress=progress, eta=eta, start=_time(status.start_time),
                     end=_time(status.completion_time))


class RunCollector(Collector):
    """The ``rlaif_run_*`` series, built at each scrape from one record per live resource (so a running
    run's duration is current, and a forgotten run leaves nothing behind)."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str, str], RunRecord] = {}
        self._lock = threading.Lock()

    def record(self, kind: str, namespace: str, name: str, record: RunRecord) -> None:
        with self._lock:
            self._runs[(kind, namespace, name)] = record

    def forget(self, kind: str, namespace: str, name: str) -> None:
        with self._lock:
            self._runs.pop((kind, namespace, name), None)

    def runs(self) -> dict[tuple[str, str, str], RunRecord]:
        with self._lock:
            return dict(self._runs)

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        phase, progress, eta, duration = self._families()
        now = time.time()
        for labels, run in sorted(self.runs().items()):
            values = list(labels)
            if run.phase is not None:
                for p in PHASES:
                    phase.add_metric([*values, p], 1.0 if run.phase == p else 0.0)
            if run.progress is not None:
                progress.add_metric(values, run.progress)
            if run.eta is not None:
                eta.add_metric(values, run.eta)
            if run.start is not None:
                duration.add_metric(values, max(0.0, (run.end if run.end is not None else now) - run.start))
        return [phase, progress, eta, duration]

    @staticmethod
    def _families() -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily("rlaif_run_phase", "A run's phase: 1 for the current one, 0 for the others"
                              " (one series per phase, like kube_pod_status_phase).", labels=[*RUN_LABELS, "phase"]),
            GaugeMetricFamily("rlaif_run_progress_ratio", "A running run's progress in its current phase,"
                              " 0..1 (status.progress).", labels=RUN_LABELS),
            GaugeMetricFamily("rlaif_run_eta_seconds", "A running run's estimated time left in its current"
                              " phase, as last reported (status.progress).", labels=RUN_LABELS),
            GaugeMetricFamily("rlaif_run_duration_seconds", "A run's start to completion, or to now while it"
                              " has not finished (status.startTime, status.completionTime).", labels=RUN_LABELS),
        ]


RUNS = RunCollector()
REGISTRY.register(RUNS)


def record_status(kind: str, namespace: str | None, name: str, status: Status) -> None:
    """Sets the per-run series of one resource from the status just written (or first seen)."""
    RUNS.record(kind, namespace or "", name, run_record(status))


def forget(kind: str, namespace: str | None, name: str) -> None:
    """Drops the per-run series of a deleted resource."""
    RUNS.forget(kind, namespace or "", name)


def serve(port: int) -> None:
    """Starts the /metrics HTTP server in a daemon thread (0: do nothing)."""
    if port:
        start_http_server(port)
