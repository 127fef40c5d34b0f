"""Resource types the test API server serves: built-in kinds, and custom resources registered when a
CustomResourceDefinition is created. Validation as the API server does it:

- custom resources: the CRD's structural schema and CEL rules (``rlaif_operator.api.crdschema``),
  unknown fields pruned (warned) or rejected with ``fieldValidation=Strict``, schema defaults applied;
- built-in kinds: the real Kubernetes 1.32 JSON schemas (``kubernetes-validate``), plus the handful of
  rules the API server enforces in code that the operator could break (names, Job restart policy...).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import fastjsonschema

from rlaif_operator.api import crdschema

K8S_SCHEMA_VERSION = "1.32.0"
STRICT_FOLDER = f"v{K8S_SCHEMA_VERSION}-local-strict"  # kubernetes-validate's schemas that refuse unknown fields
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


@dataclass
class ResourceType:
    """One served resource: its group/version/plural and how it behaves."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    status_subresource: bool = False
    schema: dict[str, Any] | None = None  # openAPIV3Schema of a custom resource
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    crd_name: str | None = None
    singular: str = ""

    @property
    def api_version(self) -> str:
        return self.version if self.group == "" else f"{self.group}/{self.version}"

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def group_kind(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def discovery(self) -> list[dict[str, Any]]:
        """Entries of this resource (and its subresources) in an APIResourceList."""
        verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
        entry: dict[str, Any] = {
            "name": self.plural, "singularName": self.singular or self.kind.lower(),
            "namespaced": self.namespaced, "kind": self.kind, "verbs": verbs,
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        out = [entry]
        if self.status_subresource:
            out.append({"name": f"{self.plural}/status", "singularName": "", "namespaced": self.namespaced,
                        "kind": self.kind, "verbs": ["get", "patch", "update"]})
        return out


def _rt(group: str, version: str, plural: str, kind: str, **kw: Any) -> ResourceType:
    return ResourceType(group, version, plural, kind, **kw)


BUILTIN_TYPES: list[ResourceType] = [
    _rt("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",), status_subresource=True),
    _rt("", "v1", "pods", "Pod", short_names=("po",), categories=("all",), status_subresource=True),
    _rt("", "v1", "services", "Service", short_names=("svc",), categories=("all",), status_subresource=True),
    _rt("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _rt("", "v1", "secrets", "Secret"),
    _rt("", "v1", "events", "Event", short_names=("ev",)),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    _rt("", "v1", "nodes", "Node", namespaced=False, short_names=("no",), status_subresource=True),
    _rt("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",),
        status_subresource=True),
    _rt("batch", "v1", "jobs", "Job", categories=("all",), status_subresource=True),
    _rt("apps", "v1", "deployments", "Deployment", short_names=("deploy",), categories=("all",),
        status_subresource=True),
    _rt("events.k8s.io", "v1", "events", "Event", short_names=("ev",)),
    _rt("coordination.k8s.io", "v1", "leases", "Lease"),
    _rt("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short_names=("netpol",)),
    _rt("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
        namespaced=False, short_names=("crd", "crds"), status_subresource=True),
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
]


def types_from_crd(crd: dict[str, Any]) -> list[ResourceType]:
    """The served versions of a CustomResourceDefinition as resource types."""
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        schema = copy.deepcopy((version.get("schema") or {}).get("openAPIV3Schema"))
        if schema is not None:
            # apiVersion, kind and metadata are always allowed, whether the schema names them or not.
            props = schema.setdefault("properties", {})
            props.setdefault("apiVersion", {"type": "string"})
            props.setdefault("kind", {"type": "string"})
            props.setdefault("metadata", {"type": "object"})
        out.append(ResourceType(
            group=spec["group"], version=version["name"], plural=names["plural"], kind=names["kind"],
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            short_names=tuple(names.get("shortNames", [])), categories=tuple(names.get("categories", [])),
            status_subresource="status" in (version.get("subresources") or {}),
            schema=schema,
            printer_columns=list(version.get("additionalPrinterColumns", [])),
            crd_name=crd["metadata"]["name"], singular=names.get("singular", names["kind"].lower()),
        ))
    return out


# --- structural schema: prune and default ---------------------------------------------------------


def prune(schema: dict[str, Any], value: Any, path: str = "") -> tuple[Any, list[str]]:
    """Drops fields the schema does not know (as the API server prunes them); returns the pruned value
    and the dotted paths that were dropped."""
    dropped: list[str] = []
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
        out = {}
        for key, item in value.items():
            sub = f"{path}.{key}" if path else key
            if not path and key in ("apiVersion", "kind", "metadata"):
                out[key] = item
            elif key in props:
                out[key], more = prune(props[key], item, sub)
                dropped += more
            elif isinstance(extra, dict):
                out[key], more = prune(extra, item, sub)
                dropped += more
            elif preserve:
                out[key] = item
            else:
                dropped.append(sub)
        return out, dropped
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        out_list = []
        for i, item in enumerate(value):
            pruned, more = prune(schema["items"], item, f"{path}[{i}]")
            out_list.append(pruned)
            dropped += more
        return out_list, dropped
    return value, dropped


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Fills in ``default`` of absent properties, recursively, as the API server does for CRs."""
    if isinstance(value, dict) and schema.get("type") == "object":
        out = dict(value)
        for key, sub in schema.get("properties", {}).items():
            if key not in out and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
            if key in out:
                out[key] = apply_defaults(sub, out[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in out:
                if key not in schema.get("properties", {}):
                    out[key] = apply_defaults(extra, out[key])
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], v) for v in value]
    return value


def validate_custom(rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> list[str]:
    """The API server's complaints about a custom resource (empty when valid).

    Updates are validated with ratcheting, as Kubernetes >= 1.30 does: a top-level field whose value
    did not change is not validated again (so a status write does not re-run the spec's CEL rules)."""
    if rt.schema is None:
        return []
    if old is None:
        return crdschema.validate(rt.schema, obj)
    errors = []
    props = rt.schema.get("properties", {})
    for key, value in obj.items():
        if key in ("apiVersion", "kind", "metadata") or old.get(key) == value:
            continue
        if key in props:
            errors += crdschema.validate(props[key], value, key, old=old.get(key, crdschema._MISSING))
    return errors


# --- built-in kinds --------------------------------------------------------------------------------


@lru_cache(maxsize=64)
def _schema(kind: str, api_version: str) -> dict[str, Any] | None:
    """The kind's strict JSON schema (unknown fields refused) as kubernetes-validate ships it (None: a
    kind it has no schema for)."""
    import kubernetes_validate.utils as kv

    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        return kv.schema_contents(f"kubernetes-json-schema/{STRICT_FOLDER}/{kind.lower()}-{api}.json",
                                  K8S_SCHEMA_VERSION)
    except FileNotFoundError:
        return None


@lru_cache(maxsize=64)
def _builtin_validator(kind: str, api_version: str) -> Any:
    """jsonschema's validator of the kind: every error, in the API server's words (None: no schema)."""
    import jsonschema
    from referencing import Registry, Resource

    schema = _schema(kind, api_version)
    if schema is None:
        return None
    registry = Resource.from_contents(_definitions()) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


# The schemas' formats are OpenAPI's; jsonschema does not check formats unless asked, and neither may this.
_UNCHECKED_FORMATS = ("byte", "double", "int32", "int64", "date-time", "int-or-string")


@lru_cache(maxsize=64)
def _fast_validator(kind: str, api_version: str) -> Any:
    """The kind's strict schema compiled to Python by fastjsonschema: the same verdict as
    ``_builtin_validator`` on these schemas (their keywords are type, properties, additionalProperties,
    items, required, enum, oneOf and $ref, whose siblings are annotations only), ~10x faster, but it
    stops at the first error. Compiled with the definitions the kind reaches (a few tenths of a second,
    once per kind per process). None: no schema."""
    schema = _schema(kind, api_version)
    if schema is None:
        return None
    defs = _definitions()["$defs"]
    doc = {k: v for k, v in schema.items() if k != "$schema"}  # draft-07 semantics: the same for these keywords
    # Refs read "/api/_definitions.json#/$defs/NAME" in the kind's file, "#/$defs/NAME" among the definitions.
    reached: set[str] = set()
    todo = re.findall(r'#/\$defs/([^"]*)"', json.dumps(doc))
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo += re.findall(r'#/\$defs/([^"]*)"', json.dumps(defs[name]))
    doc["definitions"] = {name: defs[name] for name in reached}
    text = re.sub(r'"(?:/api/_definitions\.json)?#/\$defs/', '"#/definitions/', json.dumps(doc))
    return fastjsonschema.compile(json.loads(text), formats={f: lambda _: True for f in _UNCHECKED_FORMATS})


@lru_cache(maxsize=1)
def _definitions() -> Any:
    import kubernetes_validate.utils as kv

    return kv.schema_contents(f"kubernetes-json-schema/{STRICT_FOLDER}/_definitions.json", K8S_SCHEMA_VERSION)


def _error_path(err: Any) -> str:
    out = ""
    for part in err.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def validate_builtin(obj: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Validates a built-in object against the real (strict) schema, in one pass.
    Returns (errors, unknown field paths)."""
    kind, api_version = obj.get("kind", ""), obj.get("apiVersion", "")
    fast = _fast_validator(kind, api_version)
    if fast is None:
        return [], []
    try:
        fast(obj)
        return [], []
    except fastjsonschema.JsonSchemaValueException:
        pass  # invalid: jsonschema lists every error, with the paths the API server would name
    strict = _builtin_validator(kind, api_version)
    errors, unknown = [], []
    for e in strict.iter_errors(obj):
        if e.validator == "additionalProperties":
            allowed = set((e.schema.get("properties") or {}).keys())
            base = _error_path(e)
            unknown += [key if base == "<root>" else f"{base}.{key}" for key in e.instance if key not in allowed]
        else:
            errors.append(f"{_error_path(e)}: Invalid value: {json.dumps(e.instance)[:80]}: {e.message}")
    return errors, unknown


def drop_paths(obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
    """Removes the given dotted paths (``a.b[0].c``) from a copy of obj."""
    out = copy.deepcopy(obj)
    for path in paths:
        parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
        node: Any = out
        for part in parts[:-1]:
            node = node[int(part[1:-1])] if part.startswith("[") else node.get(part)
            if node is None:
                break
        if isinstance(node, dict):
            node.pop(parts[-1], None)
    return out


def semantic_errors(rt: ResourceType, obj: dict[str, Any]) -> list[str]:
    """Rules the API server enforces in code (not in the OpenAPI schema) that matter to the operator."""
    errors = []
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    if rt.kind == "Service":
        if not DNS1035_LABEL.match(name) or len(name) > 63:
            errors.append(f"metadata.name: Invalid value: {name!r}: a DNS-1035 label must consist of lower"
                          " case alphanumeric characters or '-', start with an alphabetic character, and end"
                          " with an alphanumeric character")
    elif rt.kind == "Namespace":
        if not DNS1123_LABEL.match(name) or len(name) > 63:
            errors.append(f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 label")
    elif name and (not DNS1123_SUBDOMAIN.match(name) or len(name) > 253):
        errors.append(f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain must consist of"
                      " lower case alphanumeric characters, '-' or '.'")
    for key, value in (meta.get("labels") or {}).items():
        if not LABEL_NAME.match(key.split("/")[-1]) or not LABEL_VALUE.match(str(value)) or len(str(value)) > 63:
            errors.append(f"metadata.labels: Invalid value: {value!r}: a valid label must be 63 characters or"
                          " less, and consist of alphanumerics, '-', '_' or '.'")
    if rt.kind == "Job":
        errors += _job_errors(obj, name)
    return errors


def _job_errors(job: dict[str, Any], name: str) -> list[str]:
    errors = []
    spec = job.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    if len(name) > 63:
        errors.append(f"metadata.name: Invalid value: {name!r}: must be no more than 63 characters"
                      " (it becomes a label value)")
    restart = pod.get("restartPolicy")
    if restart not in ("Never", "OnFailure"):
        errors.append(f"spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
                      f" (got {restart!r})")
    if spec.get("podFailurePolicy") and restart != "Never":
        errors.append("spec.podFailurePolicy: Invalid value: only allowed with restartPolicy Never")
    if spec.get("completionMode") == "Indexed" and spec.get("completions") is None:
        errors.append("spec.completions: Required value: when completion mode is Indexed")
    for i, rule in enumerate((spec.get("podFailurePolicy") or {}).get("rules", [])):
        if rule.get("action") not in ("FailJob", "Ignore", "Count", "FailIndex"):
            errors.append(f"spec.podFailurePolicy.rules[{i}].action: Unsupported value: {rule.get('action')!r}")
        if bool(rule.get("onExitCodes")) == bool(rule.get("onPodConditions")):
            errors.append(f"spec.podFailurePolicy.rules[{i}]: Invalid value: specify exactly one of"
                          " onExitCodes and onPodConditions")
    return errors


# --- OpenAPI v3 (what kubectl reads to learn that the server validates fields itself) -------------


def openapi_v3_doc(types: list[ResourceType]) -> dict[str, Any]:
    """A minimal OpenAPI v3 document of one group-version: a PATCH operation per resource that
    accepts ``fieldValidation`` (so kubectl leaves validation to the server), plus CR schemas."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rt in types:
        prefix = "/api/v1" if rt.group == "" else f"/apis/{rt.group}/{rt.version}"
        ns = "/namespaces/{namespace}" if rt.namespaced else ""
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        params = [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
                  {"name": "dryRun", "in": "query", "schema": {"type": "string"}}]
        op = {"x-kubernetes-group-version-kind": gvk, "parameters": params, "responses": {}}
        paths[f"{prefix}{ns}/{rt.plural}/{{name}}"] = {
            "patch": {**op, "x-kubernetes-action": "patch"},
            "put": {**op, "x-kubernetes-action": "put"},
        }
        paths[f"{prefix}{ns}/{rt.plural}"] = {"post": {**op, "x-kubernetes-action": "post"}}
        if rt.schema is not None:
            name = f"{'.'.join(reversed(rt.group.split('.')))}.{rt.version}.{rt.kind}"
            schemas[name] = {**rt.schema, "x-kubernetes-group-version-kind": [gvk]}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": paths, "components": {"schemas": schemas}}
