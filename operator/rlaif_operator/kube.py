"""A thin REST client on plain dicts: the operator's only door to the Kubernetes API.

Built on the official client's ``ApiClient`` (credentials from KUBECONFIG or the in-cluster service
account, TLS, retries), but it sends and returns JSON dicts: no typed models to convert, and one code
path for custom resources and built-in kinds alike.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

from rlaif_operator import reaction
from rlaif_operator.api.kinds import KINDS
from rlaif_operator.version import VERSION

log = logging.getLogger(__name__)

PLURALS = {
    **{kind: cls.PLURAL for kind, cls in KINDS.items()},
    "Job": "jobs", "ConfigMap": "configmaps", "Service": "services", "Secret": "secrets", "Pod": "pods",
    "Event": "events", "NetworkPolicy": "networkpolicies",
}


class KubeError(Exception):
    """An API answer other than success; ``status`` is the HTTP code (0: no answer)."""

    def __init__(self, status: int, reason: str, body: dict[str, Any] | None = None):
        self.status, self.reason, self.body = status, reason, body or {}
        super().__init__(f"{status} {reason}: {self.body.get('message', '')}".strip())


def path_of(api_version: str, kind: str, namespace: str | None = None, name: str | None = None,
            subresource: str | None = None) -> str:
    """The REST path of a kind's collection, or of one object and its subresource."""
    prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    path = prefix + (f"/namespaces/{namespace}" if namespace else "") + f"/{PLURALS[kind]}"
    if name:
        path += f"/{name}"
    if subresource:
        path += f"/{subresource}"
    return path


class Kube:
    """Get, list, create, patch and post events; dict in, dict out."""

    def __init__(self, api_client: Any = None, timeout: float = 30.0, connections: int = 16,
                 user_agent: str = "rlaif-operator"):
        if api_client is None:
            from kubernetes import client, config  # imported late: KUBECONFIG is read at import time

            configuration = client.Configuration()
            try:
                config.load_incluster_config(client_configuration=configuration)
            except config.ConfigException:
                config.load_kube_config(client_configuration=configuration)
            # One kept-alive connection per worker thread (the default pool keeps 5 per CPU).
            configuration.connection_pool_maxsize = connections
            api_client = client.ApiClient(configuration)
        self.api = api_client
        self.timeout = timeout
        host = urlsplit(api_client.configuration.host)
        # One pool for the API server (its connections kept alive), from the client's own pool manager.
        self._pool = api_client.rest_client.pool_manager.connection_from_url(api_client.configuration.host)
        self._prefix = host.path.rstrip("/")  # a server URL with a path (a proxy's) keeps it
        # Who calls, in the API server's audit log: the operator, or a user's `rlaif` command.
        self._agent = f"{user_agent}/{VERSION}"

    def request(self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None,
                content_type: str = "application/json", answer: bool = True) -> dict[str, Any]:
        """One API call; raises KubeError unless the answer is 2xx. Returns the answer decoded (``answer``
        False: {} on success, for a caller that does not read it, such as an Event's post).

        Sent on the client's own connection pool (its TLS, client certificates and proxy) with its
        credentials (a rotating service-account token is re-read through its refresh hook), but without
        its generic serialisation layers: a third of the operator's CPU per call went there."""
        url = path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type, "User-Agent": self._agent,
                   **self._auth()}
        payload = json.dumps(body).encode() if body is not None else None
        try:
            response = self._pool.urlopen(method, self._prefix + url, body=payload, headers=headers,
                                          timeout=self.timeout, preload_content=True)
        except Exception as err:  # connection refused, timeouts
            raise KubeError(0, f"{type(err).__name__}: {err}") from None
        data = response.data
        if not answer and 200 <= response.status < 300:
            return {}
        try:
            decoded = json.loads(data) if data else {}
        except ValueError:
            decoded = {"message": data[:200].decode(errors="replace")}
        if not 200 <= response.status < 300:
            raise KubeError(response.status, decoded.get("reason", "") or str(response.reason or ""), decoded)
        return decoded

    def _auth(self) -> dict[str, str]:
        """The client's auth headers (a bearer token), read on each call: its refresh hook rotates it."""
        headers: dict[str, str] = {}
        for setting in self.api.configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                headers[setting["key"]] = setting["value"]
        return headers

    def read_log(self, namespace: str, pod: str, container: str | None = None, tail_lines: int = 200,
                 limit_bytes: int = 64 * 1024) -> str | None:
        """The last ``tail_lines`` lines (at most ``limit_bytes``) a pod's container logged; None if the
        pod is gone or has no log yet (404, 400: its container has not started)."""
        query = {"tailLines": str(tail_lines), "limitBytes": str(limit_bytes),
                 **({"container": container} if container else {})}
        url = f"{self._prefix}{path_of('v1', 'Pod', namespace, pod, 'log')}?{urlencode(query)}"
        try:
            response = self._pool.urlopen("GET", url, headers={"Accept": "text/plain", "User-Agent": self._agent,
                                                                    **self._auth()},
                                          timeout=self.timeout, preload_content=True)
        except Exception as err:  # connection refused, timeouts
            raise KubeError(0, f"{type(err).__name__}: {err}") from None
        data = response.data
        if response.status in (400, 404):
            return None
        if not 200 <= response.status < 300:
            raise KubeError(response.status, "", {"message": data[:200].decode(errors="replace")})
        return data.decode(errors="replace")

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None if it does not exist."""
        try:
            return self.request("GET", path_of(api_version, kind, namespace, name))
        except KubeError as err:
            if err.status == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None, label_selector: str | None = None,
             field_selector: str | None = None) -> list[dict[str, Any]]:
        query = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector)) if v}
        return self.request("GET", path_of(api_version, kind, namespace), query=query or None).get("items", [])

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str, uid: str | None = None,
               propagation: str = "Background") -> bool:
        """Deletes the object (only the one with ``uid``, if given). Returns False if it was already gone."""
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        if uid:
            options["preconditions"] = {"uid": uid}
        try:
            self.request("DELETE", path_of(api_version, kind, namespace, name), body=options)
        except KubeError as err:
            if err.status == 404:
                return False
            raise
        return True

    def remove_finalizer(self, obj: dict[str, Any], finalizer: str) -> dict[str, Any] | None:
        """Removes one finalizer from ``obj`` as it was read: a JSON patch that tests the entry first, so a
        concurrent change of the list fails (422) instead of removing someone else's. Returns the object
        as patched (None: the finalizer was not there, or the object is gone)."""
        meta = obj["metadata"]
        current = meta.get("finalizers") or []
        if finalizer not in current:
            return None
        index = current.index(finalizer)
        ops = [{"op": "test", "path": f"/metadata/finalizers/{index}", "value": finalizer},
               {"op": "remove", "path": f"/metadata/finalizers/{index}"}]
        try:
            return self.request("PATCH", path_of(obj["apiVersion"], obj["kind"], meta.get("namespace"),
                                                 meta["name"]), body=ops, content_type="application/json-patch+json")
        except KubeError as err:
            if err.status == 404:
                return None
            raise

    def create(self, manifest: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Creates the object if absent. Returns (the object as stored, whether this call created it)."""
        meta = manifest["metadata"]
        path = path_of(manifest["apiVersion"], manifest["kind"], meta.get("namespace"))
        reaction.sent("create", manifest["kind"], meta.get("namespace"), meta["name"])
        try:
            return self.request("POST", path, body=manifest), True
        except KubeError as err:
            if err.status != 409:
                raise
        existing = self.get(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"])
        if existing is None:  # deleted in between: let the next reconcile try again
            raise KubeError(409, "Conflict", {"message": f"{meta['name']} exists and vanished"})
        return existing, False

    def patch_status(self, api_version: str, kind: str, namespace: str | None, name: str,
                     status: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch of the status subresource."""
        reaction.sent("status", kind, namespace, name)
        return self.request("PATCH", path_of(api_version, kind, namespace, name, "status"),
                            body={"status": status}, content_type="application/merge-patch+json")

    def post_event(self, involved: dict[str, Any], event_type: str, reason: str, message: str,
                   component: str = "rlaif-operator") -> None:
        """A core/v1 Event on ``involved`` (best effort: losing an event must not fail a reconcile)."""
        meta = involved["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{secrets.token_hex(8)}", "namespace": meta.get("namespace")},
            "involvedObject": {"apiVersion": involved["apiVersion"], "kind": involved["kind"],
                               "name": meta["name"], "namespace": meta.get("namespace"), "uid": meta.get("uid")},
            "reason": reason, "message": message[:1024], "type": event_type,
            "source": {"component": component}, "reportingComponent": component,
            "reportingInstance": component, "firstTimestamp": now, "lastTimestamp": now, "count": 1,
        }
        try:
            self.request("POST", path_of("v1", "Event", meta.get("namespace")), body=event, answer=False)
        except KubeError as err:
            log.warning("could not post event %s on %s/%s: %s", reason, involved["kind"], meta["name"], err)
