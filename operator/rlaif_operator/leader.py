"""Leader election on a ``coordination.k8s.io/v1`` Lease: of several operator replicas, one acts.

The algorithm is client-go's (the one kube-controller-manager uses):

- a replica that finds the Lease free, expired, or missing writes itself in as the holder (an update
  with the Lease's resourceVersion, so of two replicas racing for it exactly one wins; the other gets
  409 Conflict and stays standby);
- "expired" is judged on this replica's own clock: the holder's record has not changed for
  ``lease_seconds`` since this replica first saw it (no trust in another machine's clock);
- the leader renews every ``retry_seconds``; if it cannot renew for ``renew_deadline_seconds``
  (< ``lease_seconds``) it exits at once, before any standby may take over, so two never act together;
- a leader that shuts down cleanly releases the Lease, and a standby takes over on its next retry.

API calls: leases get, create, update (in one namespace).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from rlaif_operator.kube import Kube, KubeError

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def default_identity() -> str:
    """This replica's name in the Lease: the pod's hostname (its name in a Deployment) and the pid."""
    return f"{socket.gethostname()}_{os.getpid()}"


def default_namespace() -> str:
    """The pod's own namespace in a cluster, else ``default``."""
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE) as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


def _micro_time() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaderElector:
    """Acquires, renews and releases one Lease for ``identity``.

    Inputs: the API client, the Lease's namespace and name, this replica's identity and the timings.
    ``try_acquire_or_renew`` is one round (a get, then a create or an update when needed); the async
    methods loop it.
    """

    def __init__(self, kube: Kube, namespace: str, name: str, identity: str, *, lease_seconds: float = 15,
                 renew_deadline_seconds: float = 10, retry_seconds: float = 2):
        if not retry_seconds < renew_deadline_seconds < lease_seconds:
            raise ValueError("leader election needs retry < renew deadline < lease duration, got"
                             f" {retry_seconds} / {renew_deadline_seconds} / {lease_seconds}")
        self.kube, self.namespace, self.name, self.identity = kube, namespace, name, identity
        self.lease_seconds, self.renew_deadline, self.retry = lease_seconds, renew_deadline_seconds, retry_seconds
        self.path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{name}"
        self._observed: tuple[Any, ...] | None = None  # the holder's record as last seen
        self._observed_at = 0.0  # monotonic time it last changed
        self.last_renewed = 0.0  # monotonic time of this replica's last successful acquire/renew
        self.task: asyncio.Task[None] | None = None  # the renewing loop while leading

    def _spec(self, old: dict[str, Any] | None) -> dict[str, Any]:
        now = _micro_time()
        spec = dict((old or {}).get("spec") or {})
        mine = spec.get("holderIdentity") == self.identity
        spec.update(holderIdentity=self.identity, leaseDurationSeconds=max(1, round(self.lease_seconds)),
                    renewTime=now)
        if not mine:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + (1 if old else 0)
        return spec

    def try_acquire_or_renew(self) -> bool:
        """One round; True when this replica holds the Lease afterwards."""
        try:
            lease = self.kube.request("GET", self.path)
        except KubeError as err:
            if err.status != 404:
                raise
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": self.namespace}, "spec": self._spec(None)}
            try:
                self.kube.request("POST", self.path.rsplit("/", 1)[0], body=body)
            except KubeError as create_err:
                if create_err.status == 409:  # another replica created it first
                    return False
                raise
            self.last_renewed = time.monotonic()
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        record = (holder, spec.get("renewTime"), spec.get("leaseDurationSeconds"))
        now = time.monotonic()
        if record != self._observed:
            self._observed, self._observed_at = record, now
        duration = float(spec.get("leaseDurationSeconds") or self.lease_seconds)
        if holder and holder != self.identity and now < self._observed_at + duration:
            return False  # someone else holds a live lease
        body = {**lease, "spec": self._spec(lease)}
        try:
            self.kube.request("PUT", self.path, body=body)  # carries the resourceVersion: one winner
        except KubeError as err:
            if err.status == 409:
                return False
            raise
        if holder != self.identity:
            log.info("leader election: took over lease %s/%s from %r", self.namespace, self.name, holder or None)
        self.last_renewed = time.monotonic()
        return True

    def _round(self) -> bool:
        try:
            return self.try_acquire_or_renew()
        except KubeError as err:
            log.warning("leader election: lease %s/%s: %s", self.namespace, self.name, err)
            return False

    async def acquire(self) -> None:
        """Waits until this replica holds the Lease."""
        log.info("leader election: %s waits for lease %s/%s", self.identity, self.namespace, self.name)
        while not await asyncio.to_thread(self._round):
            await asyncio.sleep(self.retry)
        log.info("leader election: %s leads (lease %s/%s)", self.identity, self.namespace, self.name)

    async def keep(self, on_lost: Callable[[], None]) -> None:
        """Renews every ``retry_seconds``; calls ``on_lost`` when no renewal succeeded for the deadline."""
        while True:
            await asyncio.sleep(self.retry)
            if await asyncio.to_thread(self._round):
                continue
            if time.monotonic() - self.last_renewed >= self.renew_deadline:
                log.error("leader election: %s could not renew lease %s/%s for %.0fs: stopping so that a"
                          " standby replica takes over", self.identity, self.namespace, self.name,
                          time.monotonic() - self.last_renewed)
                on_lost()
                return

    def release(self) -> None:
        """Gives the Lease up (clean shutdown): a standby takes it on its next round, without waiting for
        it to expire. Best effort: an unreleased Lease only expires later."""
        try:
            lease = self.kube.request("GET", self.path)
            if (lease.get("spec") or {}).get("holderIdentity") != self.identity:
                return
            spec = {**lease["spec"], "holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": _micro_time()}
            self.kube.request("PUT", self.path, body={**lease, "spec": spec})
            log.info("leader election: %s released lease %s/%s", self.identity, self.namespace, self.name)
        except KubeError as err:
            log.warning("leader election: could not release lease %s/%s: %s", self.namespace, self.name, err)


def exit_now() -> None:
    """Leadership lost: stop acting at once (the process restarts as a standby), as client-go does."""
    logging.shutdown()
    os._exit(1)


async def _standby_health(endpoint: str | None) -> Any:
    """Serves 200 on the liveness endpoint while this replica waits as a standby (kopf serves its own
    probe only once the operator runs), so Kubernetes does not restart a healthy standby. Returns the
    runner to stop, or None."""
    if not endpoint:
        return None
    from urllib.parse import urlparse

    import aiohttp.web

    url = urlparse(endpoint)
    app = aiohttp.web.Application()
    async def standby(_: aiohttp.web.Request) -> aiohttp.web.Response:
        return aiohttp.web.json_response({"standby": True})

    app.router.add_get(url.path or "/", standby)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    await aiohttp.web.TCPSite(runner, url.hostname, url.port or 80, reuse_address=True).start()
    return runner


async def lead(kube: Kube, settings: Any) -> LeaderElector | None:
    """Returns once this replica leads (at once without leader election: None). While leading, a
    background task renews the Lease and ends the process if it cannot (``exit_now``)."""
    if not settings.leader_election:
        return None
    elector = LeaderElector(kube, settings.leader_election_namespace or default_namespace(), settings.lease_name,
                            default_identity(), lease_seconds=settings.lease_duration_seconds,
                            renew_deadline_seconds=settings.renew_deadline_seconds,
                            retry_seconds=settings.retry_period_seconds)
    health = await _standby_health(settings.liveness_endpoint)
    try:
        await elector.acquire()
    finally:
        if health is not None:
            await health.cleanup()  # kopf's own probe takes the port over
    elector.task = asyncio.create_task(elector.keep(exit_now), name="leader election")
    return elector


def step_down(elector: LeaderElector | None) -> None:
    """Stops renewing and releases the Lease (after the operator stopped acting)."""
    if elector is None:
        return
    if elector.task is not None:
        elector.task.cancel()
    elector.release()
