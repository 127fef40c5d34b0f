"""Helpers of the policy-stage tests: configs, clean process launches, metrics reading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
PYTHON = sys.executable
RUNNER = Path(__file__).with_name("run_programmatic.py")
SUBJECTS = ["The sky", "My car", "The ball", "This flower", "Her hat"]
COLORS = ["red", "green", "blue", "yellow", "black"]
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
               "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")


def launch_env(**extra: str) -> dict[str, str]:
    """This environment without launcher variables (an in-process run may have set them), offline,
    one OpenMP thread per process (the test machine's cores are shared)."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false", VLLM_CPU_KVCACHE_SPACE="1", **extra)
    return env


def policy_config(policy: Path | str, out: Path, prompts: str = "builtin://datasets/checkable-prompts",
                  rl: dict | None = None, **top: Any) -> dict:
    """A small PolicyConfig dict (camelCase, as a resource's spec) for a tiny model on CPU."""
    cfg = {
        "policy": {"uri": str(policy)},
        "prompts": {"uri": prompts},
        "rl": {"batchSize": 16, "microBatchSize": 8, "samplesPerPrompt": 4, "maxNewTokens": 8,
               "maxLength": 160, "maxSteps": 10, "learningRate": 2e-3, "warmupRatio": 0.0,
               "precision": "fp32", "checkpointEverySteps": 5, "seed": 0, **(rl or {})},
        "rollout": {"engine": "transformers"},
        "evaluation": {"enabled": False},
        "output": {"uri": str(out)},
    }
    cfg.update(top)
    if "rewardModelUri" not in cfg and "directReward" not in cfg:
        cfg["rewardModelUri"] = "unused-the-test-passes-a-programmatic-reward"
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(json.dumps(cfg, indent=2))
    return path


def run_cli(config: Path, log: Path, timeout: int = 600, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python -m rlaif_jobs.policy --config FILE`` as a Job runs it; output kept in ``log``."""
    with log.open("w") as f:
        proc = subprocess.run([PYTHON, "-m", "rlaif_jobs.policy", "--config", str(config)], cwd=REPO,
                              env=env or launch_env(), stdout=f, stderr=subprocess.STDOUT, timeout=timeout)
    proc.stdout = log.read_text()  # type: ignore[assignment]
    return proc


def run_programmatic(config: Path, word: str, log: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """The trainer in its own process with the contains-``word`` reward (not selectable from a resource)."""
    with log.open("w") as f:
        proc = subprocess.run([PYTHON, str(RUNNER), str(config), word], cwd=REPO, env=launch_env(), stdout=f,
                              stderr=subprocess.STDOUT, timeout=timeout)
    proc.stdout = log.read_text()  # type: ignore[assignment]
    return proc


def steps(out: Path) -> list[dict]:
    """The per-step records of metrics.jsonl (event lines left out)."""
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return [r for r in lines if "meanReward" in r]


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def blue_rate(texts: list[str]) -> float:
    """Share of texts that say "blue" (the programmatic reward's target)."""
    return sum("blue" in t.lower() for t in texts) / len(texts)
