"""The patch flavours the API server accepts: JSON merge patch (RFC 7386), JSON patch (RFC 6902),
strategic merge patch (lists of named items merge by key) and server-side apply (approximated as a
strategic merge of the applied configuration). Each returns a new object; inputs are not modified.
"""

from __future__ import annotations

import copy
from typing import Any

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


class PatchError(ValueError):
    """A patch that cannot apply (the API server answers 422 or 400)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- RFC 6902 ------------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            if part not in doc:
                raise PatchError(f"path not found: /{'/'.join(parts)}")
            doc = doc[part]
        else:
            raise PatchError(f"path not found: /{'/'.join(parts)}")
    return doc


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902: add, remove, replace, move, copy, test."""
    doc = copy.deepcopy(target)
    if not isinstance(operations, list):
        raise PatchError("a JSON patch is a list of operations")
    for op in operations:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        try:
            if kind == "test":
                if _walk(doc, parts) != op.get("value"):
                    raise PatchError(f"test failed at {op['path']}")
                continue
            if kind in ("move", "copy"):
                value = copy.deepcopy(_walk(doc, _pointer(op["from"])))
                if kind == "move":
                    doc = json_patch(doc, [{"op": "remove", "path": op["from"]}])
                kind, op = "add", {"op": "add", "path": op["path"], "value": value}
            if not parts:
                if kind in ("add", "replace"):
                    doc = copy.deepcopy(op["value"])
                    continue
                raise PatchError("cannot remove the whole document")
            parent = _walk(doc, parts[:-1])
            last = parts[-1]
            if kind == "add":
                if isinstance(parent, list):
                    index = len(parent) if last == "-" else int(last)
                    parent.insert(index, copy.deepcopy(op["value"]))
                else:
                    parent[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                if isinstance(parent, list):
                    del parent[int(last)]
                elif last in parent:
                    del parent[last]
                else:
                    raise PatchError(f"path not found: {op['path']}")
            elif kind == "replace":
                if isinstance(parent, list):
                    parent[int(last)] = copy.deepcopy(op["value"])
                elif last in parent:
                    parent[last] = copy.deepcopy(op["value"])
                else:
                    raise PatchError(f"path not found: {op['path']}")
            else:
                raise PatchError(f"unknown operation {kind!r}")
        except (IndexError, ValueError, KeyError, TypeError) as err:
            if isinstance(err, PatchError):
                raise
            raise PatchError(f"cannot apply {op}: {err}") from None
    return doc


# --- strategic merge -----------------------------------------------------------------------------

# Merge keys of the lists the platform touches (from the Kubernetes API's patchMergeKey tags).
_MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "volumes": "name", "env": "name",
    "volumeMounts": "mountPath", "ports": "containerPort", "ownerReferences": "uid",
    "conditions": "type", "imagePullSecrets": "name", "envFrom": None, "tolerations": None,
}
_PRIMITIVE_MERGE = {"finalizers"}


def strategic_merge(target: Any, patch: Any, key: str | None = None) -> Any:
    """A strategic merge patch, as far as the listed merge keys describe the lists."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for name, value in patch.items():
        if name.startswith("$setElementOrder/") or name in ("$retainKeys", "$patch"):
            continue
        if name.startswith("$deleteFromPrimitiveList/"):
            field = name.split("/", 1)[1]
            result[field] = [v for v in result.get(field, []) if v not in value]
            continue
        if value is None:
            result.pop(name, None)
        elif isinstance(value, list) and isinstance(result.get(name), list):
            result[name] = _merge_list(name, result[name], value)
        else:
            result[name] = strategic_merge(result.get(name), value, name)
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(name: str, current: list[Any], patch: list[Any]) -> list[Any]:
    if name in _PRIMITIVE_MERGE:
        return current + [v for v in patch if v not in current]
    merge_key = _MERGE_KEYS.get(name)
    if merge_key is None or not all(isinstance(v, dict) and merge_key in v for v in patch):
        return [copy.deepcopy(v) for v in patch if not (isinstance(v, dict) and v.get("$patch"))]
    out = [dict(v) for v in current]
    for item in patch:
        index = next((i for i, v in enumerate(out) if v.get(merge_key) == item[merge_key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del out[index]
        elif index is None:
            out.append(strategic_merge({}, item))
        else:
            out[index] = strategic_merge(out[index], item)
    return out
