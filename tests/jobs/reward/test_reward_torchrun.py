"""The reward workload for real: two ranks under torchrun, ZeRO-2, the tiny Llama, on CPU.

One launch is killed (SIGKILL to the whole process group, as a preempted pod) after a checkpoint;
a second launch resumes from that checkpoint's step and finishes. Then: the loss fell, held-out
accuracy rose well above chance, the resumed steps reproduce the killed run's steps exactly
(optimizer state and data position restored), and the exported folder loads in transformers and
scores pairs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from reward_helpers import MARKER, REPO, launch_env, learnable_pairs, torchrun_cmd, write_jsonl

pytestmark = pytest.mark.slow

TOTAL_STEPS = 44  # 400 pairs, 40 held out: 360 // 16 = 22 steps per epoch, 2 epochs
KILL_AFTER_CHECKPOINT = 10


def read_lines(path: Path) -> list[dict]:
    """Metrics records, tolerating a last line that is still being written."""
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                out.append(json.loads(line))
    return out


def latest_complete_step(ckpt_dir: Path) -> int | None:
    from rlaif_jobs.train.checkpoint import CheckpointManager
    from rlaif_jobs.train.dist import DistEnv

    info = CheckpointManager(ckpt_dir, 2, DistEnv(0, 1, 0, 1, "gloo", "cpu")).latest()
    return info.step if info else None


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def preempt(proc: subprocess.Popen) -> None:
    """Kills the launch as a node loss would: every process at once, no chance to clean up.

    torchrun starts each worker in a session of its own, so killing torchrun's group alone would
    leave the workers training: SIGKILL each worker's group, then torchrun's."""
    for pid in children(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def tail(path: Path, n: int = 3000) -> str:
    return path.read_text()[-n:] if path.exists() else ""


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model):
    """Trains once with a kill and a restart; returns what the tests look at."""
    tmp = tmp_path_factory.mktemp("reward-run")
    labels = write_jsonl(tmp / "labels.jsonl", learnable_pairs(400, seed=0))
    out = tmp / "out"
    config = {
        "baseModel": {"uri": tiny_model},
        "preferencesUri": str(labels),
        "training": {
            "learningRate": 1e-3, "epochs": 2, "batchSize": 16, "microBatchSize": 4, "maxLength": 128,
            "precision": "bf16", "gradientCheckpointing": True, "warmupRatio": 0.05, "evalFraction": 0.1,
            "checkpointEverySteps": 10, "keepCheckpoints": 2, "evalEverySteps": 20, "seed": 0,
            "deepspeed": {"zeroStage": 2, "config": {"zero_optimization": {"reduce_bucket_size": 500000}}},
        },
        "output": {"uri": str(out)},
    }
    cfg_path = tmp / "reward.yaml"
    cfg_path.write_text(yaml.safe_dump(config))
    env = launch_env()

    # Launch 1: stop it (the whole process group, SIGKILL) once a checkpoint at step >= 10 is complete
    # and the run has gone three steps past it.
    log1 = tmp / "launch1.log"
    with log1.open("w") as f:
        proc = subprocess.Popen(torchrun_cmd(cfg_path), cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.time() + 300
        while True:
            assert proc.poll() is None, f"launch 1 ended (rc {proc.returncode}) before it was stopped:\n{tail(log1)}"
            assert time.time() < deadline, f"launch 1 made no checkpoint in time:\n{tail(log1)}"
            k = latest_complete_step(out / "checkpoints")
            steps = [r["step"] for r in read_lines(out / "metrics.jsonl") if "trainLoss" in r]
            if k is not None and k >= KILL_AFTER_CHECKPOINT and steps and max(steps) >= k + 3:
                break
            time.sleep(0.05)
    finally:
        preempt(proc)
    killed_at = latest_complete_step(out / "checkpoints")
    before_kill = read_lines(out / "metrics.jsonl")
    assert not (out / "summary.json").exists() and not (out / "model").exists()

    # Launch 2: the same command, as a restarted pod would run it.
    log2 = tmp / "launch2.log"
    with log2.open("w") as f:
        done = subprocess.run(torchrun_cmd(cfg_path), cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT,
                              timeout=400)
    assert done.returncode == 0, tail(log2)
    return {"out": out, "killed_at": killed_at, "before_kill": before_kill, "log2": log2,
            "summary": json.loads((out / "summary.json").read_text()), "metrics": read_lines(out / "metrics.jsonl")}


def test_restart_resumes_from_the_checkpoint_step_not_from_zero(run):
    k = run["killed_at"]
    assert k is not None and KILL_AFTER_CHECKPOINT <= k < TOTAL_STEPS
    m = run["summary"]["metrics"]
    assert m["resumedFromStep"] == k
    assert m["stepsThisRun"] == TOTAL_STEPS - k
    assert m["steps"] == TOTAL_STEPS
    assert m["worldSize"] == 2
    assert {"event": "resumed", "step": k} .items() <= next(r for r in run["metrics"] if r.get("event")).items()
    # the metrics file reads as one run: every step once
    train_steps = [r["step"] for r in run["metrics"] if "trainLoss" in r]
    assert train_steps == list(range(1, TOTAL_STEPS + 1))


def test_resumed_steps_repeat_the_killed_run_exactly(run):
    # Steps after the checkpoint ran twice: before the kill and after the restart. Same weights, Adam
    # moments, LR schedule and data position give the same losses; any of them missing would not.
    k = run["killed_at"]
    before = {r["step"]: r for r in run["before_kill"] if "trainLoss" in r and r["step"] > k}
    after = {r["step"]: r for r in run["metrics"] if "trainLoss" in r}
    overlap = sorted(before)
    assert len(overlap) >= 2, overlap
    for s in overlap:
        assert after[s]["trainLoss"] == pytest.approx(before[s]["trainLoss"], rel=1e-4, abs=1e-5), s
        assert after[s]["learningRate"] == pytest.approx(before[s]["learningRate"], rel=1e-9), s


def test_loss_falls_and_heldout_accuracy_rises_well_above_chance(run):
    evals = [r for r in run["metrics"] if "evalAccuracy" in r]
    first, last = evals[0], evals[-1]
    assert first["step"] == 0 and last["step"] == TOTAL_STEPS
    assert first["evalAccuracy"] <= 0.75  # an untrained head is near chance
    assert last["evalAccuracy"] >= 0.9
    assert last["evalAccuracyHuman"] >= 0.9  # against the human labels alone
    assert last["evalLoss"] < first["evalLoss"] - 0.1
    losses = [r["trainLoss"] for r in run["metrics"] if "trainLoss" in r]
    assert sum(losses[-10:]) / 10 < sum(losses[:5]) / 5 - 0.1
    m = run["summary"]["metrics"]
    assert m["evalAccuracy"] == last["evalAccuracy"] and m["evalLoss"] == last["evalLoss"]
    assert m["samplesPerSecond"] > 0 and m["elapsedSeconds"] > 0 and m["trainLoss"] < 0.6


def test_checkpoints_are_pruned_and_latest_is_the_end(run):
    ckpts = run["out"] / "checkpoints"
    names = sorted(d.name for d in ckpts.iterdir() if d.is_dir())
    assert names == ["step-00000040", "step-00000044"]
    assert (ckpts / "latest").read_text().strip() == "step-00000044"
    assert all((ckpts / n / "COMPLETE").exists() for n in names)
    # two ranks wrote their own ZeRO optimizer shards
    shards = sorted(p.name for p in (ckpts / "step-00000044" / "model").glob("*optim_states.pt"))
    assert len(shards) == 2, shards


def test_summary_names_the_model_and_the_metrics(run):
    s = run["summary"]
    assert s["stage"] == "reward"
    assert s["outputs"]["model"] == str(run["out"] / "model")
    for key in ("evalAccuracy", "evalLoss", "trainLoss", "samplesPerSecond", "steps", "elapsedSeconds"):
        assert isinstance(s["metrics"][key], float), key
    assert s["deepspeed"] == {"zeroStage": 2, "zeroStageChosen": "spec", "precision": "bf16", "gradientAccumulation": 2}


def test_output_folder_reloads_in_transformers_and_scores_pairs(run):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rlaif_jobs.reward.format import reward_input, tokenize_reward_inputs
    from rlaif_jobs.reward.scorer import RewardModelScorer

    folder = run["out"] / "model"
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    assert (folder / "tokenizer.json").exists() or (folder / "tokenizer_config.json").exists()
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    tok = AutoTokenizer.from_pretrained(folder)
    assert model.config.num_labels == 1 and model.config.architectures == ["LlamaForSequenceClassification"]
    assert tok.model_max_length == 128  # training's maxLength travels with the model

    fresh = learnable_pairs(40, seed=99)  # pairs the model never saw
    scorer = RewardModelScorer(str(folder))
    ra = scorer.score([x["context"] for x in fresh], [x["responseA"] for x in fresh], batch_size=16)
    rb = scorer.score([x["context"] for x in fresh], [x["responseB"] for x in fresh], batch_size=7)
    correct = sum((a > b) == (x["chosen"] == "a") for a, b, x in zip(ra, rb, fresh, strict=True))
    assert correct >= 36, (correct, ra[:5], rb[:5])

    # the plain transformers model gives the scorer's number for a pair (both in float32: bf16 rounds
    # differently with the batch order)
    ctx, good, bad = "Write a sentence about rain.", f"Cold {MARKER} rain on the road.", "Cold rain on the road."
    enc = tokenize_reward_inputs(tok, [reward_input(tok, ctx, good), reward_input(tok, ctx, bad)])
    with torch.no_grad():
        direct = model.float()(**enc).logits[:, 0].tolist()
    fp32 = RewardModelScorer(str(folder), dtype="float32")
    assert fp32.model.dtype == torch.float32 and scorer.model.dtype == torch.bfloat16  # saved as trained
    assert fp32.score([ctx, ctx], [good, bad]) == pytest.approx(direct, abs=1e-4)
    assert direct[0] > direct[1]
