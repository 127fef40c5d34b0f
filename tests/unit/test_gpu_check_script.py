"""scripts/gpu-check.sh where no GPU is: it parses, its dry run prints the plan (the environment built
from images/locks/trainer.txt as the trainer image does, and the GPU manifest's stages with their
outputs), it refuses bad arguments, and without nvidia-smi it fails at once with a clear line. The
GPU manifest it runs is checked here too: bfloat16 training, vLLM labeler and rollouts, sleep mode on."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rlaif_operator.api import load_resources
from rlaif_operator.local.plan import expand

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gpu-check.sh"
MANIFEST = REPO / "examples" / "quickstart-gpu-pipeline.yaml"


def run(*args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path or os.environ["PATH"]}
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=60)


def test_script_parses():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0


def test_dry_run_prints_the_plan():
    proc = run("--dry-run")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "pip install --no-deps -r images/locks/trainer.txt" in out
    assert "deepspeed==0.19.8" in out and "budget: 480s" in out
    for stage in ("label", "reward", "policy"):
        assert f"quickstart-gpu-{stage} -> runs/quickstart-gpu/{stage}" in out
    reuse = run("--dry-run", "--venv", "/opt/venv", "--budget", "300")
    assert "use /opt/venv as it is" in reuse.stdout and "budget: 300s" in reuse.stdout
    assert "pip install" not in reuse.stdout


def test_bad_arguments_are_refused():
    assert run("--budget", "soon").returncode == 2
    assert run("--frobnicate").returncode == 2
    assert run("--manifest", "no/such.yaml", "--dry-run").returncode == 2


@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="checks the behaviour without a GPU")
def test_without_a_gpu_it_fails_at_once(tmp_path):
    proc = run("--workdir", str(tmp_path / "w"))
    assert proc.returncode == 1
    assert "nvidia-smi not found: this check needs a CUDA GPU" in proc.stderr
    assert not (tmp_path / "w").exists()  # nothing built or cleared


def test_gpu_manifest_trains_in_bf16_with_vllm_sleeping():
    stages = {s.kind: s for s in expand(load_resources(MANIFEST))}
    assert stages["PreferenceLabelJob"].spec.labeler.engine == "vllm"
    assert stages["RewardModelRun"].spec.training.precision == "bf16"
    policy = stages["PolicyRLRun"].spec
    assert policy.rl.precision == "bf16"
    assert policy.rollout.engine == "vllm" and policy.rollout.sleep_mode == "on"
