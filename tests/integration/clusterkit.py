"""What the integration tests use to reach a cluster: kubectl, waiting, playing the kubelet.

The same helpers work against the project's test API server (the default) and against a real cluster
named by KUBECONFIG. Only ``Cluster.testapi`` tells them apart, for the few tests that need to play
the kubelet (a real cluster has its own).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

from testapi import kubelet  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KubectlError(AssertionError):
    pass


class Cluster:
    """A cluster reached through kubectl with one kubeconfig."""

    def __init__(self, kubeconfig: str, cache_dir: str, testapi: Any = None):
        self.kubeconfig = kubeconfig
        self.testapi = testapi  # the TestApiServer, or None on a real cluster
        self.env = {**os.environ, "KUBECONFIG": kubeconfig, "KUBECACHEDIR": cache_dir}

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(["kubectl", *args], env=self.env, input=input, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def get(self, kind: str, name: str, ns: str) -> dict[str, Any] | None:
        result = self.kubectl("get", kind, name, "-n", ns, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def items(self, kind: str, ns: str, selector: str | None = None) -> list[dict[str, Any]]:
        args = ["get", kind, "-n", ns] + (["-l", selector] if selector else [])
        return self.json(*args)["items"]

    def apply(self, manifest: str | dict[str, Any] | list[dict[str, Any]], ns: str,
              check: bool = True) -> subprocess.CompletedProcess[str]:
        docs = manifest if isinstance(manifest, list) else [manifest]
        # YAML documents written as JSON: no YAML 1.1 surprises ("y" is not a bool), several per stream.
        text = manifest if isinstance(manifest, str) else "".join(f"---\n{json.dumps(d)}\n" for d in docs)
        return self.kubectl("apply", "-n", ns, "-f", "-", input=text, check=check)

    def wait(self, target: str, ns: str, condition: str, timeout: float = 30) -> None:
        """``kubectl wait --for=...``: condition=Succeeded, jsonpath={.status.phase}=Running, delete."""
        self.kubectl("wait", target, "-n", ns, f"--for={condition}", f"--timeout={int(timeout)}s",
                     timeout=timeout + 15)

    def phase(self, kind: str, name: str, ns: str) -> str | None:
        obj = self.get(kind, name, ns)
        return ((obj or {}).get("status") or {}).get("phase")

    def condition(self, kind: str, name: str, ns: str, ctype: str) -> dict[str, Any] | None:
        obj = self.get(kind, name, ns) or {}
        return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == ctype), None)

    def events(self, ns: str, name: str) -> list[dict[str, Any]]:
        return self.json("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}")["items"]

    def new_namespace(self, prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.kubectl("create", "namespace", name)
        return name

    # --- playing the kubelet (test API server only: a real cluster's kubelet does this itself) -------

    def pods_of(self, job: str, ns: str) -> list[dict[str, Any]]:
        return self.items("pods", ns, f"batch.kubernetes.io/job-name={job}")

    def run_pods(self, job: str, ns: str) -> list[dict[str, Any]]:
        """Marks the Job's pending pods running and ready (as the kubelet would); returns them."""
        pending = [p for p in self.pods_of(job, ns) if p["status"].get("phase") == "Pending"]
        for pod in pending:
            self.kubectl("patch", "pod", pod["metadata"]["name"], "-n", ns, "--subresource=status",
                         "--type=merge", "-p", json.dumps({"status": kubelet.running(pod)}))
        return pending

    def finish_pods(self, job: str, ns: str, exit_code: int = 0, message: str | dict[str, Any] = "",
                    count: int | None = None, disruption: str | None = None) -> int:
        """Writes a terminated status into the Job's active pods (as the kubelet would); returns how many."""
        active = [p for p in self.pods_of(job, ns) if p["status"].get("phase") in ("Pending", "Running")]
        active.sort(key=lambda p: int(p["metadata"].get("annotations", {}).get(
            "batch.kubernetes.io/job-completion-index", 0)))
        for pod in active[:count]:
            status = kubelet.finished(pod, exit_code, message, disruption=disruption)
            self.kubectl("patch", "pod", pod["metadata"]["name"], "-n", ns, "--subresource=status",
                         "--type=merge", "-p", json.dumps({"status": status}))
        return len(active[:count])


def eventually(check: Callable[[], Any], timeout: float = 20, interval: float = 0.2, what: str = "") -> Any:
    """Polls ``check`` until it returns something truthy; fails with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except KubectlError as err:
            last = err
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or check}: last={last!r}")


class Operator:
    """The real operator process (``kopf run``) against the cluster."""

    def __init__(self, cluster: Cluster, log_path: Path, namespaces: str | None = None, **settings: str):
        self.cluster = cluster
        self.namespaces = namespaces
        self.log_path = log_path
        self.health_port = free_port()
        self.metrics_port = free_port()
        self.settings = settings
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, entry: str = "kopf") -> None:
        """Starts ``kopf run -m rlaif_operator.handlers`` (entry "kopf") or ``python -m rlaif_operator``
        (entry "module", configured through RLAIF_* only, as the chart's Deployment does)."""
        env = {**self.cluster.env, "RLAIF_METRICS_PORT": str(self.metrics_port),
               **{f"RLAIF_{k.upper()}": v for k, v in self.settings.items()}}
        liveness = f"http://127.0.0.1:{self.health_port}/healthz"
        if entry == "module":
            env.update(RLAIF_LIVENESS_ENDPOINT=liveness, RLAIF_NAMESPACES=json.dumps(
                [self.namespaces] if self.namespaces else []))
            command = [sys.executable, "-m", "rlaif_operator"]
        else:
            command = [sys.executable, "-m", "kopf", "run", "-m", "rlaif_operator.handlers", "--standalone",
                       *([f"--namespace={self.namespaces}"] if self.namespaces else ["--all-namespaces"]),
                       f"--liveness={liveness}"]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it until stop()
        self.proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        eventually(self.healthy, timeout=60, what="the operator's liveness probe")

    def healthy(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"the operator exited:\n{self.logs()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            return r.read().decode()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def logs(self, tail: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-tail:])
        except OSError:
            return ""
