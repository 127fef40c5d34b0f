"""Who called what: every resource request to the test API server as an RBAC check would see it.

Each request becomes ``(verb, apiGroup, resource[/subresource], scope)`` under the caller's User-Agent,
with the verb RBAC uses (get, list, watch, create, update, patch, delete, deletecollection). A create
or update whose ownerReferences set ``blockOwnerDeletion`` also records ``update`` on the owner's
``finalizers`` subresource: the permission the OwnerReferencesPermissionEnforcement admission plugin
checks (OpenShift enables it), which no request shows by itself. Discovery (``/api``, ``/apis``,
``/version``, ``/openapi``) is left out: every authenticated user may read it (``system:discovery``).
``tests/integration/test_rbac_audit.py`` compares the operator's calls with the chart's rules.
"""

from __future__ import annotations

import threading
from typing import Any, NamedTuple

from testapi.store import Store

VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


class Call(NamedTuple):
    """One permission: ``scope`` is "namespace" or "cluster" (a cluster-wide list of a namespaced kind
    needs a ClusterRole)."""

    verb: str
    group: str
    resource: str
    scope: str


def parse_path(path: str) -> tuple[str, str | None, str, str | None, str | None] | None:
    """(group, namespace, plural, name, subresource) of a resource URL, or None for discovery."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, rest = "", parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, rest = parts[1], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    return group, namespace, rest[0], (rest[1] if len(rest) > 1 else None), ("/".join(rest[2:]) or None)


class Audit:
    """The calls seen so far, by User-Agent (thread-safe: recorded on the server's loop, read by tests)."""

    def __init__(self, store: Store):
        self.store = store
        self.calls: dict[str, set[Call]] = {}
        self._lock = threading.Lock()

    def record(self, method: str, path: str, params: dict[str, str], agent: str, body: Any) -> None:
        parsed = parse_path(path)
        if parsed is None:
            return
        group, namespace, plural, name, sub = parsed
        if method == "GET":
            verb = "watch" if params.get("watch") in ("true", "1") else "get" if name else "list"
        elif method == "DELETE":
            verb = "delete" if name else "deletecollection"
        else:
            verb = VERBS.get(method, method.lower())
        found = {Call(verb, group, f"{plural}/{sub}" if sub else plural, "namespace" if namespace else "cluster")}
        if verb in ("create", "update") and isinstance(body, dict):
            for ref in (body.get("metadata") or {}).get("ownerReferences") or []:
                if ref.get("blockOwnerDeletion"):
                    owner = self.store.type_of_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
                    if owner is not None:
                        found.add(Call("update", owner.group, f"{owner.plural}/finalizers",
                                       "namespace" if owner.namespaced else "cluster"))
        with self._lock:
            self.calls.setdefault(agent, set()).update(found)

    def by_agents(self, *prefixes: str) -> set[Call]:
        """Every call made by a client whose User-Agent starts with one of ``prefixes``."""
        with self._lock:
            return {c for agent, calls in self.calls.items() if agent.startswith(prefixes) for c in calls}

    def agents(self) -> list[str]:
        with self._lock:
            return sorted(self.calls)
