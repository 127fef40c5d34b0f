"""When to reconcile what: the event-driven loop between kopf's watch events and ``reconcile``.

- every event of a resource refreshes the cache and queues a reconcile of it (skipped when the event is
  only the echo of the operator's own status write); the kopf handler returns at once, and a resource
  already queued is not queued twice (the reconcile reads the latest cached body: level-based, as
  controller-runtime's work queue), so a burst of events holds neither kopf's per-event state nor
  duplicate reconciles;
- every event of an operator-made Job reconciles the resource that owns it;
- a resource whose status changed reconciles, right away, the stages that wait on it and the pipeline
  that owns it: this is the hand-off from one stage to the next, without polling;
- one reconcile at a time per resource (a lock), run in a worker thread; a finished Job's reconcile
  and the hand-off it causes go ahead of other work (``workqueue``);
- a failed reconcile (API error, a bug) is retried with exponential backoff, and a resource that waits
  on something no event announces (a Secret, pods being scheduled) is re-checked on a timer: no crash
  loop, no retry storm.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from typing import Any

from rlaif_operator import metrics, reaction, workqueue
from rlaif_operator.api.common import Status
from rlaif_operator.api.kinds import STAGE_KINDS
from rlaif_operator.builders import names
from rlaif_operator.cache import Key, key_of
from rlaif_operator.ensure import release_orphan
from rlaif_operator.eventsink import EventSink
from rlaif_operator.kube import KubeError
from rlaif_operator.reconcile import Context, Outcome, reconcile, release

log = logging.getLogger(__name__)
PIPELINE_COALESCE_SECONDS = 0.5  # a pipeline's status follows its stages: one update for a burst of changes


def _phase(body: dict[str, Any]) -> str | None:
    return (body.get("status") or {}).get("phase")


def _controller_ref(body: dict[str, Any], kinds: tuple[str, ...]) -> dict[str, Any] | None:
    return next((r for r in body["metadata"].get("ownerReferences", [])
                 if r.get("controller") and r.get("kind") in kinds), None)


def _reconcile_cached(ctx: Context, key: Key) -> Outcome:
    """Reconciles the resource's latest cached body (gone meanwhile: nothing to do)."""
    body = ctx.cache.get(key)
    return Outcome() if body is None else reconcile(ctx, body)


def _finished(job: dict[str, Any]) -> bool:
    """Whether the Job has finished (its Complete or Failed condition is True)."""
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in (job.get("status") or {}).get("conditions") or ())


def _record(key: Key, body: dict[str, Any]) -> None:
    try:
        status = Status.model_validate(body.get("status") or {})
    except ValueError:  # a status the operator did not write: its next status write sets the series
        return
    metrics.record_status(*key, status)


class Controller:
    """Owns the cache, the per-resource locks, the worker threads and the timers."""

    def __init__(self, ctx: Context, workers: int = 8):
        self.ctx = ctx
        self.pool = workqueue.PriorityPool(workers)
        self.locks: dict[Key, asyncio.Lock] = {}
        self.timers: dict[Key, asyncio.TimerHandle] = {}
        self.failures: dict[Key, int] = {}
        self.waits: dict[Key, int] = {}
        self.written: dict[Key, str] = {}  # resourceVersion of the operator's own last status write
        self.pending: dict[Key, reaction.Cause] = {}  # the earliest event no reconcile has acted on yet
        self.tasks: set[asyncio.Task[None]] = set()
        self.soon: set[Key] = set()  # pipelines with a reconcile already queued (coalesces child changes)
        self.queued: dict[Key, int] = {}  # resources with a reconcile queued and not started: its priority
        # Events are posted off the reconcile path, after the queued reconciles (each waits 1 s at most)
        self.events = EventSink(ctx.kube.post_event, busy=self.pool.busy)
        ctx.post_event = self.events

    # --- entry points (kopf handlers call these) ---------------------------------------------------

    async def on_resource_event(self, event_type: str | None, body: dict[str, Any]) -> None:
        key = key_of(body)
        token = reaction.received(*key)  # the writes this event causes are timed from here
        try:
            await self._resource_event(key, event_type, body)
        finally:
            reaction.done(token)

    async def _resource_event(self, key: Key, event_type: str | None, body: dict[str, Any]) -> None:
        if event_type == "DELETED":
            metrics.WATCH_EVENTS.labels(key[0], "deleted").inc()
            self.ctx.cache.drop(key)
            self._forget(key)
            metrics.forget(*key)  # its per-run series
            await self._propagate(key, body)  # dependents report it gone; the pipeline recreates or reports
            return
        previous = self.ctx.cache.header(key)
        if self.written.get(key) != body["metadata"].get("resourceVersion"):
            self._pending(key)  # before the cache has it: a reconcile that reads it acts on this event
        self.ctx.cache.put(body)
        if previous is None:  # first seen (at start-up, too): its per-run series until a status write
            _record(key, body)
        if self.written.get(key) == body["metadata"].get("resourceVersion"):
            metrics.WATCH_EVENTS.labels(key[0], "echo").inc()
            return  # the echo of our own status write: nothing new to act on
        metrics.WATCH_EVENTS.labels(key[0], "reconciled").inc()
        self.enqueue(key, workqueue.EVENT)
        if previous is not None and previous.phase != _phase(body):
            # A phase this replica did not see itself write (its write applied but the reply was lost,
            # or another replica wrote it): hand off to the waiting stages all the same.
            await self._propagate(key, body)

    async def on_job_event(self, event_type: str | None, body: dict[str, Any]) -> None:
        token = reaction.received(*key_of(body))
        try:
            await self._job_event(event_type, body)
        finally:
            reaction.done(token)

    async def _job_event(self, event_type: str | None, body: dict[str, Any]) -> None:
        owner = _controller_ref(body, STAGE_KINDS)
        key = (owner["kind"], body["metadata"].get("namespace"), owner["name"]) if owner is not None else None
        if event_type == "DELETED":
            metrics.WATCH_EVENTS.labels("Job", "deleted").inc()
            self.ctx.cache.drop(key_of(body))
        else:
            known = self.ctx.cache.header(key_of(body))
            if known is not None and known.resource_version == body["metadata"].get("resourceVersion"):
                metrics.WATCH_EVENTS.labels("Job", "echo").inc()
                return  # the Job as the operator created it: its owner has already seen it
            if key is not None:
                self._pending(key)  # before the cache has it: a reconcile that reads it acts on this event
            self.ctx.cache.put(body)
            metrics.WATCH_EVENTS.labels("Job", "reconciled").inc()
        if owner is None or key is None:
            return
        cached_owner = self.ctx.cache.header(key)
        if event_type != "DELETED" and body["metadata"].get("deletionTimestamp") \
                and names.RESULT_FINALIZER in (body["metadata"].get("finalizers") or []) \
                and (cached_owner is None or cached_owner.uid != owner.get("uid")):
            # Being deleted, and its owner is not known: gone (a deleted namespace, or a stage deleted and
            # re-created under the same name: another uid), or not listed yet.
            await self._run(key, release_orphan, body)
            return
        self.enqueue(key, workqueue.FINISHED if _finished(body) else workqueue.EVENT)

    async def _run(self, key: Key, fn: Any, *args: Any, priority: int = workqueue.EVENT) -> None:
        """Runs ``fn(ctx, *args)`` in a worker thread; a failure is retried by reconciling ``key``."""
        try:
            await asyncio.wrap_future(self.pool.submit(priority, reaction.in_context(fn), self.ctx, *args))
        except Exception as err:  # noqa: BLE001 - retried with backoff, never fatal
            self._failed(key, err)

    # --- reconciling -------------------------------------------------------------------------------

    def _pending(self, key: Key) -> None:
        """The event being handled waits for a reconcile of ``key`` (the first one to start acts on it)."""
        cause = reaction.current()
        if cause is not None:
            self.pending.setdefault(key, cause)

    def enqueue(self, key: Key, priority: int) -> None:
        """Queues a reconcile of ``key`` unless one is queued and not started yet (that one will read
        what this event brought; it goes at the more urgent of the two priorities)."""
        if key in self.queued:
            self.queued[key] = min(self.queued[key], priority)
            return
        self.queued[key] = priority
        task = asyncio.get_running_loop().create_task(self.reconcile(key, priority))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def reconcile(self, key: Key, priority: int = workqueue.BACKGROUND) -> None:
        """Reconciles one resource from its cached body (queued at ``priority``); then whatever depends
        on its status."""
        lock = self.locks.setdefault(key, asyncio.Lock())
        await lock.acquire()
        # Started: what arrives from now on needs another reconcile (this one may have read too early).
        priority = min(priority, self.queued.pop(key, priority))
        attribution = reaction.Reconciling(lambda: self.pending.get(key))
        started = time.monotonic()
        try:
            outcome = await self._reconcile_locked(key, lock, priority, attribution)
        finally:
            waiting = self.pending.get(key)
            if waiting is not None and (waiting is attribution.used or waiting.monotonic < started):
                del self.pending[key]  # acted on (or seen whole: it arrived before this reconcile read)
        token = reaction.adopt(attribution.used)  # the hand-off is timed from what this one acted on
        try:
            if outcome is not None and outcome.changed and outcome.body is not None:
                await self._propagate(key, outcome.body, waiters=not outcome.progress_only)
            if outcome is not None and outcome.release and outcome.body is not None:
                await self._run(key, release, outcome.body, priority=workqueue.BACKGROUND)
        finally:
            reaction.done(token)

    async def _reconcile_locked(self, key: Key, lock: asyncio.Lock, priority: int,
                                attribution: reaction.Reconciling) -> Outcome | None:
        """``reconcile`` with ``lock`` held (released here, before the hand-off to dependents). Returns
        the outcome (None: nothing to reconcile, or it failed and is retried)."""
        try:
            if self.ctx.cache.header(key) is None:
                return None
            try:
                # The key, not the body: read when a thread takes it (a burst queues thousands).
                outcome: Outcome = await asyncio.wrap_future(
                    self.pool.submit(priority, reaction.in_context(_reconcile_cached, attribution), self.ctx, key))
            except KubeError as err:
                if err.status == 404:  # deleted meanwhile: its DELETED event cleans up
                    return None
                self._failed(key, err)
                return None
            except Exception as err:  # noqa: BLE001 - any failure is retried with backoff, never fatal
                self._failed(key, err)
                return None
            self.failures.pop(key, None)
            if self.ctx.cache.header(key) is None:
                metrics.forget(*key)  # deleted while this reconcile wrote its status
            if outcome.changed and outcome.body is not None:
                self.ctx.cache.put(outcome.body)
                self.written[key] = outcome.body["metadata"].get("resourceVersion", "")
            if outcome.recheck_after:
                waits = self.waits.get(key, 0)
                self.waits[key] = waits + 1
                self._schedule(key, min(outcome.recheck_after * 2 ** min(waits, 10),
                                        self.ctx.settings.recheck_max_seconds))
            elif outcome.refresh_after:  # live progress: a fixed interval, no backoff
                self.waits.pop(key, None)
                self._schedule(key, outcome.refresh_after)
            else:
                self.waits.pop(key, None)
                self._cancel(key)
        finally:
            lock.release()
        return outcome

    def _failed(self, key: Key, err: Exception) -> None:
        count = self.failures.get(key, 0) + 1
        self.failures[key] = count
        delay = min(2.0 ** count, self.ctx.settings.recheck_max_seconds)
        log.warning("reconcile of %s/%s/%s failed (%s); retrying in %.0fs", *key, err, delay,
                    exc_info=not isinstance(err, KubeError | OSError))
        self._schedule(key, delay)

    async def _propagate(self, key: Key, body: dict[str, Any], waiters: bool = True) -> None:
        """A stage's status changed: the stages waiting on it look again (unless only its progress moved)
        and its pipeline sums up again."""
        kind, namespace, _ = key
        if kind not in STAGE_KINDS:
            return
        for waiter in self.ctx.cache.waiting_on(key) if waiters else ():
            await self.reconcile(waiter, workqueue.HANDOFF)
        owner = _controller_ref(body, ("RLAIFPipeline",))
        if owner is not None:
            self._reconcile_soon(("RLAIFPipeline", namespace, owner["name"]))

    def _reconcile_soon(self, key: Key) -> None:
        """Queues a reconcile off the hand-off path; several child changes make one pipeline update."""
        if key in self.soon:
            return
        self.soon.add(key)

        async def run() -> None:
            await asyncio.sleep(PIPELINE_COALESCE_SECONDS)
            self.soon.discard(key)
            await self.reconcile(key)

        task = asyncio.get_running_loop().create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- timers ------------------------------------------------------------------------------------

    def _schedule(self, key: Key, delay: float) -> None:
        self._cancel(key)
        loop = asyncio.get_running_loop()
        # A fresh context: a timed re-check is caused by the clock, not by the event being handled now.
        self.timers[key] = loop.call_later(delay, self._fire, key, context=contextvars.Context())
        metrics.QUEUED_RECHECKS.set(len(self.timers))

    def _fire(self, key: Key) -> None:
        self.timers.pop(key, None)
        metrics.QUEUED_RECHECKS.set(len(self.timers))
        task = asyncio.get_running_loop().create_task(self.reconcile(key))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _cancel(self, key: Key) -> None:
        handle = self.timers.pop(key, None)
        if handle is not None:
            handle.cancel()
            metrics.QUEUED_RECHECKS.set(len(self.timers))

    def _forget(self, key: Key) -> None:
        self._cancel(key)
        for table in (self.failures, self.waits, self.written, self.pending, self.queued):
            table.pop(key, None)  # type: ignore[attr-defined]
        lock = self.locks.get(key)
        if lock is not None and not lock.locked():
            self.locks.pop(key, None)

    def close(self) -> None:
        for handle in self.timers.values():
            handle.cancel()
        self.timers.clear()
        for task in self.tasks:
            task.cancel()
        self.pool.shutdown()
        self.events.close()
