"""Runs the test API server on a background thread (its own event loop) and writes a kubeconfig.

    with TestApiServer(crds="crds") as api:
        env = {"KUBECONFIG": api.kubeconfig}      # for kubectl, kopf, the Python client
        api.call(lambda store: store.rv)           # run code on the server's loop, get the result

``python -m testapi --port 8001`` (from tests/) serves it in the foreground for manual use and prints
the KUBECONFIG to use.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import kmock
import yaml

from testapi import kubelet
from testapi.server import ApiServer
from testapi.store import ApiError, Store

T = TypeVar("T")


def kubeconfig_text(url: str, namespace: str = "default") -> str:
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "testapi", "cluster": {"server": url}}],
        "users": [{"name": "tester", "user": {}}],
        "contexts": [{"name": "testapi", "context": {"cluster": "testapi", "user": "tester",
                                                     "namespace": namespace}}],
        "current-context": "testapi",
    })


class TestApiServer:
    """The server on a thread. ``url``/``kubeconfig`` once started; ``call`` runs code on its loop."""

    __test__ = False  # not a pytest test class

    def __init__(self, crds: str | Path | None = None, port: int | None = None, node_gpus: int | None = 8,
                 workdir: str | Path | None = None):
        self.crds = Path(crds) if crds else None
        self.port = port
        self.node_gpus = node_gpus
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="testapi-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.loop: asyncio.AbstractEventLoop | None = None
        self.handler: ApiServer | None = None
        self.url = ""
        self.kubeconfig = str(self.workdir / "kubeconfig")
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    def __enter__(self) -> TestApiServer:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="testapi", daemon=True)
        self._thread.start()
        self._ready.wait(30)
        if self._error:
            raise RuntimeError("the test API server failed to start") from self._error
        Path(self.kubeconfig).write_text(kubeconfig_text(self.url))
        if self.crds:
            for path in sorted(self.crds.glob("*.yaml")):
                for doc in yaml.safe_load_all(path.read_text()):
                    if doc:
                        self.call(lambda store, d=doc: store.create(
                            store.types[("apiextensions.k8s.io", "customresourcedefinitions")], None, d))

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as err:  # noqa: BLE001 - reported to the starting thread
            self._error = err
            self._ready.set()
        finally:
            self.loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with ApiServer(node_gpus=self.node_gpus) as handler, kmock.Server(handler, port=self.port) as server:
            self.handler = handler
            self.url = f"http://{server.host}:{server.port}"
            self._ready.set()
            await self._stop.wait()

    def stop(self) -> None:
        if self.loop and self._stop and self._thread and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(15)
        if self._tmp:
            self._tmp.cleanup()

    @property
    def store(self) -> Store:
        assert self.handler is not None
        return self.handler.store

    def call(self, fn: Callable[[Store], T], timeout: float = 30) -> T:
        """Runs ``fn(store)`` on the server's loop (the store is not thread-safe) and returns its result."""
        assert self.loop is not None

        async def run() -> T:
            return fn(self.store)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)

    # --- playing the kubelet, in process (fast; the integration tests go through kubectl instead) ---

    def pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        def find(store: Store) -> list[dict[str, Any]]:
            items, _ = store.list(store.types[("", "pods")], namespace, f"batch.kubernetes.io/job-name={job}")
            return items

        return self.call(find)

    def run_job(self, namespace: str, job: str) -> list[str]:
        """Marks every pending pod of a Job running and ready; returns their names."""
        def run(store: Store) -> list[str]:
            pods_t = store.types[("", "pods")]
            items, _ = store.list(pods_t, namespace, f"batch.kubernetes.io/job-name={job}")
            started = []
            for pod in items:
                if pod["status"].get("phase") == "Pending":
                    store.patch(pods_t, namespace, pod["metadata"]["name"], "application/merge-patch+json",
                                {"status": kubelet.running(pod)}, subresource="status")
                    started.append(pod["metadata"]["name"])
            return started

        return self.call(run)

    def append_log(self, namespace: str, pod: str, text: str, container: str | None = None) -> None:
        """Appends to what a pod logged (served at pods/NAME/log): the kubelet's part, played by a test."""
        assert self.handler is not None
        handler = self.handler
        self.call(lambda _store: handler.append_log(namespace, pod, text, container))

    def finish_job(self, namespace: str, job: str, exit_code: int = 0,
                   message: str | dict[str, Any] | Callable[[dict[str, Any]], Any] = "") -> int:
        """Finishes every active pod of a Job; ``message`` may depend on the pod. Returns how many."""
        def finish(store: Store) -> int:
            pods_t = store.types[("", "pods")]
            items, _ = store.list(pods_t, namespace, f"batch.kubernetes.io/job-name={job}")
            done = 0
            for pod in items:
                if pod["status"].get("phase") not in ("Pending", "Running"):
                    continue
                text = message(pod) if callable(message) else message
                try:
                    store.patch(pods_t, namespace, pod["metadata"]["name"], "application/merge-patch+json",
                                {"status": kubelet.finished(pod, exit_code, text)}, subresource="status")
                    done += 1
                except ApiError:
                    pass
            return done

        return self.call(finish)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Serve the test API server in the foreground.")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--crds", default=str(Path(__file__).resolve().parents[2] / "crds"))
    parser.add_argument("--node-gpus", type=int, default=8)
    args = parser.parse_args()
    with TestApiServer(crds=args.crds, port=args.port, node_gpus=args.node_gpus) as api:
        print(f"serving {api.url}; KUBECONFIG={api.kubeconfig}; Ctrl-C stops", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
