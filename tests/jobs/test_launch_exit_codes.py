"""Exit codes survive the launcher: a trainer's config error under torchrun reaches Kubernetes as 3.

torchrun exits 1 whatever its workers exit with; ``python -m rlaif_jobs.launch`` (the trainers' pod
command and ``rlaif run``'s) exits 3 when a worker did, so the Job's podFailurePolicy fails fast and the
local runner reports ConfigError, as the operator does. Each bad config here is refused before any model loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlaif_jobs import errors
from rlaif_jobs.launch import failure_exit_code
from rlaif_operator.local.runner import run_file

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/jobs/reward"))
from reward_helpers import free_port, launch_env  # noqa: E402


def launch(module: str, config: Path, nproc: int = 2,
           launcher: str = "rlaif_jobs.launch") -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", launcher, f"--nproc-per-node={nproc}", "--master-addr=127.0.0.1",
           f"--master-port={free_port()}", "-m", module, "--config", str(config)]
    return subprocess.run(cmd, cwd=REPO, env=launch_env(), capture_output=True, text=True, timeout=300)


def reward_config(tmp: Path) -> Path:
    """A reward config whose labels file does not exist: refused before the base model loads."""
    path = tmp / "reward.yaml"
    path.write_text(yaml.safe_dump({
        "baseModel": {"uri": "builtin://tiny-random-llama"}, "preferencesUri": str(tmp / "nowhere.jsonl"),
        "training": {"batchSize": 4, "microBatchSize": 2, "epochs": 1, "precision": "fp32"},
        "output": {"uri": str(tmp / "out")}}))
    return path


def policy_config(tmp: Path) -> Path:
    """A policy config with a typo'd field: refused when the config loads."""
    path = tmp / "policy.json"
    path.write_text(json.dumps({"policy": {"uri": "builtin://tiny-random-llama"},
                                "prompts": {"uri": "builtin://datasets/checkable-prompts"},
                                "rewardModelUri": str(tmp / "rm"), "rl": {"learningrate": 1e-5},
                                "output": {"uri": str(tmp / "out")}}))
    return path


def test_exit_code_follows_the_exception_class() -> None:
    from rlaif_jobs.data import DatasetError
    from rlaif_jobs.label.job import MergeError
    from rlaif_jobs.train.checkpoint import CheckpointError

    assert errors.exit_code(DatasetError("x")) == errors.exit_code(CheckpointError("x")) == 3
    assert errors.exit_code(MergeError("x")) == errors.exit_code(RuntimeError("x")) == 1
    assert failure_exit_code({0: 3, 1: -15}) == 3 and failure_exit_code({0: 1, 1: -15}) == 1


@pytest.mark.parametrize(("module", "make", "message"), [
    ("rlaif_jobs.reward", reward_config, "preferencesUri: no such file"),
    ("rlaif_jobs.policy", policy_config, "rl.learningrate: unknown field"),
])
def test_a_trainer_config_error_under_torchrun_exits_3(module, make, message, tmp_path) -> None:
    proc = launch(module, make(tmp_path))
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert message in proc.stderr and "a config error (not retried)" in proc.stderr
    assert not (tmp_path / "out" / "model").exists()


def test_plain_torchrun_loses_the_code(tmp_path) -> None:
    """Why the launcher exists: torchrun itself turns the worker's 3 into 1."""
    proc = launch("rlaif_jobs.reward", reward_config(tmp_path), nproc=1, launcher="torch.distributed.run")
    assert proc.returncode == 1 and "preferencesUri: no such file" in proc.stderr


def test_the_local_runner_reports_invalid_config_for_a_trainer(tmp_path, capsys) -> None:
    manifest = tmp_path / "rm.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "rlaif.dev/v1alpha1", "kind": "RewardModelRun", "metadata": {"name": "bad-rm"},
        "spec": {"baseModel": {"uri": "builtin://tiny-random-llama"},
                 "preferences": {"uri": str(tmp_path / "nowhere.jsonl")},
                 "training": {"batchSize": 4, "microBatchSize": 2, "precision": "fp32"},
                 "output": {"uri": str(tmp_path / "out")}}}))
    assert run_file(str(manifest), tmp_path / "runs") == 1
    status = json.loads((tmp_path / "runs/bad-rm/status.json").read_text())
    assert status["phase"] == "Failed"
    assert status["conditions"][0]["reason"] == "ConfigError", status
    assert "exit code 3" in status["message"]
