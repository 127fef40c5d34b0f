"""The test API server: kmock's Kubernetes scaffold over HTTP, with a faithful store behind it.

kmock 0.8 supplies the HTTP server, request recording and its DSL (a test can still inject a reaction,
e.g. ``server.handler['post', kmock.resource('batch/v1/jobs')] << 500``, which wins over the default
behaviour). This module closes the gaps that kmock's own emulator leaves: it routes
every Kubernetes request to ``Store`` (server-side metadata, resourceVersions, watches from a version,
selectors, status subresource, validation, finalizers), serves discovery with correct group versions
(core is ``v1``), list kinds, tables for ``kubectl get``, a minimal OpenAPI v3 so that kubectl leaves
field validation to the server, and registers CRDs when they are created.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import time
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import rendering

from testapi import protobuf, schemas
from testapi.admission import PodSecurityStore
from testapi.audit import Audit
from testapi.controllers import Controllers
from testapi.faults import Faults
from testapi.schemas import ResourceType
from testapi.store import ApiError, Store, now_rfc3339

SERVER_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-rlaif-testapi", "gitCommit": "0" * 40,
                  "gitTreeState": "clean", "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.23",
                  "compiler": "gc", "platform": "linux/amd64"}


def _parse_path(path: str) -> tuple[str, str, str | None, str, str | None, str | None] | None:
    """(group, version, namespace, plural, name, subresource) of a resource URL, or None."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
        namespace, rest = rest[1], rest[2:]
    plural = rest[0]
    name = rest[1] if len(rest) > 1 else None
    sub = "/".join(rest[2:]) or None
    return group, version, namespace, plural, name, sub


def _age(timestamp: str | None) -> str:
    if not timestamp:
        return "<unknown>"
    then = datetime.datetime.strptime(timestamp[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.UTC)
    seconds = int((datetime.datetime.now(datetime.UTC) - then).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _jsonpath(obj: Any, path: str) -> Any:
    for part in path.strip().lstrip(".").split("."):
        if not part:
            continue
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def go_numbers(value: Any) -> Any:
    """Numbers as the API server stores them: Go decodes ``3.0`` to float64 and stores it as ``3``
    (encoding/json drops the ".0"), so every reader gets the integer 3 back."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2 ** 63:
        return int(value)
    if isinstance(value, dict):
        return {k: go_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [go_numbers(v) for v in value]
    return value


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesScaffold):
    """The handler: kmock routing, the store, the controllers."""

    store: Store = attrs.field(factory=PodSecurityStore)  # Pod Security admission in front of the store
    node_gpus: int | None = 8
    bookmark_seconds: float = 10.0
    log: list[str] | None = None  # "METHOD path -> status" of every request, when a list is given
    keep_requests: int = 2000  # kmock records every request; keep the latest only (the bench makes many)
    controllers: Controllers | None = attrs.field(default=None, init=False)
    faults: Faults | None = None  # injected faults (tests/testapi/faults.py); a test sets and clears it
    audit: Audit = attrs.field(init=False)  # verb x resource of every request, by User-Agent (RBAC tests)
    _watch_tasks: set[asyncio.Queue[Any]] = attrs.field(factory=set, init=False)
    # What each pod's container "logged" ((namespace, pod, container) -> text): there is no kubelet, so a
    # test writes it (``append_log``, or POST /testapi/logs/NAMESPACE/POD[?container=C]) and the API
    # serves it at pods/NAME/log like a kubelet would.
    pod_logs: dict[tuple[str, str, str], str] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        # Not the scaffold's routes: ``_handle`` serves the whole API when no test reaction matched.
        self.store.hooks.insert(0, self._crd_hook)
        self.audit = Audit(self.store)

    async def __aenter__(self) -> ApiServer:
        await super().__aenter__()
        self.controllers = Controllers(self.store, asyncio.get_running_loop(), node_gpus=self.node_gpus)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        for queue in list(self._watch_tasks):
            queue.put_nowait(None)
        if self.controllers:
            self.controllers.close()
        await super().__aexit__(*exc)

    # kmock 0.8 cannot parse /api/v1/namespaces (it raises), so parse failures fall back to a plain request.
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        await raw_request.read()
        try:
            request = await rendering.Request._parse(raw_request, id=len(self._requests))
        except ValueError:
            body = await raw_request.read()
            try:
                data = json.loads(body) if body else None
            except ValueError:
                data = None
            request = rendering.Request(id=len(self._requests), raw_request=raw_request, url=raw_request.url,
                                        method=raw_request.method, params=dict(raw_request.query),
                                        headers=dict(raw_request.headers), body=body,
                                        text=body.decode(errors="replace"), data=data)
        self._requests.append(request)
        if len(self._requests) > self.keep_requests * 2:
            del self._requests[: -self.keep_requests]
        try:
            return await self._handle(request)
        except rendering.StreamingError as e:
            raw = e.args[0]
            if not raw.prepared:
                return await self._render_error(e.__cause__ or e)
            return raw
        except Exception as e:  # noqa: BLE001 - turned into a 500 Status, as kmock does
            return await self._render_error(e)

    # --- the CRD "controller": a created CRD is served at once --------------------------------------

    def _crd_hook(self, rt: ResourceType, etype: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        if rt.kind != "CustomResourceDefinition":
            return
        if etype == "DELETED":
            for t in schemas.types_from_crd(obj):
                for (ns, name), _ in list(self.store.objects.get(t.key, {}).items()):
                    with contextlib.suppress(ApiError):
                        self.store.delete(t, ns, name)
                self.store.unregister(t.key)
            return
        for t in schemas.types_from_crd(obj):
            self.store.register(t)
        if not any(c.get("type") == "Established" for c in (obj.get("status") or {}).get("conditions", [])):
            asyncio.get_running_loop().call_soon(self._establish, rt, obj)

    def _establish(self, rt: ResourceType, crd: dict[str, Any]) -> None:
        now = now_rfc3339()
        self.store.write_status(rt, crd, {
            "acceptedNames": crd["spec"]["names"], "storedVersions": [v["name"] for v in crd["spec"]["versions"]
                                                                      if v.get("storage")],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "lastTransitionTime": now,
                 "message": "no conflicts found"},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "lastTransitionTime": now, "message": "the initial names have been accepted"}]})

    # --- routing ------------------------------------------------------------------------------------

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        """A test's own kmock reactions first (they may inject faults), then the API itself.

        Replies are built here rather than through kmock's rendering: kmock 0.8 keeps the status and
        headers of a rendered ``Response`` on its reaction, so they would leak into later replies."""
        self.audit.record(str(getattr(request.method, "value", request.method)).upper(), request.url.path,
                          dict(request.params), request.headers.get("User-Agent", ""), request.data)
        if self._payloads:
            try:
                return await super()._handle(request)
            except NotImplementedError:
                pass
        began = time.thread_time()
        reply = await self._route(request)
        if isinstance(reply, aiohttp.web.StreamResponse):
            status = reply.status
        else:
            status = reply.status if isinstance(reply, rendering.Response) else 200
            payload = reply.payload if isinstance(reply, rendering.Response) else reply
            headers = dict(reply.headers or {}) if isinstance(reply, rendering.Response) else {}
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            reply = aiohttp.web.Response(body=body, status=status, headers=headers,
                                         content_type="text/plain" if isinstance(payload, bytes)
                                         else "application/json")
        if self.log is not None:
            self.log.append(f"{request.method.value} {request.url.path_qs} -> {status}"
                            f" {1000 * (time.thread_time() - began):.1f}ms")
        return reply

    async def _route(self, request: rendering.Request) -> Any:
        path = request.url.path.rstrip("/") or "/"
        try:
            if path in ("/healthz", "/livez", "/readyz"):
                return rendering.Response(status=200, payload=b"ok")
            if path == "/version":
                return SERVER_VERSION
            if path == "/api":
                return {"kind": "APIVersions", "versions": ["v1"],
                        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
            if path == "/apis":
                return self._group_list()
            if path == "/api/v1":
                return self._resource_list("", "v1")
            parts = [p for p in path.split("/") if p]
            if parts[0] == "apis" and len(parts) == 2:
                return self._group(parts[1])
            if parts[0] == "apis" and len(parts) == 3:
                return self._resource_list(parts[1], parts[2])
            if parts[0] == "openapi":
                return self._openapi(parts[1:])
            if parts[0] == "testapi" and parts[1:2] == ["logs"] and len(parts) == 4:
                return self._write_log(request, parts[2], parts[3])
            parsed = _parse_path(path)
            if parsed is not None and parsed[3] == "pods" and parsed[5] == "log" and parsed[0] == "":
                return self._read_log(request, parsed[2] or "", parsed[4] or "")
            if parsed is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            faults = self._faults_for(request)
            if faults is None:
                return await self._resource_request(request, *parsed)
            watch = request.params.get("watch") in ("true", "1")
            method = str(request.method.value if hasattr(request.method, "value") else request.method).upper()
            await faults.before(method, watch)
            reply = await self._resource_request(request, *parsed)
            await faults.after(method, path, watch)
            return reply
        except ApiError as err:
            return rendering.Response(status=err.code, payload=err.status())

    def set_faults(self, faults: Faults | None) -> None:
        """Turns injected faults on (or off with None) and ends every open watch stream, so that each
        client's next watch starts under the new faults (and the drop is a fault of its own, as an API
        server restart or a load balancer would cause). Call it on the server's loop."""
        self.faults = faults
        for queue in list(self._watch_tasks):
            queue.put_nowait(None)

    def _faults_for(self, request: rendering.Request) -> Faults | None:
        faults = self.faults
        return faults if faults is not None and faults.applies(request) else None

    def _versions(self) -> dict[str, set[str]]:
        groups: dict[str, set[str]] = {}
        for rt in self.store.types.values():
            groups.setdefault(rt.group, set()).add(rt.version)
        return groups

    def _group_entry(self, group: str, versions: set[str]) -> dict[str, Any]:
        ordered = sorted(versions)
        return {"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered],
                "preferredVersion": {"groupVersion": f"{group}/{ordered[-1]}", "version": ordered[-1]}}

    def _group_list(self) -> dict[str, Any]:
        return {"kind": "APIGroupList", "apiVersion": "v1",
                "groups": [self._group_entry(g, v) for g, v in sorted(self._versions().items()) if g]}

    def _group(self, group: str) -> dict[str, Any]:
        versions = self._versions().get(group)
        if not versions:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_entry(group, versions)}

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        types = [rt for rt in self.store.types.values() if rt.group == group and rt.version == version]
        if not types:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return {"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": version if group == "" else f"{group}/{version}",
                "resources": [entry for rt in sorted(types, key=lambda t: t.plural) for entry in rt.discovery()]}

    def _openapi(self, rest: list[str]) -> dict[str, Any]:
        if rest == ["v3"]:
            paths = {}
            for group, versions in self._versions().items():
                for v in versions:
                    gv = f"api/{v}" if group == "" else f"apis/{group}/{v}"
                    paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={self.store.rv}"}
            return {"paths": paths}
        if len(rest) >= 3 and rest[0] == "v3":
            gv = rest[1:]
            group, version = ("", gv[1]) if gv[0] == "api" else (gv[1], gv[2])
            types = [rt for rt in self.store.types.values() if rt.group == group and rt.version == version]
            if types:
                return schemas.openapi_v3_doc(types)
        raise ApiError(404, "NotFound", "the server could not find the requested resource")

    # --- pod logs (the kubelet's part) -------------------------------------------------------------

    def append_log(self, namespace: str, pod: str, text: str, container: str | None = None) -> None:
        """Appends ``text`` to what the pod's container (default: its first) logged; 404 if no such pod."""
        obj = self.store.get(self.store.types[("", "pods")], namespace, pod)
        container = container or obj["spec"]["containers"][0]["name"]
        key = (namespace, pod, container)
        self.pod_logs[key] = self.pod_logs.get(key, "") + text

    def _write_log(self, request: rendering.Request, namespace: str, pod: str) -> Any:
        data = request.data if isinstance(request.data, (bytes, str)) else json.dumps(request.data)
        text = data.decode() if isinstance(data, bytes) else str(data)
        self.append_log(namespace, pod, text, request.params.get("container"))
        return rendering.Response(status=201, payload=b"")

    def _read_log(self, request: rendering.Request, namespace: str, pod: str) -> Any:
        """GET pods/NAME/log as the API serves it: text/plain, ``container`` (required when the pod has
        several), ``tailLines`` and ``limitBytes``; 404 for a missing pod, 400 for an unknown container."""
        obj = self.store.get(self.store.types[("", "pods")], namespace, pod)
        containers = [c["name"] for c in obj["spec"]["containers"]]
        container = request.params.get("container")
        if container is None:
            if len(containers) > 1:
                raise ApiError(400, "BadRequest", f"a container name must be specified for pod {pod}, choose"
                               f" one of: [{' '.join(containers)}]")
            container = containers[0]
        if container not in containers:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {pod}")
        text = self.pod_logs.get((namespace, pod, container), "")
        if "tailLines" in request.params:
            keep = int(request.params["tailLines"])
            lines = text.splitlines(keepends=True)
            text = "".join(lines[-keep:]) if keep > 0 else ""
        body = text.encode()
        if "limitBytes" in request.params:
            body = body[:int(request.params["limitBytes"])]
        return rendering.Response(status=200, payload=body)

    # --- resources ----------------------------------------------------------------------------------

    def _type(self, group: str, version: str, plural: str) -> ResourceType:
        rt = self.store.find_type(group, version, plural)
        if rt is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return rt

    async def _resource_request(self, request: rendering.Request, group: str, version: str, namespace: str | None,
                                plural: str, name: str | None, sub: str | None) -> Any:
        rt = self._type(group, version, plural)
        params = request.params
        method = str(request.method.value if hasattr(request.method, "value") else request.method).upper()
        validation = params.get("fieldValidation", "Warn")
        dry_run = params.get("dryRun") == "All"
        ns = namespace if rt.namespaced else None
        if rt.namespaced is False and namespace:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if sub not in (None, "status") or (sub == "status" and not rt.status_subresource):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        watch = params.get("watch") in ("true", "1")

        if method == "GET" and (watch or name is None):
            field_selector = params.get("fieldSelector")
            if name is not None:  # legacy watch of one object
                field_selector = ",".join(s for s in (field_selector, f"metadata.name={name}") if s)
            if watch:
                return await self._watch(request, rt, ns, params.get("labelSelector"), field_selector)
            items, rv = self.store.list(rt, ns, params.get("labelSelector"), field_selector)
            if self._wants_table(request):
                return self._table(rt, items, rv, params.get("includeObject", "Metadata"))
            return {"apiVersion": rt.api_version, "kind": rt.list_kind,
                    "metadata": {"resourceVersion": str(rv)}, "items": items}
        if method == "GET":
            obj = self.store.get(rt, ns, name)
            if self._wants_table(request):
                return self._table(rt, [obj], self.store.rv, params.get("includeObject", "Metadata"))
            return obj
        if method == "POST" and name is None:
            body = self._body(request)
            obj, warnings = self.store.create(rt, ns, body, field_validation=validation, dry_run=dry_run)
            return self._reply(201, obj, warnings)
        if method == "PUT" and name is not None:
            body = self._body(request)
            obj, warnings = self.store.replace(rt, ns, name, body, subresource=sub, field_validation=validation,
                                               dry_run=dry_run)
            return self._reply(200, obj, warnings)
        if method == "PATCH" and name is not None:
            content_type = request.headers.get("Content-Type", "")
            body = self._body(request, yaml_ok="apply-patch" in content_type)
            obj, warnings = self.store.patch(rt, ns, name, content_type, body, subresource=sub,
                                             field_validation=validation, dry_run=dry_run)
            return self._reply(200, obj, warnings)
        if method == "DELETE":
            options = request.data if isinstance(request.data, dict) else {}
            propagation = params.get("propagationPolicy") or options.get("propagationPolicy")
            if options.get("orphanDependents") is True:
                propagation = "Orphan"
            if name is None:  # deletecollection
                items, _ = self.store.list(rt, ns, params.get("labelSelector"), params.get("fieldSelector"))
                for item in items:
                    self.store.delete(rt, item["metadata"].get("namespace"), item["metadata"]["name"],
                                      propagation=propagation)
                return {"apiVersion": rt.api_version, "kind": rt.list_kind, "metadata": {}, "items": items}
            obj = self.store.delete(rt, ns, name, propagation=propagation,
                                    preconditions=options.get("preconditions"), dry_run=dry_run)
            return obj
        raise ApiError(405, "MethodNotAllowed", f"{method} is not supported on this URL")

    @staticmethod
    def _body(request: rendering.Request, yaml_ok: bool = False) -> Any:
        return go_numbers(ApiServer._decoded_body(request, yaml_ok))

    @staticmethod
    def _decoded_body(request: rendering.Request, yaml_ok: bool = False) -> Any:
        if "protobuf" in request.headers.get("Content-Type", ""):
            try:
                return protobuf.decode(request.body)
            except (protobuf.Unsupported, IndexError, UnicodeDecodeError):
                pass
            raise ApiError(415, "UnsupportedMediaType", "the body of the request was in an unknown format -"
                           " accepted media types include: application/json, application/yaml")
        if request.data is not None and not isinstance(request.data, (str, bytes)):
            return request.data
        text = request.text or ""
        try:
            return yaml.safe_load(text) if yaml_ok else json.loads(text)
        except (ValueError, yaml.YAMLError):
            raise ApiError(400, "BadRequest", "the body of the request could not be decoded") from None

    @staticmethod
    def _reply(code: int, obj: dict[str, Any], warnings: list[str]) -> rendering.Response:
        headers = {}
        if warnings:
            # aiohttp sends one header line; kubectl and the Python client print it.
            headers["Warning"] = ", ".join(f'299 - "{w.replace(chr(34), chr(39))}"' for w in warnings)
        return rendering.Response(status=code, payload=obj, headers=headers)

    # --- tables for kubectl get -----------------------------------------------------------------------

    @staticmethod
    def _wants_table(request: rendering.Request) -> bool:
        return "as=Table" in request.headers.get("Accept", "")

    def _table(self, rt: ResourceType, items: list[dict[str, Any]], rv: int, include: str) -> dict[str, Any]:
        columns: list[dict[str, Any]] = [{"name": "Name", "type": "string", "format": "name", "priority": 0,
                                          "description": "Name must be unique within a namespace."}]
        getters: list[Any] = []
        if rt.printer_columns:
            for col in rt.printer_columns:
                columns.append({"name": col["name"], "type": col["type"], "format": col.get("format", ""),
                                "priority": col.get("priority", 0), "description": col.get("description", "")})
                getters.append(lambda o, c=col: _age(_jsonpath(o, c["jsonPath"])) if c["type"] == "date"
                               else _jsonpath(o, c["jsonPath"]))
        elif rt.kind == "Pod":
            columns += [{"name": n, "type": "string", "format": "", "priority": 0, "description": n}
                        for n in ("Ready", "Status", "Restarts", "Age")]
            getters += [
                lambda o: f"{sum(1 for c in o.get('status', {}).get('containerStatuses', []) if c.get('ready'))}"
                          f"/{len(o['spec'].get('containers', []))}",
                lambda o: ("Error" if o.get("status", {}).get("phase") == "Failed" else
                           "Completed" if o.get("status", {}).get("phase") == "Succeeded" else
                           o.get("status", {}).get("phase", "Unknown")),
                lambda o: 0,
                lambda o: _age(o["metadata"].get("creationTimestamp")),
            ]
        elif rt.kind == "Job":
            columns += [{"name": n, "type": "string", "format": "", "priority": 0, "description": n}
                        for n in ("Status", "Completions", "Age")]
            getters += [
                lambda o: next((c["type"] for c in o.get("status", {}).get("conditions", [])
                                if c["type"] in ("Complete", "Failed", "Suspended") and c["status"] == "True"),
                               "Running"),
                lambda o: f"{o.get('status', {}).get('succeeded', 0)}/{o['spec'].get('completions', 1)}",
                lambda o: _age(o["metadata"].get("creationTimestamp")),
            ]
        elif rt.kind == "Event":
            columns = [{"name": n, "type": "string", "format": "name" if n == "Name" else "", "priority": 0,
                        "description": n} for n in ("Last Seen", "Type", "Reason", "Object", "Message")]
            getters = [
                lambda o: o.get("type", ""), lambda o: o.get("reason", ""),
                lambda o: f"{(o.get('involvedObject') or {}).get('kind', '').lower()}/"
                          f"{(o.get('involvedObject') or {}).get('name', '')}",
                lambda o: o.get("message", ""),
            ]
            rows = [{"cells": [_age(o.get("lastTimestamp") or o["metadata"].get("creationTimestamp")),
                               *[g(o) for g in getters]],
                     "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                "metadata": o["metadata"]}} for o in items]
            return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(rv)},
                    "columnDefinitions": columns, "rows": rows}
        else:
            columns.append({"name": "Age", "type": "string", "format": "", "priority": 0, "description": "Age"})
            getters.append(lambda o: _age(o["metadata"].get("creationTimestamp")))
        rows = []
        for obj in items:
            row: dict[str, Any] = {"cells": [obj["metadata"]["name"], *[g(obj) for g in getters]]}
            if include == "Object":
                row["object"] = obj
            elif include != "None":
                row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                 "metadata": obj["metadata"]}
            rows.append(row)
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": str(rv)},
                "columnDefinitions": columns, "rows": rows}

    # --- watches ----------------------------------------------------------------------------------------

    async def _watch(self, request: rendering.Request, rt: ResourceType, ns: str | None, labels: str | None,
                     fields: str | None) -> aiohttp.web.StreamResponse:
        params = request.params
        timeout = float(params["timeoutSeconds"]) if params.get("timeoutSeconds") else None
        bookmarks = params.get("allowWatchBookmarks") in ("true", "1")
        raw = request._raw_request
        assert raw is not None
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        faults = self._faults_for(request)
        try:
            if faults is not None:
                faults.watch_gone()
            watcher, initial = self.store.watch(rt, ns, labels, fields, params.get("resourceVersion"))
        except ApiError as err:
            if err.code != 410:
                raise
            await response.prepare(raw)  # a real server answers 200, then an ERROR event
            await response.write(json.dumps({"type": "ERROR", "object": err.status()}).encode() + b"\n")
            await response.write_eof()
            return response
        store, queue = self.store, watcher.queue
        self._watch_tasks.add(queue)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        lifetime = faults.watch_lifetime() if faults is not None else None
        if lifetime is not None:  # an injected drop: the stream ends early, the client must resume
            deadline = min(deadline, loop.time() + lifetime) if deadline else loop.time() + lifetime
        try:
            await response.prepare(raw)  # send the headers now: a watch may stay silent for long
            for event in initial:
                await response.write(json.dumps(event).encode() + b"\n")
            while True:
                wait = self.bookmark_seconds
                if deadline is not None:
                    wait = min(wait, deadline - loop.time())
                    if wait <= 0:
                        break
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=wait)
                except TimeoutError:
                    if bookmarks:
                        await response.write(json.dumps({"type": "BOOKMARK", "object": {
                            "kind": rt.kind, "apiVersion": rt.api_version,
                            "metadata": {"resourceVersion": str(store.rv)}}}).encode() + b"\n")
                    continue
                if event is None:  # the server is stopping
                    break
                if faults is not None and faults.watch_lag_seconds:
                    faults.counts["watchLag"] += 1
                    await asyncio.sleep(faults.watch_lag_seconds)  # a lagging watch (injected)
                await response.write(json.dumps(event).encode() + b"\n")
            await response.write_eof()
        except ConnectionError:
            pass  # the client went away
        finally:
            store.unwatch(watcher)
            self._watch_tasks.discard(queue)
        return response
