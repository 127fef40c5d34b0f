"""Runs a manifest's stages as processes on this machine: the same configs and entrypoints as pods.

For each stage in plan order: write the workload config to ``<workdir>/<name>/config.json`` (the same
JSON the operator puts in the stage's ConfigMap), run ``python -m rlaif_jobs.<stage>`` (trainers under
torchrun) with its output in ``<workdir>/<name>/log.txt`` while the console shows one live progress line
(``console.watch``; ``verbose`` also echoes the log), then read the stage's
``summary.json`` and record a Status (the CR's own status model) in ``<workdir>/<name>/status.json``.
A stage that already succeeded with the same config is skipped, so a re-run resumes the chain.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rlaif_jobs.summaries import EXIT_CONFIG_ERROR, read_summary
from rlaif_operator.api import ManifestError, load_resources
from rlaif_operator.api.common import Condition, Status
from rlaif_operator.api.conditions import Reason
from rlaif_operator.api.kinds import PreferenceLabelJob, StageResource
from rlaif_operator.builders.workload import MissingInputError, upstream_ref, workload_config
from rlaif_operator.local.console import log_tail, watch
from rlaif_operator.local.plan import PlanError, expand, order
from rlaif_operator.status import evaluation_conditions, kstatus_conditions

TRAINERS = ("RewardModelRun", "PolicyRLRun")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _status_path(workdir: Path, name: str) -> Path:
    return workdir / name / "status.json"


def load_status(workdir: Path, name: str) -> Status | None:
    path = _status_path(workdir, name)
    return Status.model_validate_json(path.read_text()) if path.exists() else None


def _save_status(workdir: Path, name: str, status: Status) -> None:
    path = _status_path(workdir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status.to_wire(), indent=2) + "\n")
    os.replace(tmp, path)


def _done_stages(workdir: Path) -> dict[str, str]:
    """Stages that succeeded in earlier runs of this workdir: name -> kind."""
    done = {}
    for path in workdir.glob("*/status.json"):
        status = Status.model_validate_json(path.read_text())
        resource_file = path.parent / "resource.json"
        meta = json.loads(resource_file.read_text()) if resource_file.exists() else {}
        if status.phase == "Succeeded" and meta.get("kind"):
            done[path.parent.name] = meta["kind"]
    return done


def commands(stage: StageResource, config_path: Path, nproc: int) -> list[list[str]]:
    """The process(es) that run one stage, in order (sharded labeling: each shard, then the merge)."""
    module = str(stage.MODULE)
    cfg = ["--config", str(config_path)]
    if stage.kind in TRAINERS:
        # rlaif_jobs.launch is torchrun that exits 3 when a worker did (a config error: reason ConfigError),
        # then the stage's follow-up in a fresh process (the policy's evaluation)
        return [[sys.executable, "-m", "rlaif_jobs.launch", "--standalone", f"--nproc_per_node={nproc}",
                 "-m", module, *cfg]]
    assert isinstance(stage, PreferenceLabelJob)
    shards = stage.spec.num_shards
    if shards == 1:
        return [[sys.executable, "-m", module, *cfg]]
    return [[sys.executable, "-m", module, *cfg, "--shard-index", str(i)] for i in range(shards)] + [
        [sys.executable, "-m", module, *cfg, "--merge"]]


def run_stage(stage: StageResource, workdir: Path, upstream_uri: str | None, force: bool, nproc: int,
              verbose: bool = False) -> Status:
    """Runs one stage (or skips it when it already succeeded with this config); returns its Status."""
    name = stage.metadata.name
    folder = workdir / name
    folder.mkdir(parents=True, exist_ok=True)
    config = workload_config(stage, upstream_uri).to_wire()
    config_text = json.dumps(config, indent=2, sort_keys=True) + "\n"
    digest = hashlib.sha256(config_text.encode()).hexdigest()[:16]
    previous = load_status(workdir, name)
    stamp = folder / "succeeded-config.sha256"  # which config the recorded success belongs to
    if (not force and previous and previous.phase == "Succeeded"
            and stamp.exists() and stamp.read_text().strip() == digest):
        print(f"==> {stage.kind}/{name}: already succeeded with this config, skipping (--force re-runs)")
        return previous
    stamp.unlink(missing_ok=True)
    config_path = folder / "config.json"
    config_path.write_text(config_text)
    (folder / "resource.json").write_text(json.dumps({"kind": stage.kind, "name": name}) + "\n")
    status = Status(phase="Running", start_time=_now(), conditions=[
        Condition(type="Running", status="True", reason="ProcessStarted", last_transition_time=_now()),
        *kstatus_conditions("Running", "ProcessStarted", "the stage's process is running", _now())])
    _save_status(workdir, name, status)
    print(f"==> {stage.kind}/{name}: running (log: {folder / 'log.txt'})", flush=True)
    started = time.monotonic()
    code = 0
    progress = folder / "progress.jsonl"
    progress.unlink(missing_ok=True)
    for cmd in commands(stage, config_path, nproc):
        code = watch(cmd, folder / "log.txt", progress, verbose)
        if code != 0:
            break
    elapsed = time.monotonic() - started
    if code != 0 and not verbose:
        print(f"    last lines of {folder / 'log.txt'}:\n" + log_tail(folder / "log.txt"), file=sys.stderr)
    print(f"    {'done' if code == 0 else f'exit code {code}'} after {elapsed:.0f}s", flush=True)
    summary = read_summary(config["output"]["uri"]) if code == 0 else None
    if code == 0 and summary is not None:
        stamp.write_text(digest + "\n")
        status = status.model_copy(update={
            "phase": "Succeeded", "completion_time": _now(), "outputs": summary.get("outputs", {}),
            "metrics": summary.get("metrics", {}), "message": f"succeeded in {elapsed:.0f}s",
            "conditions": [Condition(type="Succeeded", status="True", reason=Reason.COMPLETED,
                                     message=f"finished in {elapsed:.0f}s", last_transition_time=_now()),
                           *kstatus_conditions("Succeeded", Reason.COMPLETED, f"finished in {elapsed:.0f}s", _now()),
                           *evaluation_conditions(stage.kind, summary.get("metrics", {}), _now())]})
    else:
        # the operator's reasons, so a run reads the same in `kubectl get` and `rlaif run`
        reason = Reason.CONFIG_ERROR if code == EXIT_CONFIG_ERROR else Reason.JOB_FAILED
        message = (f"exit code {code}; see {folder / 'log.txt'}" if code else
                   f"the stage exited 0 but wrote no summary.json under {config['output']['uri']}")
        status = status.model_copy(update={
            "phase": "Failed", "completion_time": _now(), "message": message,
            "conditions": [Condition(type="Failed", status="True", reason=reason, message=message,
                                     last_transition_time=_now()),
                           *kstatus_conditions("Failed", reason, message, _now())]})
    _save_status(workdir, name, status)
    return status


def _show(stage: StageResource, status: Status) -> str:
    # the reward model's headline is its accuracy against human labels (the paper's), AI labels beside it
    keys = ("labeled", "alignment", "samePositionRate", "evalAccuracyHuman", "evalAccuracyAi", "meanReward", "kl",
            "winRate", "oracleScore", "sftOracleScore")
    shown = ", ".join(f"{k}={status.metrics[k]:.4g}" for k in keys if k in status.metrics)
    return f"  {stage.kind:<20} {stage.metadata.name:<28} {status.phase:<10} {shown}"


def run_file(path: str, workdir: Path, only: str | None = None, force: bool = False, nproc: int = 1,
             verbose: bool = False) -> int:
    """Runs every stage of a manifest file in dependency order. Returns a process exit code."""
    try:
        stages = expand(load_resources(path))
        plan = order(stages, _done_stages(workdir))
    except (ManifestError, PlanError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    if only:
        plan = [s for s in plan if s.metadata.name == only]
        if not plan:
            print(f"error: --only {only}: no such stage; stages: {', '.join(s.metadata.name for s in stages)}",
                  file=sys.stderr)
            return EXIT_CONFIG_ERROR
    results: list[tuple[StageResource, Status]] = []
    outputs: dict[str, dict[str, str]] = {}
    failed = False
    started = time.monotonic()
    for stage in plan:
        ref = upstream_ref(stage)
        upstream_uri = None
        if ref is not None:
            upstream_outputs = outputs.get(ref.name)
            if upstream_outputs is None:
                earlier = load_status(workdir, ref.name)
                upstream_outputs = earlier.outputs if earlier and earlier.phase == "Succeeded" else None
            if upstream_outputs is None or ref.output not in upstream_outputs:
                print(f"==> {stage.kind}/{stage.metadata.name}: skipped, upstream {ref.name} has no"
                      f" {ref.output!r} output", file=sys.stderr)
                failed = True
                continue
            upstream_uri = upstream_outputs[ref.output]
        try:
            status = run_stage(stage, workdir, upstream_uri, force, nproc, verbose)
        except MissingInputError as err:
            print(f"error: {err}", file=sys.stderr)
            return EXIT_CONFIG_ERROR
        results.append((stage, status))
        if status.phase != "Succeeded":
            print(f"==> {stage.kind}/{stage.metadata.name}: FAILED: {status.message}", file=sys.stderr)
            failed = True
            break
        outputs[stage.metadata.name] = status.outputs
    print(f"\nSummary: {len(results)} stages in {(time.monotonic() - started) / 60:.1f} min")
    for stage, status in results:
        print(_show(stage, status))
    return 1 if failed else 0
