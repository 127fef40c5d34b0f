"""``rlaif submit FILE``: validate the manifests, then create or update each rlaif.dev resource with a
server-side apply (field manager ``rlaif``), printing ``kind/name created|configured|unchanged``."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from rlaif_operator.api.common import API_VERSION
from rlaif_operator.api.kinds import KINDS
from rlaif_operator.api.manifests import ManifestError, load_documents
from rlaif_operator.clusterctl.connect import Target
from rlaif_operator.clusterctl.resources import ClusterctlError
from rlaif_operator.kube import KubeError, path_of

FIELD_MANAGER = "rlaif"
APPLY_PATCH = "application/apply-patch+yaml"
# What a user's manifest sets; the rest of metadata (resourceVersion, managedFields, ...) is the server's.
USER_METADATA = ("labels", "annotations", "finalizers", "ownerReferences")


def _content(obj: dict[str, Any] | None) -> dict[str, Any] | None:
    """The parts of an object a submit can change: all but status and server-kept metadata."""
    if obj is None:
        return None
    meta = obj.get("metadata") or {}
    return {**{k: v for k, v in obj.items() if k not in ("metadata", "status")},
            "metadata": {k: meta[k] for k in USER_METADATA if meta.get(k)}}


def outcome(before: dict[str, Any] | None, after: dict[str, Any]) -> str:
    """created, configured or unchanged: what the apply did, from the object before and after it."""
    if before is None:
        return "created"
    return "unchanged" if _content(before) == _content(after) else "configured"


def apply(target: Target, doc: dict[str, Any], dry_run: bool = False) -> tuple[str, str]:
    """Server-side applies one resource; returns (kind/name, outcome). Raises KubeError on refusal."""
    meta = doc.setdefault("metadata", {})
    namespace = meta.get("namespace") or target.namespace
    if target.explicit_namespace and meta.get("namespace") and meta["namespace"] != target.namespace:
        raise ClusterctlError(f"{doc['kind']}/{meta.get('name')}: the manifest's namespace {meta['namespace']}"
                              f" is not the one asked for (-n {target.namespace})")
    meta["namespace"] = namespace
    kind, name = doc["kind"], meta["name"]
    before = target.kube.get(API_VERSION, kind, namespace, name)
    query = {"fieldManager": FIELD_MANAGER, "force": "true", **({"dryRun": "All"} if dry_run else {})}
    after = target.kube.request("PATCH", path_of(API_VERSION, kind, namespace, name), body=doc, query=query,
                                content_type=APPLY_PATCH)
    return f"{kind}/{name}", outcome(before, after)


def submit(target: Target, path: str, validate: Callable[[str], list[str]], dry_run: bool = False) -> int:
    """Validates ``path`` (with ``validate``: cli.validate_file), then applies each rlaif.dev resource;
    0 when all were applied, 1 otherwise (nothing is applied from an invalid file)."""
    problems = validate(path)
    if problems:
        print(f"{path}: INVALID (nothing submitted)", *problems, sep="\n  ", file=sys.stderr)
        return 1
    try:
        documents = load_documents(path)
    except ManifestError as err:
        print(err, file=sys.stderr)
        return 1
    failed = 0
    suffix = " (server dry run)" if dry_run else ""
    for source, doc in documents:
        if not (isinstance(doc, dict) and doc.get("apiVersion") == API_VERSION and doc.get("kind") in KINDS):
            print(f"{source}: skipped (not an rlaif.dev resource; use kubectl apply)", file=sys.stderr)
            continue
        name = f"{doc['kind']}/{(doc.get('metadata') or {}).get('name')}"
        try:
            name, result = apply(target, doc, dry_run)
        except KubeError as err:
            failed += 1
            print(f"{name} refused: {err.status} {err.body.get('message') or err.reason}", file=sys.stderr)
            continue
        except ClusterctlError as err:
            failed += 1
            print(err, file=sys.stderr)
            continue
        print(f"{name} {result}{suffix}")
    return 1 if failed else 0
