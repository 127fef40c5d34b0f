"""A client and a namespace from a kubeconfig, as kubectl finds them.

The kubeconfig is ``--kubeconfig``, else ``KUBECONFIG`` (several files joined by ``:``), else
``~/.kube/config``; inside a pod without one, the pod's service account. The namespace is ``-n``, else the
context's, else ``default``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from rlaif_operator.clusterctl.resources import ClusterctlError
from rlaif_operator.kube import Kube, KubeError, path_of

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _user_agent() -> str:
    try:
        from importlib.metadata import version

        return f"rlaif-cli/{version('rlaif')}"
    except Exception:  # not installed as a distribution (a source checkout on PYTHONPATH)
        return "rlaif-cli/dev"


@dataclass
class Target:
    """Where the verbs act: the API client, the namespace, and whether ``-n`` named it."""

    kube: Kube
    namespace: str
    explicit_namespace: bool = False


def kubeconfig_path(flag: str | None) -> str:
    return flag or os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())


def _exists(paths: str) -> bool:
    return any(Path(p).expanduser().exists() for p in paths.split(os.pathsep) if p)


def connect(kubeconfig: str | None = None, context: str | None = None, namespace: str | None = None,
            timeout: float = 30.0) -> Target:
    """The client for ``context`` of ``kubeconfig`` (see the module docstring for the defaults)."""
    try:
        from kubernetes import client, config
    except ImportError:
        raise ClusterctlError("the cluster verbs need the Kubernetes client: pip install 'rlaif[operator]'") from None
    configuration = client.Configuration()
    path = kubeconfig_path(kubeconfig)
    context_namespace = "default"
    if _exists(path):
        try:
            config.load_kube_config(config_file=path, context=context, client_configuration=configuration,
                                    persist_config=False)
            contexts, current = config.list_kube_config_contexts(config_file=path)
        except (config.ConfigException, OSError, ValueError) as err:
            raise ClusterctlError(f"cannot use the kubeconfig {path}: {err}") from None
        wanted = context or (current or {}).get("name")
        chosen = next((c for c in contexts if c.get("name") == wanted), current or {})
        context_namespace = (chosen.get("context") or {}).get("namespace") or "default"
    elif os.environ.get("KUBERNETES_SERVICE_HOST") and not kubeconfig and not context:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException as err:
            raise ClusterctlError(f"cannot use the pod's service account: {err}") from None
        with contextlib.suppress(OSError):
            context_namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or "default"
    else:
        raise ClusterctlError(f"no kubeconfig at {path}: set KUBECONFIG or pass --kubeconfig")
    api_client = client.ApiClient(configuration)
    api_client.user_agent = _user_agent()
    return Target(Kube(api_client, timeout=timeout, user_agent="rlaif-cli"), namespace or context_namespace,
                  namespace is not None)


def read_pod_log(kube: Kube, namespace: str, pod: str, container: str | None = None,
                 tail_lines: int | None = None) -> str:
    """What a pod's container logged (the last ``tail_lines`` lines); raises KubeError with the API's
    message (404: the pod is gone; 400: e.g. its container has not started)."""
    query = {k: v for k, v in (("container", container),
                               ("tailLines", str(tail_lines) if tail_lines is not None else None)) if v}
    resource_path = path_of("v1", "Pod", namespace, pod, "log") + (f"?{urlencode(query)}" if query else "")
    api: Any = kube.api
    _, url, headers, _, _ = api.param_serialize(method="GET", resource_path=resource_path,
                                                header_params={"Accept": "text/plain, */*"},
                                                auth_settings=["BearerToken"])
    from kubernetes.client.exceptions import ApiException

    try:
        response = api.call_api("GET", url, header_params=headers, _request_timeout=kube.timeout)
    except ApiException as err:
        raise KubeError(err.status or 0, str(err.reason), _message(err.body)) from None
    except Exception as err:  # connection refused, timeouts
        raise KubeError(0, f"{type(err).__name__}: {err}") from None
    data = response.read() or b""
    if not 200 <= response.status < 300:
        raise KubeError(response.status, "", _message(data))
    return data.decode(errors="replace")


def _message(body: Any) -> dict[str, Any]:
    """The API's Status body as a dict (its ``message`` is what the user should read)."""
    import json

    if isinstance(body, bytes):
        body = body.decode(errors="replace")
    try:
        decoded = json.loads(body) if body else {}
    except ValueError:
        return {"message": str(body)[:300]}
    return decoded if isinstance(decoded, dict) else {"message": str(decoded)[:300]}
