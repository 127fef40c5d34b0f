"""kopf handlers: decorators only. Each passes the event to the controller, which reconciles.

Start with ``python -m rlaif_operator`` (settings from ``RLAIF_*``), or
``kopf run -m rlaif_operator.handlers --standalone --all-namespaces``.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import kopf

from rlaif_operator import ensure, eventsink, kopfconfig, leader, metrics
from rlaif_operator.api.common import GROUP, VERSION
from rlaif_operator.api.kinds import KINDS
from rlaif_operator.builders.names import LABEL_MANAGED_BY, MANAGED_BY
from rlaif_operator.controller import Controller
from rlaif_operator.kube import Kube
from rlaif_operator.reconcile import Context
from rlaif_operator.settings import load_settings


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours = load_settings()
    logging.getLogger("rlaif_operator").setLevel(ours.log_level)
    if ours.log_level != "DEBUG":  # kopf logs every handled event at INFO: one line per watch event
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    kopfconfig.configure(settings, ours)
    # A kept-alive connection for each thread that calls the API: reconciles, Events, creates sent together
    kube = Kube(timeout=ours.api_timeout_seconds,
                connections=ours.reconcile_workers + eventsink.THREADS + ensure.CREATE_THREADS)
    # High availability: a standby replica waits here, before kopf watches anything (kopf starts its
    # watchers only when the startup handlers finished), until it holds the Lease.
    memo.elector = await leader.lead(kube, ours)
    memo.controller = Controller(Context(kube, ours), ours.reconcile_workers)
    metrics.serve(ours.metrics_port)
    # Everything loaded so far (modules, schemas, settings) lives as long as the process: out of the
    # collector's sight, so that its full collections scan only what the watches brought. Python's
    # default thresholds stay: kopf wraps every event's body in objects that refer to each other, so
    # each dead one waits for the cycle collector, and rarer collections (10 000, 20, 20) let a
    # thousand pipelines' bursts pile them up (bench/bench_operator.py --pipelines 1000, one loaded pair:
    # 306 MB peak against 240 MB, for no CPU saved; quiet runs since land at 212-235 MB either way).
    gc.freeze()


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    memo.controller.close()
    leader.step_down(memo.elector)  # a standby takes over on its next retry instead of after expiry


async def resource_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:  # noqa: A002
    await memo.controller.on_resource_event(type, dict(body))


for _kind in KINDS.values():  # one event handler per rlaif.dev kind, from the registry in api/kinds.py
    kopf.on.event(GROUP, VERSION, _kind.PLURAL)(resource_event)


@kopf.on.event("batch", "v1", "jobs", labels={LABEL_MANAGED_BY: MANAGED_BY})
async def job_event(type: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:  # noqa: A002
    await memo.controller.on_job_event(type, dict(body))


@kopf.on.probe(id="cachedObjects")
def cached_objects(memo: kopf.Memo, **_: Any) -> int:
    return len(memo.controller.ctx.cache)
