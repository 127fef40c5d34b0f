"""How kopf is configured for this operator (called from the startup handler)."""

from __future__ import annotations

from typing import Any

import kopf

from rlaif_operator.api.common import GROUP
from rlaif_operator.settings import OperatorSettings


class NoEssenceDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff-base storage, in annotations, without building or reading an essence on every event.

    The operator has only event handlers (level-based: every event triggers one reconcile), never
    create/update handlers, so kopf has no diff to compute; its default deep-copies each body on each
    event for nothing, which was a quarter of the operator's CPU in bench/bench_operator.py, and it
    looks up (and would decode) the last-handled annotation on each event, another 1% of it.
    """

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return kopf.BodyEssence()

    def fetch(self, *, body: Any) -> Any:
        return None


def configure(settings: kopf.OperatorSettings, ours: OperatorSettings) -> None:
    """kopf's bookkeeping goes to annotations under rlaif.dev (the status schema is strict and the
    operator's alone); kopf posts no Events of its own (the operator posts one per transition)."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoEssenceDiffBaseStorage(prefix=GROUP)
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.enabled = False
    settings.batching.batch_window = ours.batch_window_seconds
    # kopf keeps a worker task per object until it has been idle this long (default 5 s). Our handlers
    # only queue a reconcile and return, so a worker's work is done in microseconds: after a burst (a
    # thousand pipelines applied at once) thousands of idle workers were a large share of the memory.
    settings.queueing.idle_timeout = 0.5
    # Exact namespaces get namespaced Roles only (the chart): kopf must not list namespaces or watch
    # CRDs cluster-wide then. Patterns still need the namespace scan to find their matches.
    settings.scanning.disabled = bool(ours.namespaces) and not any(set("*?[]!") & set(p) for p in ours.namespaces)
