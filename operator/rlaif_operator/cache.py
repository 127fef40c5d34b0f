"""The last seen state of every watched object (the four rlaif kinds and the operator's Jobs).

Fed by the watch events kopf delivers, read by reconciles instead of GETs (as controller-runtime's
informer cache is): a reconcile then costs writes only. It also answers "who waits on X?" for the
hand-off from an upstream stage to its downstream.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from rlaif_operator.api.kinds import UPSTREAMS

Key = tuple[str, str | None, str]  # (kind, namespace, name)
MAX_GONE = 10_000  # uids remembered as deleted (oldest forgotten first)

# Where a stage names its upstream (read from the raw body: no model parsing on the hot path).
UPSTREAM_FIELDS = {kind: tuple((up.section, up.alias, up.kind) for up in ups) for kind, ups in UPSTREAMS.items()}


# Bulk the operator never reads: every object's field-ownership history (managedFields), kubectl's copy
# of the last applied manifest (the whole spec again, as a string), and a Job's pod template (the
# operator built it; it reads a Job's counts, conditions and a few spec switches). Left out of the
# cache, they were most of the operator's memory per object (bench/bench_operator.py).
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def slim(body: dict[str, Any]) -> dict[str, Any]:
    """The body without the fields above; the input is not changed (kopf still holds it)."""
    meta = body.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    fat_job = body.get("kind") == "Job" and "template" in (body.get("spec") or {})
    if "managedFields" not in meta and LAST_APPLIED not in annotations and not fat_job:
        return body
    meta = {k: v for k, v in meta.items() if k != "managedFields"}
    if LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    out = {**body, "metadata": meta}
    if fat_job:
        out["spec"] = {k: v for k, v in body["spec"].items() if k != "template"}
    return out


def key_of(body: dict[str, Any]) -> Key:
    meta = body["metadata"]
    return (body["kind"], meta.get("namespace"), meta["name"])


def _number(resource_version: str | None) -> int | None:
    try:
        return int(resource_version or "")
    except ValueError:
        return None


def upstream_key(body: dict[str, Any]) -> Key | None:
    """The (kind, namespace, name) a stage body waits on, if any."""
    for section, field, kind in UPSTREAM_FIELDS.get(body.get("kind", ""), ()):
        name = ((body.get("spec") or {}).get(section) or {}).get(field)
        if name:
            return (kind, body["metadata"].get("namespace"), name)
    return None


@dataclass(frozen=True)
class Header:
    """What the controller compares on every watch event, kept apart so that it decodes no body."""

    uid: str | None
    resource_version: str | None
    phase: str | None


class Cache:
    """Thread-safe map of the latest bodies, plus the reverse index upstream -> downstream.

    Each body is kept as compact JSON (``slim`` first) and decoded on ``get``: a decoded body costs
    Python about five times its JSON (a dict per object, a string per key), which at a thousand
    pipelines was the largest share of the operator's memory; a decode of one body is a few tens of
    microseconds, and a reconcile reads a handful. ``get`` returns a fresh copy: callers may keep it.
    """

    def __init__(self) -> None:
        self._objects: dict[Key, bytes] = {}
        self._headers: dict[Key, Header] = {}
        self._waiters: dict[Key, set[Key]] = {}
        self._gone: dict[str, None] = {}  # uids the operator deleted: late events of theirs are ignored
        self._lock = threading.Lock()

    def put(self, body: dict[str, Any]) -> bool:
        """Stores the body unless the same or a newer one is already known (numeric resourceVersions, as
        etcd's). Returns whether it was stored. What is stored is ``slim(body)``."""
        key = key_of(body)
        meta = body["metadata"]
        header = Header(meta.get("uid"), meta.get("resourceVersion"), (body.get("status") or {}).get("phase"))
        with self._lock:
            if self._stale(key, header):
                return False
        blob = json.dumps(slim(body), separators=(",", ":")).encode()  # outside the lock: the costly part
        up = upstream_key(body)
        with self._lock:
            if self._stale(key, header):  # again: another thread may have stored a newer one meanwhile
                return False
            self._objects[key] = blob
            self._headers[key] = header
            if up is not None:
                self._waiters.setdefault(up, set()).add(key)
            return True

    def _stale(self, key: Key, header: Header) -> bool:
        """Whether a body with ``header`` need not be stored: deleted by the operator, already known (the
        same object at the same resourceVersion: the watch's echo of a write whose answer is stored), or
        older than the one known (a lower resourceVersion)."""
        if header.uid in self._gone:
            return True
        old = self._headers.get(key)
        if old is None or old.uid != header.uid:
            return False
        if old.resource_version == header.resource_version and header.resource_version:
            return True
        new_rv, old_rv = _number(header.resource_version), _number(old.resource_version)
        return new_rv is not None and old_rv is not None and new_rv < old_rv

    def drop(self, key: Key) -> None:
        with self._lock:
            blob = self._objects.pop(key, None)
            self._headers.pop(key, None)
            if blob is not None:
                up = upstream_key(json.loads(blob))
                if up is not None and up in self._waiters:
                    self._waiters[up].discard(key)

    def mark_gone(self, key: Key, uid: str) -> None:
        """Forgets the object with this uid for good: the operator deleted it (a stage's old Job on a
        restart), and an event of it still in flight must not bring it back."""
        with self._lock:
            self._gone[uid] = None
            if len(self._gone) > MAX_GONE:
                del self._gone[next(iter(self._gone))]
            header = self._headers.get(key)
            if header is not None and header.uid == uid:
                del self._objects[key]
                del self._headers[key]

    def is_gone(self, uid: str | None) -> bool:
        return uid in self._gone

    def get(self, key: Key) -> dict[str, Any] | None:
        """The body (a fresh copy), or None."""
        blob = self._objects.get(key)
        return None if blob is None else json.loads(blob)

    def header(self, key: Key) -> Header | None:
        """The body's uid, resourceVersion and phase, without decoding it."""
        return self._headers.get(key)

    def waiting_on(self, key: Key) -> list[Key]:
        """The stages whose upstream is ``key``."""
        with self._lock:
            return sorted(k for k in self._waiters.get(key, ()) if k in self._objects)

    def kinds_named(self, namespace: str | None, name: str) -> list[str]:
        """Which rlaif kinds have an object of this name in this namespace."""
        return [kind for (kind, ns, n) in list(self._objects) if ns == namespace and n == name and kind != "Job"]

    def __len__(self) -> int:
        return len(self._objects)
