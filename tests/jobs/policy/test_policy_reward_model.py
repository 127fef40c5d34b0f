"""Canonical RLAIF end to end on CPU: a reward model trained by the reward stage's own entrypoint on
AI-style preferences ("blue" preferred), then the policy trained against that folder by
``python -m rlaif_jobs.policy``. The reward model's score of the policy's samples rises, KL stays
bounded, and the exported policy says "blue" far more often than the SFT model.
"""

from __future__ import annotations

import json
import random
import subprocess

import pytest
from policy_helpers import (
    COLORS,
    PYTHON,
    REPO,
    SUBJECTS,
    blue_rate,
    launch_env,
    mean,
    policy_config,
    run_cli,
    steps,
    write_config,
)
from test_policy_learning import KL_BOUND, PROMPTS, sample_texts

pytestmark = pytest.mark.slow


def preference_pairs(prompts: list[str], n: int, seed: int = 0) -> list[dict]:
    """Labels-file records: the answer that says "blue" is preferred (pA 0.9 towards it), side random.

    Half of the rejected answers are degenerate: cut short, empty, or running on past their end. A
    reward model that never saw those scores them as it pleases, and RL finds them within a few steps
    (we saw both: a policy that answers nothing, and one that repeats "car is blue" to the token
    limit): reward hacking of an under-specified reward model, which a labeler would not allow.
    """
    rng = random.Random(seed)
    out = []
    for i in range(n):
        subject = rng.choice(SUBJECTS)
        good = f"{subject} is blue."
        bad = f"{rng.choice(SUBJECTS)} is {rng.choice([c for c in COLORS if c != 'blue'])}."
        if i % 4 == 2:
            bad = rng.choice(["", ".", subject, f"{subject} is"])
        elif i % 4 == 3:
            bad = rng.choice([f"{good} {subject} is blue", f"{good} is blue.", f"{subject} {subject} is blue."])
        a_good = rng.random() < 0.5
        out.append({"id": f"p{i}", "context": rng.choice(prompts), "responseA": good if a_good else bad,
                    "responseB": bad if a_good else good, "pA": 0.9 if a_good else 0.1})
    return out


@pytest.fixture(scope="module")
def reward_model(tiny_sft_policy, tmp_path_factory):
    """A reward model trained by ``python -m rlaif_jobs.reward``, initialised from the SFT policy."""
    work = tmp_path_factory.mktemp("rm")
    prompts = [json.loads(x)["prompt"] for x in
               (REPO / "jobs/rlaif_jobs/datasets/checkable-prompts.jsonl").read_text().splitlines()]
    labels = work / "labels.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in preference_pairs(prompts, 128)))
    cfg = {"baseModel": {"uri": str(tiny_sft_policy)}, "preferencesUri": str(labels),
           "training": {"batchSize": 16, "microBatchSize": 16, "epochs": 8, "learningRate": 2e-3,
                        "precision": "fp32", "maxLength": 160, "warmupRatio": 0.0, "evalFraction": 0.15,
                        "checkpointEverySteps": 100, "deepspeed": {"zeroStage": 0}},
           "output": {"uri": str(work / "out")}}
    # lr 2e-3 converges to the soft-label optimum whatever the order of the examples; at 5e-3 the
    # training oscillated and a harmless reordering of each batch (length grouping) decided whether it
    # learned the colours at all.
    config = write_config(work / "rm.json", cfg)
    proc = subprocess.run([PYTHON, "-m", "rlaif_jobs.reward", "--config", str(config)], cwd=REPO,
                          env=launch_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((work / "out/summary.json").read_text())
    assert summary["metrics"]["evalAccuracy"] >= 0.9, summary  # it must know blue from the rest
    assert summary["metrics"]["evalLoss"] < 0.4, summary  # the optimum with pA 0.9 is H(0.9) = 0.325
    return work / "out/model"


def test_policy_learns_against_the_trained_reward_model(reward_model, tiny_sft_policy, tmp_path):
    from rlaif_jobs.reward.scorer import RewardModelScorer

    scorer = RewardModelScorer(str(reward_model))
    blue, red = scorer.score(["What is the capital of France?"] * 2, ["The sky is blue.", "The sky is red."])
    gap = blue - red
    assert gap > 0.5, (blue, red)

    out = tmp_path / "run"
    cfg = policy_config(tiny_sft_policy, out, rewardModelUri=str(reward_model),
                        rl={"algorithm": "reinforce", "maxSteps": 10, "learningRate": 1e-3, "valueLearningRate": 1e-2,
                            "deepspeed": {"zeroStage": 1}})
    proc = run_cli(write_config(tmp_path / "cfg.json", cfg), tmp_path / "log.txt")
    assert proc.returncode == 0, proc.stdout[-3000:]
    rows = steps(out)
    start, end = mean([r["meanReward"] for r in rows[:3]]), mean([r["meanReward"] for r in rows[-3:]])
    assert end - start > 0.3 * gap, ([round(r["meanReward"], 3) for r in rows], gap)
    kls = [r["kl"] for r in rows]
    assert max(kls) < KL_BOUND and mean(kls[-3:]) < 4.0, kls
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reward"] == "reward-model" and set(summary["metrics"]) >= {"meanReward", "kl"}
    trained, sft = blue_rate(sample_texts(out / "model", PROMPTS)), blue_rate(sample_texts(tiny_sft_policy, PROMPTS))
    assert trained > sft + 0.3, (sft, trained)
