"""The main job judged on time, memory and result together: a manifest's stages through `rlaif run`.

Runs each stage of the manifest (default: examples/quickstart-pipeline.yaml) with
``rlaif run FILE --only NAME --workdir W`` in plan order, in a fresh folder (the manifest's relative
output URIs land there), and prints per stage and in total:

- wall time;
- CPU time (user + system) of the stage's whole process tree: ``getrusage(RUSAGE_CHILDREN)`` of this
  process before and after the stage, which counts every descendant that was waited for (torchrun's
  ranks, vLLM's engine core);
- peak resident memory of the process tree: the sum of the RSS of every live process in the tree,
  sampled every ``--interval`` seconds (``ru_maxrss`` is the peak of ONE process, not of the tree,
  and misses a labeler whose engine runs in a child). Pages shared between processes (the CUDA/torch
  libraries mapped by each) count once per process, so the sum is an upper bound of the real use;
  the largest single process's peak is printed beside it, and the tree's peak of RSS less file-backed
  and shared pages ("anon": a model file mapped while loading counts in RSS but can be dropped);
- per step of a stage (each ``python -m rlaif_jobs.X`` module that ran in it, e.g. the policy
  trainer and then its evaluation, which runs in a process of its own): the tree's peak RSS while the
  step ran and the seconds it was seen;
- the stage's metrics from its status (labels: alignment, samePositionRate; reward model:
  evalAccuracy; policy: meanReward, kl, evaluation figures).

It also prints the load average (os.getloadavg) before and after: on a shared machine the times are
loaded figures. Every model-loading run on a shared machine goes under the model lock::

    flock /tmp/rlaif-model.lock .venv/bin/python bench/bench_quickstart.py
    .venv/bin/python bench/bench_quickstart.py MANIFEST --json out.json --keep runs-bench
    .venv/bin/python bench/bench_quickstart.py --seed 1 --keep runs-seed1   (the quickstart's seed 1)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("manifest", nargs="?", default=str(REPO / "examples/quickstart-pipeline.yaml"))
    p.add_argument("--keep", default=None, help="run in this folder and keep it (default: a temporary one)")
    p.add_argument("--stages", default=None, help="comma-separated stage names to run (default: all);"
                   " the others must have succeeded in --keep already")
    p.add_argument("--interval", type=float, default=0.2, help="seconds between memory samples")
    p.add_argument("--json", default=None, help="also write the results here as JSON")
    p.add_argument("--verbose", action="store_true", help="show the stages' console output")
    p.add_argument("--seed", type=int, default=None, help="run a copy of the manifest with this seed in every"
                   " stage's training spec (rl.seed, training.seed): the quickstart's other seeds")
    return p.parse_args(argv)


def stage_names(manifest: str) -> list[tuple[str, str]]:
    """(kind, name) of every stage of the manifest, in run order."""
    from rlaif_operator.api import load_resources
    from rlaif_operator.local.plan import expand, order

    return [(s.kind, s.metadata.name) for s in order(expand(load_resources(manifest)), {})]


class TreeSampler:
    """Samples the summed RSS of a process and all its descendants on a thread until stopped."""

    def __init__(self, pid: int, interval: float) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_tree = 0  # bytes
        self.peak_process = 0
        self.peak_tree_anon = 0  # RSS less file-backed/shared pages: memory that cannot be dropped
        self.processes_seen: set[int] = set()
        self.steps: dict[str, dict[str, float]] = {}  # module -> peak tree RSS while it ran, first/last seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = anon = 0
            running = set()
            for proc in procs:
                try:
                    mem = proc.memory_info()
                    running.add(_step_module(proc.cmdline()))
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                self.processes_seen.add(proc.pid)
                total += mem.rss
                anon += mem.rss - getattr(mem, "shared", 0)
                self.peak_process = max(self.peak_process, mem.rss)
            self.peak_tree = max(self.peak_tree, total)
            now = time.monotonic()
            for module in running - {None}:
                step = self.steps.setdefault(module, {"peakTreeRssBytes": 0, "first": now})
                step["peakTreeRssBytes"] = max(step["peakTreeRssBytes"], total)
                step["last"] = now
            self.peak_tree_anon = max(self.peak_tree_anon, anon)
            self._stop.wait(self.interval)


WRAPPERS = ("rlaif_operator.cli", "rlaif_jobs.launch", "torch.distributed.run")


def _step_module(cmdline: list[str]) -> str | None:
    """The workload module a process runs (``python -m rlaif_jobs.X``), or None (wrappers, engine cores)."""
    module = next((cmdline[i + 1] for i, a in enumerate(cmdline[:-1]) if a == "-m"), None)
    return module if module and module.startswith("rlaif_jobs.") and module not in WRAPPERS else None


def _kill_tree(pid: int) -> None:
    try:
        root = psutil.Process(pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(procs, timeout=30)


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(f"stopped by signal {signum}")


def _cpu_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_stage(manifest: Path, name: str, workdir: Path, cwd: Path, interval: float, verbose: bool) -> dict:
    """Runs one stage through `rlaif run --only`; returns its wall/CPU/memory figures and status metrics."""
    cmd = [sys.executable, "-m", "rlaif_operator.cli", "run", str(manifest), "--workdir", str(workdir),
           "--only", name]
    out_path = workdir / f"bench-{name}.out"
    cpu0, t0 = _cpu_children(), time.monotonic()
    with out_path.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=None if verbose else out, stderr=subprocess.STDOUT)
        try:
            with TreeSampler(proc.pid, interval) as sampler:
                code = proc.wait()
        finally:  # stopped (SIGTERM from `timeout`, Ctrl-C): take the stage's whole tree down with us
            if proc.poll() is None:
                _kill_tree(proc.pid)
    wall, cpu = time.monotonic() - t0, _cpu_children() - cpu0
    status_file = workdir / name / "status.json"
    status = json.loads(status_file.read_text()) if status_file.exists() else {}
    if code != 0 and not verbose:
        print(out_path.read_text()[-3000:], file=sys.stderr)
    return {"stage": name, "exitCode": code, "phase": status.get("phase"), "wallSeconds": wall,
            "cpuSeconds": cpu, "peakTreeRssBytes": sampler.peak_tree, "peakTreeAnonBytes": sampler.peak_tree_anon,
            "peakProcessRssBytes": sampler.peak_process, "processes": len(sampler.processes_seen),
            "steps": {m: {"peakTreeRssBytes": int(v["peakTreeRssBytes"]), "seenSeconds": v["last"] - v["first"]}
                      for m, v in sampler.steps.items()},
            "metrics": status.get("metrics", {})}


def _gb(n: int) -> str:
    return f"{n / 2**30:.2f}"


def show(rows: list[dict], load_before: tuple, load_after: tuple) -> None:
    print(f"\nload average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)},"
          f" after: {' '.join(f'{x:.2f}' for x in load_after)} on {os.cpu_count()} CPUs"
          + ("  [LOADED machine: times are not quiet-machine figures]" if load_before[0] > 0.5 else ""))
    print(f"{'stage':<28} {'phase':<10} {'wall s':>8} {'CPU s':>8} {'peak tree GiB':>14} {'anon GiB':>9}"
          f" {'peak proc GiB':>14}")
    for r in rows:
        print(f"{r['stage']:<28} {r['phase'] or '-':<10} {r['wallSeconds']:>8.1f} {r['cpuSeconds']:>8.1f}"
              f" {_gb(r['peakTreeRssBytes']):>14} {_gb(r['peakTreeAnonBytes']):>9}"
              f" {_gb(r['peakProcessRssBytes']):>14}")
    print(f"{'TOTAL':<28} {'':<10} {sum(r['wallSeconds'] for r in rows):>8.1f}"
          f" {sum(r['cpuSeconds'] for r in rows):>8.1f}"
          f" {_gb(max((r['peakTreeRssBytes'] for r in rows), default=0)):>14}"
          f" {_gb(max((r['peakTreeAnonBytes'] for r in rows), default=0)):>9}"
          f" {_gb(max((r['peakProcessRssBytes'] for r in rows), default=0)):>14}")
    print("(peak tree: summed RSS of the stage's processes, including file pages mapped from model files;"
          " anon: the same less file-backed and shared pages, i.e. memory the kernel cannot drop)")
    print("\nsteps (peak tree RSS while each workload process ran, seconds it was seen):")
    for r in rows:
        for module, st in r.get("steps", {}).items():  # in the order they started
            print(f"  {r['stage']:<26} {module:<26} {_gb(st['peakTreeRssBytes']):>6} GiB {st['seenSeconds']:>7.1f} s")
    print("\nresults:")
    for r in rows:
        shown = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in sorted(r["metrics"].items()) if isinstance(v, int | float))
        print(f"  {r['stage']}: {shown}")


def with_seed(manifest: Path, seed: int, folder: Path) -> Path:
    """A copy of ``manifest`` in ``folder`` whose stages train with ``seed`` (rl.seed of policies,
    training.seed of reward models; labeling has no seed): every other field stays as written."""
    import yaml

    docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    for doc in docs:
        spec = doc.get("spec", {})
        for stage in (spec, spec.get("rewardModel"), spec.get("policy")):
            if not isinstance(stage, dict):
                continue
            for key in ("rl", "training"):
                if isinstance(stage.get(key), dict):
                    stage[key]["seed"] = seed
    out = folder / f"{manifest.stem}-seed{seed}.yaml"
    out.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)  # `timeout`: print what was measured, stop the running stage
    base = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="bench-quickstart-"))
    base.mkdir(parents=True, exist_ok=True)
    manifest = Path(args.manifest).resolve()
    if args.seed is not None:
        manifest = with_seed(manifest, args.seed, base)
    stages = stage_names(str(manifest))
    wanted = args.stages.split(",") if args.stages else [n for _, n in stages]
    unknown = set(wanted) - {n for _, n in stages}
    if unknown:
        print(f"error: --stages {','.join(sorted(unknown))}: not in {manifest}", file=sys.stderr)
        return 2
    workdir = base / "work"
    workdir.mkdir(exist_ok=True)
    load_before = os.getloadavg()
    rows = []
    try:
        for _, name in stages:
            if name not in wanted:
                continue
            print(f"==> {name}", flush=True)
            row = run_stage(manifest, name, workdir, base, args.interval, args.verbose)
            rows.append(row)
            print(f"    {row['phase']} in {row['wallSeconds']:.0f}s, CPU {row['cpuSeconds']:.0f}s,"
                  f" peak tree RSS {_gb(row['peakTreeRssBytes'])} GiB", flush=True)
            if row["exitCode"] != 0:
                break
    finally:
        load_after = os.getloadavg()
        show(rows, load_before, load_after)
        if args.json:
            Path(args.json).write_text(json.dumps({"manifest": str(manifest), "loadBefore": load_before,
                                                   "loadAfter": load_after, "stages": rows}, indent=2) + "\n")
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0 if rows and all(r["exitCode"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
