"""Benchmark: the CPU one API call costs the operator's client, against the official client's typed calls.

Every write and read of the operator goes through ``rlaif_operator.kube.Kube``: dicts in and out, sent on
the official client's connection pool but without its typed models and serialisation layers. This
measures, against the test API server (``tests/testapi``, on its own thread of this process), the CPU of
the calling thread alone (``time.thread_time``: the server's work is left out) per call, for the calls a
hand-off makes:

- GET one custom resource; PATCH its status (a merge patch); POST a ConfigMap; LIST pods by label;
  POST an Event (neither side decodes the answer: the official client with ``_preload_content=False``,
  its body read and its connection given back);
- the same call through ``kubernetes.client`` (``CustomObjectsApi``, ``CoreV1Api``), the baseline.

The two alternate in blocks of ``--block`` calls, so that the machine's drift shows in both. Printed:
milliseconds of client CPU per call for each, and the ratio official / ours. The figure bounds how
fast any hand-off can be: a hand-off makes at least seven calls (docs/performance.md, "the floor").

    .venv/bin/python bench/bench_api_client.py [--calls 300] [--block 50] [--settle 120]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "bench"))

from bench_operator import pipeline  # noqa: E402
from quiet import add_settle_option, settle_and_announce  # noqa: E402
from testapi import TestApiServer  # noqa: E402

NS, GROUP, VERSION, PLURAL = "client-bench", "rlaif.dev", "v1alpha1", "rlaifpipelines"


def drain(response: Any) -> None:
    """Reads an undecoded answer and gives its connection back to the pool, as ``Kube.request`` does with
    ``answer=False`` (a connection left unread would make the next call open a new one)."""
    response.data  # noqa: B018 - reading it is the point
    response.release_conn()


def cpu_seconds(call: Callable[[int], Any], first: int, n: int) -> float:
    """Thread CPU seconds of ``call(first)`` ... ``call(first + n - 1)``."""
    began = time.thread_time()
    for i in range(first, first + n):
        call(i)
    return time.thread_time() - began


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300, help="calls of each kind on each side (default 300)")
    parser.add_argument("--block", type=int, default=50, help="calls in a row before the other side's turn")
    add_settle_option(parser, default=120)
    args = parser.parse_args(argv)
    if args.calls < 1 or args.block < 1:
        parser.error("--calls and --block must be at least 1")
    settle_and_announce(args.settle, "bench_api_client")

    with TestApiServer(crds=REPO / "crds", node_gpus=8) as api:
        from kubernetes import client, config

        from rlaif_operator.kube import Kube

        def api_client() -> Any:
            """A client of the test server with its own connection pool: from its kubeconfig file, not from
            KUBECONFIG (the kubernetes package reads that once, when first imported) nor into the
            process-wide default configuration (this bench also runs inside the tests)."""
            configuration = client.Configuration()
            config.load_kube_config(config_file=api.kubeconfig, client_configuration=configuration)
            return client.ApiClient(configuration)

        ours = Kube(api_client=api_client())
        official = api_client()
        custom, core = client.CustomObjectsApi(official), client.CoreV1Api(official)
        ours.request("POST", "/api/v1/namespaces",
                     body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        manifest = pipeline("p0")
        manifest["metadata"]["namespace"] = NS
        resource, _ = ours.create(manifest)

        def configmap(i: int, who: str) -> dict[str, Any]:
            return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{who}-{i}", "namespace": NS},
                    "data": {"config.json": "x" * 2000}}

        def event(i: int, who: str) -> dict[str, Any]:
            meta = resource["metadata"]
            return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"{who}-{i}", "namespace": NS},
                    "involvedObject": {"apiVersion": resource["apiVersion"], "kind": resource["kind"],
                                       "name": meta["name"], "namespace": NS, "uid": meta["uid"]},
                    "reason": "Bench", "message": "a message", "type": "Normal"}

        kinds: list[tuple[str, Callable[[int], Any], Callable[[int], Any]]] = [
            ("GET a custom resource",
             lambda i: ours.get(f"{GROUP}/{VERSION}", "RLAIFPipeline", NS, "p0"),
             lambda i: custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "p0")),
            ("PATCH its status",
             lambda i: ours.patch_status(f"{GROUP}/{VERSION}", "RLAIFPipeline", NS, "p0", {"message": f"m{i}"}),
             lambda i: custom.patch_namespaced_custom_object_status(
                 GROUP, VERSION, NS, PLURAL, "p0", {"status": {"message": f"m{i}"}},
                 _content_type="application/merge-patch+json")),
            ("POST a ConfigMap",
             lambda i: ours.create(configmap(i, "ours")),
             lambda i: core.create_namespaced_config_map(NS, configmap(i, "official"))),
            ("LIST pods by label",
             lambda i: ours.list("v1", "Pod", NS, "batch.kubernetes.io/job-name=none"),
             lambda i: core.list_namespaced_pod(NS, label_selector="batch.kubernetes.io/job-name=none")),
            ("POST an Event",
             lambda i: ours.request("POST", f"/api/v1/namespaces/{NS}/events", body=event(i, "ours"), answer=False),
             lambda i: drain(core.create_namespaced_event(NS, event(i, "official"), _preload_content=False))),
        ]
        print(f"client CPU per call (the calling thread's), {args.calls} calls of each kind on each side, in blocks of"
              f" {args.block}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
        for what, mine, theirs in kinds:
            mine(0), theirs(0)  # first calls (connections, lazy imports) left out
            spent = {"ours": 0.0, "official": 0.0}
            for first in range(1, args.calls + 1, args.block):  # a block of each side in turn
                n = min(args.block, args.calls + 1 - first)
                spent["ours"] += cpu_seconds(mine, first, n)
                spent["official"] += cpu_seconds(theirs, first, n)
            ms_ours, ms_official = (1000 * spent[s] / args.calls for s in ("ours", "official"))
            print(f"{what:24s} ours {ms_ours:.3f} ms, official client {ms_official:.3f} ms:"
                  f" {ms_official / ms_ours:.2f}x")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
