"""Benchmark: 100 pipelines applied at once against the test API server, run by the real operator.

Measures the hand-off latency (upstream Job succeeded -> downstream Job created, timed inside the API
server at the two writes) p50/p99 over every hand-off, and the operator process's peak memory (VmHWM).
Targets: p99 < 2 s, peak memory < 200 MB. Prints the figures (and the CPU they cost, with the load
average: on a shared 2-core machine the latency follows the CPU the other tenants leave); with
``--strict`` exits 1 if a target is missed.

Running stages: the label stage's pods run for ``--run-seconds`` (ready, logging a progress line every
5 s, as the workloads do), so the operator reads their progress every ``--progress-interval`` seconds
(0: live progress off, the baseline); the bench prints the API calls the operator made per running stage
per minute in that window, and how many status patches of them.

    .venv/bin/python bench/bench_operator.py [--pipelines 100] [--run-seconds 65] [--progress-interval 30]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from testapi import TestApiServer  # noqa: E402

STAGES = [("label", "label-label"), ("reward", "reward-reward"), ("policy", "policy-policy")]
REPORTS = {
    "label-label": {"outputs": {"labels": "/data/labels.jsonl"}, "metrics": {"labeled": 48, "alignment": 0.8}},
    "reward-reward": {"outputs": {"model": "/data/rm"}, "metrics": {"evalAccuracy": 0.7}},
    "policy-policy": {"outputs": {"model": "/data/policy"}, "metrics": {"winRate": 0.6}},
}
TARGET_P99, TARGET_MB = 2.0, 200.0


STORAGE = {"storage": {"pvcName": "rlaif-data"}}  # outputs on a claim mounted at /data (the operator insists)


def pipeline(name: str) -> dict[str, Any]:
    return {"apiVersion": "rlaif.dev/v1alpha1", "kind": "RLAIFPipeline", "metadata": {"name": name}, "spec": {
        "labeling": {"labeler": {"model": {"uri": "builtin://qwen2.5-coder-1.5b-instruct"}},
                     "dataset": {"uri": "builtin://datasets/checkable-pairs"}, "output": {"uri": f"/data/{name}/l"},
                     "resources": {"gpusPerNode": 1}, "runtime": STORAGE},
        "rewardModel": {"baseModel": {"uri": "builtin://smollm2-135m-instruct"}, "output": {"uri": f"/data/{name}/r"},
                        "resources": {"gpusPerNode": 1}, "runtime": STORAGE},
        "policy": {"policy": {"uri": "builtin://smollm2-135m-instruct"},
                   "prompts": {"uri": "builtin://datasets/checkable-prompts"}, "output": {"uri": f"/data/{name}/p"},
                   "resources": {"gpusPerNode": 1}, "runtime": STORAGE},
    }}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quiesce(api: TestApiServer, quiet: float = 1.0, limit: float = 60.0) -> None:
    """Waits until nothing has been written to the API for ``quiet`` seconds (at most ``limit``)."""
    deadline, last, since = time.monotonic() + limit, -1, time.monotonic()
    while time.monotonic() < deadline:
        rv = api.call(lambda store: store.rv)
        if rv != last:
            last, since = rv, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        time.sleep(0.1)


def wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def run_stage(api: TestApiServer, ns: str, jobs: list[str], run_seconds: float) -> dict[str, float]:
    """Runs the Jobs' pods for ``run_seconds``, each logging a progress line every 5 s; returns the API
    requests the operator made meanwhile (every HTTP request then is the operator's: the driver works
    in process) and the status patches among them."""
    pods = {job: api.run_job(ns, job) for job in jobs}
    log = api.handler.log
    assert log is not None
    began, start = len(log), time.monotonic()
    step = 0
    while time.monotonic() - start < run_seconds:
        step += 1
        line = json.dumps({"t": time.time(), "phase": "labeling", "done": step, "total": 100, "unit": "pairs",
                           "rate": 0.2})
        for names in pods.values():
            for pod in names:
                api.append_log(ns, pod, f"INFO batch {step}\nRLAIF_PROGRESS {line}\n")
        time.sleep(max(0.0, start + 5 * step - time.monotonic()))
    paths = [(r.split()[0], r.split()[1].split("?")[0]) for r in log[began:]]
    per_minute = len(jobs) * (time.monotonic() - start) / 60
    return {"requests": len(paths) / per_minute,
            "patches": sum(m == "PATCH" and p.endswith("/status") for m, p in paths) / per_minute,
            "logs": sum(p.endswith("/log") for _, p in paths) / per_minute}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipelines", type=int, default=100)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--run-seconds", type=float, default=65.0,
                        help="how long the label stage's pods run, logging progress (0: finish at once)")
    parser.add_argument("--progress-interval", type=float, default=30.0,
                        help="the operator's progress_interval_seconds (0: live progress off)")
    args = parser.parse_args()
    n, ns = args.pipelines, "bench"

    with TestApiServer(crds=REPO / "crds", node_gpus=8) as api:
        created: dict[str, float] = {}
        completed: dict[str, float] = {}
        running: dict[str, float] = {}

        def hook(rt: Any, etype: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
            if rt.kind != "Job":
                return
            name = obj["metadata"]["name"]
            if etype == "ADDED":
                created[name] = time.monotonic()
            elif any(c.get("type") == "Complete" and c.get("status") == "True"
                     for c in (obj.get("status") or {}).get("conditions", [])):
                completed.setdefault(name, time.monotonic())

        api.call(lambda store: store.hooks.append(hook))
        api.handler.log = []
        metrics_port = free_port()
        env = {**os.environ, "KUBECONFIG": api.kubeconfig, "RLAIF_METRICS_PORT": str(metrics_port),
               "RLAIF_LIVENESS_ENDPOINT": "",
               "RLAIF_LOG_LEVEL": "WARNING", "KUBECACHEDIR": str(api.workdir / "cache"),
               "RLAIF_PROGRESS_INTERVAL_SECONDS": str(args.progress_interval)}
        log = tempfile.NamedTemporaryFile(prefix="bench-operator-", suffix=".log", delete=False)  # noqa: SIM115
        pyflags = os.environ.get("BENCH_PYFLAGS", "").split()  # e.g. "-m cProfile -o op.prof"
        operator = subprocess.Popen([sys.executable, *pyflags, "-m", "kopf", "run", "-m", "rlaif_operator.handlers",
                                     "--standalone", "--all-namespaces", "--quiet"],
                                    env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            subprocess.run(["kubectl", "create", "namespace", ns], env=env, check=True, capture_output=True)
            time.sleep(2)  # let the operator start its watches
            manifests = "".join(f"---\n{json.dumps(pipeline(f'p{i:03d}'))}\n" for i in range(n))
            started = time.monotonic()
            cpu_start = (cpu_seconds(operator.pid), time.process_time())
            subprocess.run(["kubectl", "apply", "-n", ns, "-f", "-"], input=manifests, text=True, env=env,
                           check=True, capture_output=True)
            applied = time.monotonic()
            plurals = {"label": "preferencelabeljobs", "reward": "rewardmodelruns", "policy": "policyrlruns"}
            for stage, suffix in STAGES:
                jobs = [f"p{i:03d}-{suffix}" for i in range(n)]
                wait(lambda js=jobs: all(j in created for j in js), 120, f"{n} {suffix} Jobs")
                # The stage "runs" until the operator has seen every pod start (a real stage runs for
                # hours, so each burst of completions meets an idle operator); then all finish at once.
                wait(lambda st=stage: api.call(lambda store: all(
                    (store.find(store.types[("rlaif.dev", plurals[st])], ns, f"p{i:03d}-{st}") or {}).get(
                        "status", {}).get("phase") == "Running" for i in range(n))), 120, f"{stage} Running")
                quiesce(api)  # ... and the operator has caught up (its Events, the pipelines' status)
                if stage == "label" and args.run_seconds > 0:
                    running = run_stage(api, ns, jobs, args.run_seconds)
                report = REPORTS[suffix]
                for job in jobs:  # finish them all at once, as a burst of kubelet updates
                    api.finish_job(ns, job, 0, report)
            last = [f"p{i:03d}-policy-policy" for i in range(n)]
            wait(lambda: all(j in completed for j in last), 120, "the last stage")
            wait(lambda: api.call(lambda store: all(
                (store.find(store.types[("rlaif.dev", "rlaifpipelines")], ns, f"p{i:03d}") or {}).get(
                    "status", {}).get("phase") == "Succeeded" for i in range(n))), 120, "pipelines Succeeded")
            finished = time.monotonic()
            memory = peak_rss_mb(operator.pid)
            cpu_operator = cpu_seconds(operator.pid) - cpu_start[0]
            cpu_server = time.process_time() - cpu_start[1]
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
                scraped = r.read().decode()
        finally:
            operator.terminate()
            operator.wait(20)
        requests = len(api.handler.log or [])

    handoffs, by_edge = [], {}
    for (_, up), (_, down) in zip(STAGES, STAGES[1:], strict=False):
        edge = [created[f"p{i:03d}-{down}"] - completed[f"p{i:03d}-{up}"] for i in range(n)]
        by_edge[f"{up.split('-')[0]}->{down.split('-')[0]}"] = edge
        handoffs += edge
    p50, p99 = statistics.median(handoffs), percentile(handoffs, 0.99)
    print(f"pipelines: {n} applied at once with one kubectl apply ({applied - started:.2f} s)")
    print(f"hand-offs: {len(handoffs)} (upstream Job Complete -> downstream Job created)")
    print(f"hand-off latency: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max {max(handoffs) * 1000:.0f} ms"
          f"  (target p99 < {TARGET_P99:.0f} s)")
    for edge, values in by_edge.items():
        print(f"  {edge}: p50 {statistics.median(values) * 1000:.0f} ms, p99 {percentile(values, 0.99) * 1000:.0f} ms")
    print(f"operator peak memory (VmHWM): {memory:.0f} MB  (target < {TARGET_MB:.0f} MB)")
    print(f"all {n} pipelines Succeeded {finished - started:.1f} s after apply;"
          f" {requests} API requests ({requests / n:.0f} per pipeline, kubelet and driver included)")
    print(f"CPU: operator {cpu_operator:.1f} s ({1000 * cpu_operator / n:.0f} ms per pipeline), test API server"
          f" and driver {cpu_server:.1f} s; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    events: dict[str, float] = {}
    for line in scraped.splitlines():
        if line.startswith("rlaif_operator_watch_events_total{"):
            outcome = line.split('outcome="')[1].split('"')[0]
            events[outcome] = events.get(outcome, 0) + float(line.rsplit(" ", 1)[1])
    if args.run_seconds > 0:
        print(f"running stages: {n} label stages ran {args.run_seconds:.0f} s, progress read every"
              f" {args.progress_interval:g} s: {running['requests']:.2f} operator API calls per running stage"
              f" per minute ({running['logs']:.2f} log reads, {running['patches']:.2f} status patches)")
    print("operator watch events per pipeline: " + ", ".join(f"{k} {v / n:.1f}" for k, v in sorted(events.items())))
    ok = p99 < TARGET_P99 and memory < TARGET_MB
    print("targets:", "met" if ok else "MISSED")
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
