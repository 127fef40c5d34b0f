"""The object store behind the test API server: what etcd plus the API server's storage layer do.

Server-side metadata (uid, resourceVersion from one global counter, generation bumped on spec changes,
creationTimestamp), the status subresource kept apart from the rest, validation/pruning/defaulting,
finalizers and deletionTimestamp, a bounded event history so that watches resume from a
resourceVersion (or get 410 Gone), and hooks that the controllers (GC, Job, namespace) react to.

Everything runs on the server's event loop thread; no method awaits, so each is atomic. Stored objects
are never mutated in place: every change stores a new dict, so published events stay as they were.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import random
import string
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from testapi import patching, schemas
from testapi.schemas import ResourceType
from testapi.selectors import Matcher, SelectorError, dig, field_matcher, label_matcher

ObjKey = tuple[str | None, str]  # (namespace, name)
TypeKey = tuple[str, str]  # (group, plural)
Hook = Callable[[ResourceType, str, dict[str, Any], dict[str, Any] | None], None]
# Fields indexed for field selectors (as label_index does for labels): the Event lookups of the operator.
INDEXED_FIELDS: dict[TypeKey, tuple[str, ...]] = {("", "events"): ("involvedObject.uid", "reason")}


class ApiError(Exception):
    """An error the API answers with a Status object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details or {}

    def status(self) -> dict[str, Any]:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "details": self.details, "code": self.code}


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.group_kind} "{name}" not found',
                    {"name": name, "group": rt.group, "kind": rt.plural})


def invalid(rt: ResourceType, name: str, errors: list[str]) -> ApiError:
    kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    causes = []
    for e in errors:
        where, _, what = e.partition(": ")
        causes.append({"reason": "FieldValueInvalid", "message": what or e,
                       "field": "<nil>" if where == "<root>" else where})
    text = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {text}',
                    {"name": name, "group": rt.group, "kind": rt.kind, "causes": causes})


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Watcher:
    """One open watch: which objects it wants and where their events go."""

    key: TypeKey
    namespace: str | None
    labels: Matcher
    fields: Matcher
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    def wants(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata", {})
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return self.labels(obj) and self.fields(obj)

    def event_for(self, etype: str, obj: dict[str, Any], old: dict[str, Any] | None) -> str | None:
        """The event this watcher sees: a change that moves an object into or out of its selection
        arrives as ADDED or DELETED, as from the real API server."""
        now_in = self.wants(obj)
        was_in = old is not None and self.wants(old)
        if etype == "MODIFIED":
            if now_in and was_in:
                return "MODIFIED"
            if now_in:
                return "ADDED"
            if was_in:
                return "DELETED"
            return None
        return etype if now_in else None


class Store:
    """All objects of all resource types, with resourceVersions and an event history."""

    def __init__(self, history: int = 200_000):
        self.types: dict[TypeKey, ResourceType] = {}
        self.objects: dict[TypeKey, dict[ObjKey, dict[str, Any]]] = {}
        self.uids: dict[str, tuple[TypeKey, ObjKey]] = {}
        self.rv = 0
        self.history: deque[tuple[int, TypeKey, str, dict[str, Any], dict[str, Any] | None]] = deque(maxlen=history)
        self.watchers: list[Watcher] = []
        self.hooks: list[Hook] = []
        # every warning ever sent, as (namespace, kind/name, warning), for tests to assert on
        self.warnings: list[tuple[str | None, str, str]] = []
        self.deletion_policy: dict[str, str] = {}  # uid -> Background/Foreground/Orphan, for the GC
        # (type, label key, value) -> objects with that label: `-l job-name=x` need not scan every pod
        self.label_index: dict[tuple[TypeKey, str, str], set[ObjKey]] = {}
        # (type, field path, value) -> objects, for the field selectors clients use on big collections
        # (the operator's Event lookups): a thousand pipelines leave tens of thousands of Events.
        self.field_index: dict[tuple[TypeKey, str, str], set[ObjKey]] = {}
        for rt in schemas.BUILTIN_TYPES:
            self.register(rt)

    # --- types ------------------------------------------------------------------------------------

    def register(self, rt: ResourceType) -> None:
        self.types[rt.key] = rt
        self.objects.setdefault(rt.key, {})

    def unregister(self, key: TypeKey) -> None:
        self.types.pop(key, None)

    def find_type(self, group: str, version: str | None, plural: str) -> ResourceType | None:
        rt = self.types.get((group, plural))
        if rt is None or (version is not None and rt.version != version):
            return None
        return rt

    def type_of_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
        return next((rt for rt in self.types.values() if rt.group == group and rt.kind == kind), None)

    # --- reading ----------------------------------------------------------------------------------

    def get(self, rt: ResourceType, ns: str | None, name: str) -> dict[str, Any]:
        obj = self.objects[rt.key].get((ns if rt.namespaced else None, name))
        if obj is None:
            raise not_found(rt, name)
        return obj

    def find(self, rt: ResourceType, ns: str | None, name: str) -> dict[str, Any] | None:
        return self.objects.get(rt.key, {}).get((ns if rt.namespaced else None, name))

    def by_uid(self, uid: str) -> tuple[ResourceType, dict[str, Any]] | None:
        where = self.uids.get(uid)
        if where is None or where[0] not in self.types:
            return None
        obj = self.objects[where[0]].get(where[1])
        return (self.types[where[0]], obj) if obj is not None else None

    def list(self, rt: ResourceType, ns: str | None, label_selector: str | None = None,
             field_selector: str | None = None) -> tuple[list[dict[str, Any]], int]:
        try:
            labels, fields = label_matcher(label_selector), field_matcher(field_selector)
        except SelectorError as err:
            raise ApiError(400, "BadRequest", str(err)) from None
        objects = self.objects[rt.key]
        keys = self._indexed(rt, label_selector)
        if keys is None:
            keys = self._field_indexed(rt, field_selector)
        candidates = objects.items() if keys is None else ((k, objects[k]) for k in keys if k in objects)
        matched = [(k, o) for k, o in candidates if (ns is None or k[0] == ns) and labels(o) and fields(o)]
        matched.sort(key=lambda kv: (kv[0][0] or "", kv[0][1]))  # only what matched: sorting is the cost
        return [o for _, o in matched], self.rv

    def _indexed(self, rt: ResourceType, selector: str | None) -> set[ObjKey] | None:
        """The objects carrying the selector's first plain ``key=value`` label, or None (scan all)."""
        for term in (selector or "").split(","):
            key, sep, value = term.partition("=")
            if sep and not any(c in key + value for c in "!()= ") and key and value:
                return self.label_index.get((rt.key, key, value.lstrip("=")), set())
        return None

    def _field_indexed(self, rt: ResourceType, selector: str | None) -> set[ObjKey] | None:
        """The objects whose indexed field has the selector's first ``path=value`` on one, or None."""
        for term in (selector or "").split(","):
            path, sep, value = term.partition("=")
            if sep and path in INDEXED_FIELDS.get(rt.key, ()) and not path.endswith("!") and value:
                return self.field_index.get((rt.key, path, value.lstrip("=")), set())
        return None

    # --- watching ---------------------------------------------------------------------------------

    def watch(self, rt: ResourceType, ns: str | None, label_selector: str | None, field_selector: str | None,
              resource_version: str | None) -> tuple[Watcher, list[dict[str, Any]]]:
        """Opens a watch. Returns the watcher and the events to send first: every matching object as
        ADDED when no resourceVersion (or "0") is given, else the history after that version. A version
        older than the history raises 410 Gone."""
        try:
            watcher = Watcher(rt.key, ns, label_matcher(label_selector), field_matcher(field_selector))
        except SelectorError as err:
            raise ApiError(400, "BadRequest", str(err)) from None
        if resource_version in (None, "", "0"):
            items, _ = self.list(rt, ns, label_selector, field_selector)
            initial = [{"type": "ADDED", "object": o} for o in items]
        else:
            try:
                since = int(resource_version)
            except ValueError:
                raise ApiError(400, "BadRequest", f"invalid resourceVersion {resource_version!r}") from None
            oldest = self.history[0][0] if self.history else self.rv + 1
            if since < oldest - 1 and since < self.rv:
                raise ApiError(410, "Expired", f"too old resource version: {since} ({oldest - 1})")
            initial = []
            for rv, key, etype, obj, old in self.history:
                if rv > since and key == rt.key:
                    seen = watcher.event_for(etype, obj, old)
                    if seen:
                        initial.append({"type": seen, "object": obj})
        self.watchers.append(watcher)
        return watcher, initial

    def unwatch(self, watcher: Watcher) -> None:
        if watcher in self.watchers:
            self.watchers.remove(watcher)

    # --- writing ----------------------------------------------------------------------------------

    def _commit(self, rt: ResourceType, etype: str, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        self.rv += 1
        meta = obj["metadata"]
        meta["resourceVersion"] = str(self.rv)
        key = (meta.get("namespace"), meta["name"])
        for label in (old or {}).get("metadata", {}).get("labels", {}).items():
            self.label_index.get((rt.key, *label), set()).discard(key)
        indexed = INDEXED_FIELDS.get(rt.key, ())
        for path in indexed if old else ():
            self.field_index.get((rt.key, path, str(dig(old, path))), set()).discard(key)
        if etype == "DELETED":
            self.objects[rt.key].pop(key, None)
            self.uids.pop(meta["uid"], None)
        else:
            self.objects[rt.key][key] = obj
            self.uids[meta["uid"]] = (rt.key, key)
            for label in (meta.get("labels") or {}).items():
                self.label_index.setdefault((rt.key, *label), set()).add(key)
            for path in indexed:
                self.field_index.setdefault((rt.key, path, str(dig(obj, path))), set()).add(key)
        self.history.append((self.rv, rt.key, etype, obj, old))
        for watcher in self.watchers:
            if watcher.key == rt.key:
                seen = watcher.event_for(etype, obj, old)
                if seen:
                    watcher.queue.put_nowait({"type": seen, "object": obj})
        for hook in self.hooks:
            hook(rt, etype, obj, old)
        return obj

    def _admit(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None,
               field_validation: str, trusted: bool = False) -> tuple[dict[str, Any], list[str]]:
        """Validation, pruning and defaulting of a new object state; returns it and the warnings.
        ``trusted``: written by an in-process controller from already validated input (a Job's pods)."""
        name = obj["metadata"].get("name", "")
        warnings: list[str] = []
        if trusted:
            return obj, warnings
        errors = schemas.semantic_errors(rt, obj)
        if rt.schema is not None:
            obj = schemas.apply_defaults(rt.schema, obj)
            pruned, unknown = schemas.prune(rt.schema, obj)
            if unknown and field_validation == "Strict":
                raise ApiError(400, "BadRequest", "strict decoding error: "
                               + ", ".join(f'unknown field "{u}"' for u in unknown))
            if field_validation != "Ignore":
                warnings += [f'unknown field "{u}"' for u in unknown]
            obj = pruned
            errors += schemas.validate_custom(rt, obj, old)
        elif rt.group != "apiextensions.k8s.io" and (old is None or {k: v for k, v in obj.items() if k != "status"}
                                                      != {k: v for k, v in old.items() if k != "status"}):
            # Built-in kinds are validated on create and when more than their status changes (status
            # writes come from the kubelet and controllers; ratcheting, as for custom resources).
            found, unknown = schemas.validate_builtin(obj)
            errors += found
            if unknown and field_validation == "Strict":
                raise ApiError(400, "BadRequest", "strict decoding error: "
                               + ", ".join(f'unknown field "{u}"' for u in unknown))
            if unknown:
                if field_validation != "Ignore":
                    warnings += [f'unknown field "{u}"' for u in unknown]
                obj = schemas.drop_paths(obj, unknown)
        if old is not None:
            errors += self._immutable(rt, obj, old)
        if errors:
            raise invalid(rt, name, errors)
        meta = obj.get("metadata") or {}
        self.warnings += [(meta.get("namespace"), f"{rt.kind}/{name}", w) for w in warnings]
        return obj, warnings

    @staticmethod
    def _immutable(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any]) -> list[str]:
        errors = []
        if rt.kind == "Job":
            for path in ("template", "selector", "completionMode"):
                if (obj.get("spec") or {}).get(path) != (old.get("spec") or {}).get(path):
                    errors.append(f"spec.{path}: Invalid value: field is immutable")
        if rt.kind in ("ConfigMap", "Secret") and old.get("immutable"):
            for path in ("data", "stringData", "binaryData"):
                if obj.get(path) != old.get(path):
                    errors.append(f"{path}: Forbidden: field is immutable when `immutable` is set")
        return errors

    def _check_namespace(self, rt: ResourceType, ns: str | None) -> None:
        if not rt.namespaced:
            return
        if ns is None:
            raise ApiError(400, "BadRequest", "the namespace of the object does not match the request")
        ns_obj = self.find(self.types[("", "namespaces")], None, ns)
        if ns_obj is None:
            raise ApiError(404, "NotFound", f'namespaces "{ns}" not found',
                           {"name": ns, "kind": "namespaces"})
        if ns_obj["metadata"].get("deletionTimestamp"):
            raise ApiError(403, "Forbidden", f"{rt.kind.lower()}s is forbidden: unable to create new content in"
                           f" namespace {ns} because it is being terminated")

    def create(self, rt: ResourceType, ns: str | None, body: dict[str, Any], *, field_validation: str = "Warn",
               dry_run: bool = False, trusted: bool = False) -> tuple[dict[str, Any], list[str]]:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        obj = copy.deepcopy(body)
        obj.setdefault("apiVersion", rt.api_version)
        obj.setdefault("kind", rt.kind)
        if obj.get("kind") != rt.kind or obj.get("apiVersion") != rt.api_version:
            raise ApiError(400, "BadRequest", f"the API version in the data ({obj.get('apiVersion')}) and kind"
                           f" ({obj.get('kind')}) do not match the request ({rt.api_version}, {rt.kind})")
        meta = obj.setdefault("metadata", {})
        body_ns = meta.get("namespace")
        if rt.namespaced:
            if ns and body_ns and ns != body_ns:
                raise ApiError(400, "BadRequest", "the namespace of the provided object does not match the"
                               " namespace sent on the request")
            ns = ns or body_ns
            meta["namespace"] = ns
        else:
            meta.pop("namespace", None)
            ns = None
        if not meta.get("name"):
            if meta.get("generateName"):
                suffix = "".join(random.choices(string.ascii_lowercase + string.digits, k=5))
                meta["name"] = meta["generateName"] + suffix
            else:
                raise invalid(rt, "", ["metadata.name: Required value: name or generateName is required"])
        self._check_namespace(rt, ns)
        if self.find(rt, ns, meta["name"]) is not None:
            raise ApiError(409, "AlreadyExists", f'{rt.group_kind} "{meta["name"]}" already exists',
                           {"name": meta["name"], "group": rt.group, "kind": rt.plural})
        for server_side in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp", "generation",
                            "managedFields", "selfLink"):
            meta.pop(server_side, None)
        if rt.status_subresource and rt.kind not in ("CustomResourceDefinition",):
            obj.pop("status", None)  # status is written through /status only
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.schema is not None or rt.status_subresource:
            meta["generation"] = 1
        obj = self._builtin_defaults(rt, obj)
        obj, warnings = self._admit(rt, obj, None, field_validation, trusted)
        if dry_run:
            return obj, warnings
        return self._commit(rt, "ADDED", obj, None), warnings

    @staticmethod
    def _builtin_defaults(rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Defaults that built-in kinds get from the API server on create."""
        if rt.kind == "Job":
            spec = obj.setdefault("spec", {})
            uid = obj["metadata"]["uid"]
            spec.setdefault("completions", 1) if spec.get("completionMode") != "Indexed" else None
            spec.setdefault("parallelism", 1)
            spec.setdefault("backoffLimit", 6)
            spec.setdefault("completionMode", "NonIndexed")
            spec.setdefault("suspend", False)
            if not spec.get("manualSelector"):
                spec["selector"] = {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
                tmeta = spec.setdefault("template", {}).setdefault("metadata", {})
                tmeta["labels"] = {**tmeta.get("labels", {}), "batch.kubernetes.io/controller-uid": uid,
                                   "batch.kubernetes.io/job-name": obj["metadata"]["name"],
                                   "controller-uid": uid, "job-name": obj["metadata"]["name"]}
        elif rt.kind == "Pod":
            obj["status"] = {"phase": "Pending", "conditions": [], "qosClass": "BestEffort"}
            for c in (obj.get("spec") or {}).get("containers", []):
                c.setdefault("terminationMessagePath", "/dev/termination-log")
                c.setdefault("terminationMessagePolicy", "File")
        elif rt.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        elif rt.kind == "Secret" and "stringData" in obj:
            obj["data"] = {**(obj.get("data") or {}), **{
                k: base64.b64encode(str(v).encode()).decode() for k, v in obj.pop("stringData").items()}}
        elif rt.kind == "Service":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("clusterIP", f"10.96.{random.randint(0, 255)}.{random.randint(1, 254)}")
        return obj

    def _update(self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str | None,
                field_validation: str, dry_run: bool = False) -> tuple[dict[str, Any], list[str]]:
        """A new state of an existing object, from PUT or PATCH (already merged)."""
        meta_old = old["metadata"]
        # Structural sharing: stored objects are never mutated, so a new version copies only what it
        # changes (the top level and metadata here; patches copy the paths they touch).
        new = dict(new)
        new["metadata"] = dict(new["metadata"]) if isinstance(new.get("metadata"), dict) else {}
        want_rv = new["metadata"].get("resourceVersion")
        if want_rv and want_rv != meta_old["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {rt.group_kind} "{meta_old["name"]}":'
                           " the object has been modified; please apply your changes to the latest version"
                           " and try again", {"name": meta_old["name"], "group": rt.group, "kind": rt.plural})
        if subresource == "status":
            obj = {**old, "metadata": dict(old["metadata"])}
            if "status" in new:
                obj["status"] = new["status"]
            else:
                obj.pop("status", None)
        else:
            obj = new
            if rt.status_subresource:
                if "status" in old:
                    obj["status"] = old["status"]
                else:
                    obj.pop("status", None)
        meta = obj["metadata"]
        for fixed in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "generation"):
            if fixed in meta_old:
                meta[fixed] = meta_old[fixed]
            else:
                meta.pop(fixed, None)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        if rt.kind == "Secret" and "stringData" in obj:
            obj["data"] = {**(obj.get("data") or {}), **{
                k: base64.b64encode(str(v).encode()).decode() for k, v in obj.pop("stringData").items()}}
        if "generation" in meta_old:
            body_new = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
            body_old = {k: v for k, v in old.items() if k not in ("metadata", "status")}
            if body_new != body_old:
                meta["generation"] = meta_old["generation"] + 1
        if meta_old.get("deletionTimestamp"):
            added = set(meta.get("finalizers", [])) - set(meta_old.get("finalizers", []))
            if added:
                raise ApiError(422, "Invalid", f"metadata.finalizers: Forbidden: no new finalizers can be added"
                               f" if the object is being deleted, found new finalizers {sorted(added)}")
        if subresource == "status" and obj == old:
            return old, []
        obj, warnings = self._admit(rt, obj, old, field_validation)
        comparable = {**obj, "metadata": {**obj["metadata"], "resourceVersion": meta_old["resourceVersion"]}}
        if comparable == old:
            return old, warnings  # no-op updates do not bump the resourceVersion, as on a real server
        if dry_run:
            return obj, warnings
        if meta_old.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._commit(rt, "DELETED", obj, old), warnings
        return self._commit(rt, "MODIFIED", obj, old), warnings

    def replace(self, rt: ResourceType, ns: str | None, name: str, body: dict[str, Any], *,
                subresource: str | None = None, field_validation: str = "Warn",
                dry_run: bool = False) -> tuple[dict[str, Any], list[str]]:
        old = self.get(rt, ns, name)
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request was in an unknown format")
        # Kubernetes requires a resourceVersion to replace a custom resource; kubectl replace sends it.
        if not (body.get("metadata") or {}).get("resourceVersion") and rt.schema is not None:
            raise invalid(rt, name, ["metadata.resourceVersion: Invalid value: 0x0: must be specified"
                                     " for an update"])
        return self._update(rt, old, body, subresource, field_validation, dry_run)

    def patch(self, rt: ResourceType, ns: str | None, name: str, content_type: str, body: Any, *,
              subresource: str | None = None, field_validation: str = "Warn", dry_run: bool = False,
              ) -> tuple[dict[str, Any], list[str]]:
        content_type = (content_type or "").split(";")[0].strip()
        old = self.find(rt, ns, name)
        if old is None:
            if content_type == patching.APPLY_PATCH and subresource is None:
                body = dict(body or {})
                body.setdefault("metadata", {})["name"] = name
                return self.create(rt, ns, body, field_validation=field_validation, dry_run=dry_run)
            raise not_found(rt, name)
        try:
            if content_type == patching.MERGE_PATCH:
                new = patching.merge_patch(old, body)
            elif content_type == patching.JSON_PATCH:
                new = patching.json_patch(old, body)
            elif content_type in (patching.STRATEGIC_PATCH, patching.APPLY_PATCH):
                if rt.schema is not None and content_type == patching.STRATEGIC_PATCH:
                    raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown"
                                   " format - accepted media types include: application/json-patch+json,"
                                   " application/merge-patch+json, application/apply-patch+yaml")
                new = patching.strategic_merge(old, body)
            else:
                raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {content_type!r}")
        except patching.PatchError as err:
            raise ApiError(422, "Invalid", str(err)) from None
        if not isinstance(new, dict):
            raise ApiError(422, "Invalid", "the patch does not leave an object")
        return self._update(rt, old, new, subresource, field_validation, dry_run)

    def delete(self, rt: ResourceType, ns: str | None, name: str, *, propagation: str | None = None,
               preconditions: dict[str, Any] | None = None, dry_run: bool = False) -> dict[str, Any]:
        """Deletes now, or marks for deletion while finalizers remain. Dependents are handled by the
        garbage collector (a hook) according to ``propagation`` (recorded in ``deletion_policy``)."""
        old = self.get(rt, ns, name)
        meta_old = old["metadata"]
        pre = preconditions or {}
        if pre.get("uid") and pre["uid"] != meta_old["uid"]:
            raise ApiError(409, "Conflict", f"Precondition failed: UID in precondition: {pre['uid']},"
                           f" UID in object meta: {meta_old['uid']}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta_old["resourceVersion"]:
            raise ApiError(409, "Conflict", "Precondition failed: resourceVersion mismatch")
        if dry_run:
            return old
        if meta_old.get("deletionTimestamp"):
            return old  # already being deleted
        if propagation is None:
            # batch/v1 Jobs orphan their pods unless told otherwise (kubectl says Background).
            propagation = "Orphan" if rt.kind == "Job" else "Background"
        self.deletion_policy[meta_old["uid"]] = propagation
        obj = copy.deepcopy(old)
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers", []))
        if rt.kind == "Namespace":
            obj.setdefault("status", {})["phase"] = "Terminating"
            finalizers = finalizers or []
        elif propagation == "Foreground":
            finalizers.append("foregroundDeletion")
        if finalizers or rt.kind == "Namespace":
            if finalizers:
                meta["finalizers"] = finalizers
            meta["deletionTimestamp"] = now_rfc3339()
            meta["deletionGracePeriodSeconds"] = 0
            if "generation" in meta:
                meta["generation"] += 1
            return self._commit(rt, "MODIFIED", obj, old)
        return self._commit(rt, "DELETED", obj, old)

    def remove_finalizer(self, rt: ResourceType, obj: dict[str, Any], finalizer: str) -> None:
        meta = obj["metadata"]
        if finalizer not in meta.get("finalizers", []):
            return
        new = copy.deepcopy(obj)
        new["metadata"]["finalizers"] = [f for f in meta["finalizers"] if f != finalizer]
        if not new["metadata"]["finalizers"]:
            new["metadata"].pop("finalizers")
        if meta.get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._commit(rt, "DELETED", new, obj)
        else:
            self._commit(rt, "MODIFIED", new, obj)

    def write_status(self, rt: ResourceType, obj: dict[str, Any], status: dict[str, Any]) -> dict[str, Any]:
        """A controller's own status write (no validation round trip; the controllers are trusted)."""
        current = self.find(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        if current is None or current["metadata"]["uid"] != obj["metadata"]["uid"]:
            return obj
        if current.get("status") == status:
            return current
        new = {**current, "metadata": dict(current["metadata"]), "status": status}
        return self._commit(rt, "MODIFIED", new, current)
