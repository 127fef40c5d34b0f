"""Benchmark: N pipelines applied at once against the test API server, run by the real operator.

Two sets of figures, kept apart:

- **the operator's own**, from its own clock (``RLAIF_TRACE_FILE``: one line per write it sends, with
  the watch event that caused it, both timed by the operator; see operator/rlaif_operator/reaction.py):
  hand-off = the upstream Job's completion event received -> the downstream Job's create sent, and
  -> the upstream stage's status patch sent; its CPU per pipeline (/proc of its process) and its peak
  memory (VmHWM) per pipeline. None of it includes the API server's or the network's time.
- **end to end**, timed inside the test API server at the two writes (upstream Job Complete stored ->
  downstream Job stored): what a user sees on a cluster whose API server is as busy as this one. The
  test API server runs on its own thread here; its CPU is read from that thread alone, the driver's
  (this script's main thread) apart, so what the cluster costs is not charged to the operator; its
  request log gives that CPU by request kind (what each of the operator's calls costs the server).

Targets: operator-side hand-off p99 < 1 s, end-to-end p50 < 300 ms at 100 pipelines, operator peak
memory < 250 MB (``--strict`` exits 1 if one is missed). The load average is printed: on a shared 2-core
machine the latency follows the CPU the other tenants leave.

Completions: by default every stage's Jobs finish at once, the worst burst (a reconcile's CPU times a
thousand, queued). ``--completion-rate R`` finishes them R per second instead, as a real cluster writes
them: kube-controller-manager's Job controller updates Job status through a client limited to
``--kube-api-qps`` (20 by default, a few hundred on large clusters), so a thousand Jobs that end together
are reported over seconds, not in one instant.

Running stages: the label stage's pods run for ``--run-seconds`` (ready, logging a progress line every
5 s, as the workloads do), so the operator reads their progress every ``--progress-interval`` seconds
(0: live progress off, the baseline); the bench prints the API calls the operator made per running stage
per minute in that window, and how many status patches of them.

    .venv/bin/python bench/bench_operator.py [--pipelines 100] [--run-seconds 65] [--progress-interval 30]
        [--completion-rate 0] [--settle 120]
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

sys.path.insert(0, str(REPO / "bench"))

from handoffs import Edge, operator_handoffs, read_trace  # noqa: E402
from quiet import add_settle_option, settle_and_announce  # noqa: E402
from testapi import TestApiServer  # noqa: E402

STAGES = [("label", "label-label"), ("reward", "reward-reward"), ("policy", "policy-policy")]
REPORTS = {
    "label-label": {"outputs": {"labels": "/data/labels.jsonl"}, "metrics": {"labeled": 48, "alignment": 0.8}},
    "reward-reward": {"outputs": {"model": "/data/rm"}, "metrics": {"evalAccuracy": 0.7}},
    "policy-policy": {"outputs": {"model": "/data/policy"}, "metrics": {"winRate": 0.6}},
}
TARGET_OPERATOR_P99, TARGET_P50_AT_100, TARGET_MB = 1.0, 0.3, 250.0
STAGE_KINDS = {"label": "PreferenceLabelJob", "reward": "RewardModelRun", "policy": "PolicyRLRun"}


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


def memory_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's memory figure from /proc/PID/status, in MB: VmRSS (resident now) or VmHWM (its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def request_breakdown(log: list[str]) -> dict[str, tuple[int, float]]:
    """API requests by verb and resource ("PATCH preferencelabeljobs/status", "GET pods/log"), from the test
    API server's request log ("METHOD /path?query -> code N.Nms"): (count, the server thread's CPU seconds
    handling them). A watch's CPU is left out (0): its handler spans the whole stream."""
    counts: dict[str, tuple[int, float]] = {}
    for line in log:
        method, path = line.split()[:2]
        parts = path.split("?")[0].strip("/").split("/")
        if "namespaces" in parts and parts.index("namespaces") + 2 < len(parts):
            parts = parts[parts.index("namespaces") + 2:]
        else:
            parts = parts[2:] if parts[0] == "api" else parts[3:]
        what = (parts[0] + ("/" + parts[2] if len(parts) > 2 else "")) if parts else "discovery"
        cpu = float(line.rsplit(" ", 1)[1].removesuffix("ms")) / 1000 if line.endswith("ms") else 0.0
        if "watch=" in path:
            what, cpu = what + " (watch)", 0.0
        count, seconds = counts.get(f"{method} {what}", (0, 0.0))
        counts[f"{method} {what}"] = (count + 1, seconds + cpu)
    return counts


def cpu_seconds(pid: int, tid: int | None = None) -> float:
    """CPU seconds (user + system) of a process, or of one of its threads."""
    path = f"/proc/{pid}/task/{tid}/stat" if tid else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
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
    parser.add_argument("--completion-rate", type=float, default=0.0,
                        help="Jobs finished per second in each stage (0: all at once, the worst burst)")
    parser.add_argument("--progress-interval", type=float, default=30.0,
                        help="the operator's progress_interval_seconds (0: live progress off)")
    add_settle_option(parser, default=120)
    args = parser.parse_args()
    settle_and_announce(args.settle, "bench_operator")
    n, ns = args.pipelines, "bench"

    with TestApiServer(crds=REPO / "crds", node_gpus=8) as api:
        created: dict[str, float] = {}
        completed: dict[str, float] = {}
        running: dict[str, float] = {}

        phases: dict[tuple[str, str], str | None] = {}  # (kind, name) -> status.phase, kept by the hook

        def hook(rt: Any, etype: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
            name = obj["metadata"]["name"]
            if rt.group == "rlaif.dev":
                phases[(rt.kind, name)] = (obj.get("status") or {}).get("phase")
                return
            if rt.kind != "Job":
                return
            if etype == "ADDED":
                created[name] = time.monotonic()
            elif any(c.get("type") == "Complete" and c.get("status") == "True"
                     for c in (obj.get("status") or {}).get("conditions", [])):
                completed.setdefault(name, time.monotonic())

        api.call(lambda store: store.hooks.append(hook))
        api.handler.log = []
        with tempfile.NamedTemporaryFile(prefix="bench-operator-trace-", suffix=".jsonl", delete=False) as kept:
            trace = kept.name  # kept after the run, as the operator's log is
        metrics_port = free_port()
        env = {**os.environ, "KUBECONFIG": api.kubeconfig, "RLAIF_METRICS_PORT": str(metrics_port),
               "RLAIF_LIVENESS_ENDPOINT": "",
               "RLAIF_LOG_LEVEL": "WARNING", "KUBECACHEDIR": str(api.workdir / "cache"),
               "RLAIF_PROGRESS_INTERVAL_SECONDS": str(args.progress_interval),
               "RLAIF_TRACE_FILE": trace}
        log = tempfile.NamedTemporaryFile(prefix="bench-operator-", suffix=".log", delete=False)  # noqa: SIM115
        pyflags = os.environ.get("BENCH_PYFLAGS", "").split()  # e.g. "-m cProfile -o op.prof"
        operator = subprocess.Popen([sys.executable, *pyflags, "-m", "kopf", "run", "-m", "rlaif_operator.handlers",
                                     "--standalone", "--all-namespaces", "--quiet"],
                                    env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            subprocess.run(["kubectl", "create", "namespace", ns], env=env, check=True, capture_output=True)
            time.sleep(2)  # let the operator start its watches
            manifests = "".join(f"---\n{json.dumps(pipeline(f'p{i:03d}'))}\n" for i in range(n))
            load_before = os.getloadavg()[0]
            idle_mb = memory_mb(operator.pid)  # started, watching, nothing to do yet
            rss_at: dict[str, float] = {}
            started = time.monotonic()
            server_tid = api._thread.native_id if api._thread else None
            cpu_start = (cpu_seconds(operator.pid), cpu_seconds(os.getpid(), server_tid), time.process_time())
            subprocess.run(["kubectl", "apply", "-n", ns, "-f", "-"], input=manifests, text=True, env=env,
                           check=True, capture_output=True)
            applied = time.monotonic()
            for stage, suffix in STAGES:
                jobs = [f"p{i:03d}-{suffix}" for i in range(n)]
                wait(lambda js=jobs: all(j in created for j in js), 120, f"{n} {suffix} Jobs")
                # The stage "runs" until the operator has seen every pod start (a real stage runs for
                # hours, so each burst of completions meets an idle operator); then all finish at once.
                wait(lambda st=stage: all(phases.get((STAGE_KINDS[st], f"p{i:03d}-{st}")) == "Running"
                                          for i in range(n)), 120, f"{stage} Running")
                quiesce(api)  # ... and the operator has caught up (its Events, the pipelines' status)
                if stage == "label" and args.run_seconds > 0:
                    running = run_stage(api, ns, jobs, args.run_seconds)
                rss_at[f"{stage} running"] = memory_mb(operator.pid)
                report = REPORTS[suffix]
                began = time.monotonic()
                for i, job in enumerate(jobs):  # at once (a burst of updates), or paced as the Job controller
                    if args.completion_rate > 0:
                        time.sleep(max(0.0, began + i / args.completion_rate - time.monotonic()))
                    api.finish_job(ns, job, 0, report)
            last = [f"p{i:03d}-policy-policy" for i in range(n)]
            wait(lambda: all(j in completed for j in last), 120, "the last stage")
            wait(lambda: all(phases.get(("RLAIFPipeline", f"p{i:03d}")) == "Succeeded" for i in range(n)), 120,
                 "pipelines Succeeded")
            finished = time.monotonic()
            rss_at["all Succeeded"] = memory_mb(operator.pid)
            memory = memory_mb(operator.pid, "VmHWM")
            cpu_operator = cpu_seconds(operator.pid) - cpu_start[0]
            cpu_server = cpu_seconds(os.getpid(), server_tid) - cpu_start[1]
            cpu_driver = time.process_time() - cpu_start[2] - cpu_server
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as r:
                scraped = r.read().decode()
        finally:
            operator.terminate()
            operator.wait(20)
        requests = len(api.handler.log or [])
        breakdown = request_breakdown(api.handler.log or [])
        records = read_trace(trace)
        reasons: dict[str, int] = {}
        for event in api.call(lambda store: store.list(store.types[("", "events")], ns)[0]):
            what = f"{event['involvedObject']['kind']} {event['reason']}"
            reasons[what] = reasons.get(what, 0) + 1

    ms = 1000.0
    pace = f"{args.completion_rate:g} per second" if args.completion_rate > 0 else "all at once"
    print(f"pipelines: {n} applied at once with one kubectl apply ({applied - started:.2f} s);"
          f" all Succeeded {finished - started:.1f} s after apply; each stage's Jobs finished {pace}")
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs (before: {load_before:.2f});"
          f" the operator's log: {log.name}, its trace: {trace}")

    edges = [Edge(f"Job/{ns}/p{i:03d}-{up}", f"{STAGE_KINDS[up.split('-')[0]]}/{ns}/p{i:03d}-{up.split('-')[0]}",
                  f"Job/{ns}/p{i:03d}-{down}") for (_, up), (_, down) in zip(STAGES, STAGES[1:], strict=False)
             for i in range(n)]
    ours = operator_handoffs(records, edges)
    own = [h.create_seconds for h in ours]
    status = [h.status_seconds for h in ours if h.status_seconds is not None]
    by_upstream = sum(h.by_upstream_job for h in ours)
    print(f"== the operator's own figures (its clock: watch event received -> write sent; {len(ours)} of"
          f" {len(edges)} hand-offs traced, {by_upstream} caused by the upstream Job's event)")
    print(f"hand-off, event -> downstream Job create sent: p50 {statistics.median(own) * ms:.0f} ms,"
          f" p99 {percentile(own, 0.99) * ms:.0f} ms, max {max(own) * ms:.0f} ms"
          f"  (target p99 < {TARGET_OPERATOR_P99 * ms:.0f} ms)")
    if status:
        print(f"hand-off, event -> upstream status patch sent: p50 {statistics.median(status) * ms:.0f} ms,"
              f" p99 {percentile(status, 0.99) * ms:.0f} ms")
    print(f"CPU: {cpu_operator:.1f} s, {ms * cpu_operator / n:.0f} ms per pipeline")
    objects = 7 * n  # a pipeline, its 3 stages and their 3 Jobs
    print("resident memory (VmRSS) when " + ", ".join(f"{k}: {v:.0f} MB" for k, v in rss_at.items()))
    print(f"peak memory (VmHWM): {memory:.0f} MB (target < {TARGET_MB:.0f} MB); {idle_mb:.0f} MB idle before the"
          f" apply, so {1024 * (memory - idle_mb) / objects:.1f} KB per watched object ({objects} objects)")

    handoffs, by_edge = [], {}
    for (_, up), (_, down) in zip(STAGES, STAGES[1:], strict=False):
        edge = [created[f"p{i:03d}-{down}"] - completed[f"p{i:03d}-{up}"] for i in range(n)]
        by_edge[f"{up.split('-')[0]}->{down.split('-')[0]}"] = edge
        handoffs += edge
    p50, p99 = statistics.median(handoffs), percentile(handoffs, 0.99)
    print("== end to end (the test API server's clock: upstream Job Complete stored -> downstream Job stored)")
    print(f"hand-off: p50 {p50 * ms:.0f} ms, p99 {p99 * ms:.0f} ms, max {max(handoffs) * ms:.0f} ms"
          + (f"  (target p50 < {TARGET_P50_AT_100 * ms:.0f} ms at 100 pipelines)" if n == 100 else ""))
    for edge, values in by_edge.items():
        print(f"  {edge}: p50 {statistics.median(values) * ms:.0f} ms, p99 {percentile(values, 0.99) * ms:.0f} ms")
    print(f"the test API server's thread: {cpu_server:.1f} s CPU ({ms * cpu_server / n:.0f} ms per pipeline);"
          f" the driver (this script, kubelet and user): {cpu_driver:.1f} s; {requests} API requests"
          f" ({requests / n:.0f} per pipeline)")
    events: dict[str, float] = {}
    for line in scraped.splitlines():
        if line.startswith("rlaif_operator_watch_events_total{"):
            kind, outcome = (line.split(f'{label}="')[1].split('"')[0] for label in ("kind", "outcome"))
            events[f"{kind} {outcome}"] = events.get(f"{kind} {outcome}", 0) + float(line.rsplit(" ", 1)[1])
    if args.run_seconds > 0:
        print(f"running stages: {n} label stages ran {args.run_seconds:.0f} s, progress read every"
              f" {args.progress_interval:g} s: {running['requests']:.2f} operator API calls per running stage"
              f" per minute ({running['logs']:.2f} log reads, {running['patches']:.2f} status patches)")
    print("API requests per pipeline (the server's CPU for them, ms per pipeline): " + ", ".join(
        f"{k} {count / n:.2f} ({seconds / n * ms:.1f} ms)" for k, (count, seconds) in sorted(
            breakdown.items(), key=lambda kv: -kv[1][0]) if count / n >= 0.05))
    print("Events posted per pipeline: " + ", ".join(f"{k} {v / n:.2f}" for k, v in sorted(reasons.items())))
    for outcome in ("echo", "reconciled", "deleted"):
        mine = {k.rsplit(" ", 1)[0]: v / n for k, v in sorted(events.items()) if k.endswith(" " + outcome)}
        print(f"operator watch events per pipeline, {outcome}: {sum(mine.values()):.1f} ("
              + ", ".join(f"{kind} {v:.1f}" for kind, v in mine.items()) + ")")
    ok = percentile(own, 0.99) < TARGET_OPERATOR_P99 and memory < TARGET_MB and (n != 100 or p50 < TARGET_P50_AT_100)
    print("targets:", "met" if ok else "MISSED")
    return 0 if ok or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
