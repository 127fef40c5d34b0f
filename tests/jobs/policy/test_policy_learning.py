"""Learning is real: with a programmatic reward ("the response contains 'blue'") the mean reward rises
clearly within a few steps while the KL to the SFT reference stays bounded, through the paper's
REINFORCE with a value baseline (transformers rollouts, ZeRO-2) and through RLOO with vLLM rollouts
whose weights are pushed from the trainer after every update. The exported model is checked on its
own: sampled with plain transformers, it says "blue" far more often than the SFT model.
"""

from __future__ import annotations

import json

import pytest
import torch
from policy_helpers import blue_rate, mean, policy_config, run_programmatic, steps, write_config

pytestmark = pytest.mark.slow

# KL per response (nats, k1 estimate over ~7 tokens). Collapsing both free choices of the SFT answer (5
# subjects, 5 colours) onto one costs ln 25 = 3.2: the last steps' mean must stay under 4. A single step
# may overshoot while the reward jumps (RLOO with vLLM rollouts, on one machine: 10.9 nats at the step the
# reward went 0.50 -> 0.81, then 6.7, 2.7, 2.4, 3.6 as the KL penalty pulled it back; vLLM's CPU sampling
# differs between machines, so the trajectory does); a runaway would not come back under the bound.
KL_BOUND = 16.0


def sample_texts(model_dir, prompts: list[str], n: int = 8, seed: int = 0) -> list[str]:
    """n responses per prompt from an HF folder, with plain transformers (temperature 0.9)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif_jobs.policy.prompts import encode_prompt
    from rlaif_jobs.policy.rollout import TransformersRollout

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    gens = TransformersRollout(model, tok, "cpu").generate([encode_prompt(tok, p, 150) for p in prompts], n, 8,
                                                           0.9, 1.0, seed)
    return [g.text for group in gens for g in group]


PROMPTS = ["What is the capital of France?", "What is 43 plus 97?", "Summarize: the council met on Monday."]


def check_learning(rows: list[dict]) -> None:
    start, end = mean([r["meanReward"] for r in rows[:3]]), mean([r["meanReward"] for r in rows[-3:]])
    assert end >= start + 0.3 and end >= 0.6, f"reward did not rise: first steps {start:.3f}, last {end:.3f}"
    kls = [round(r["kl"], 3) for r in rows]
    assert max(kls) < KL_BOUND and mean(kls[-3:]) < 4.0, kls


def test_reinforce_with_value_baseline_learns_the_programmatic_reward(tiny_sft_policy, tmp_path):
    out = tmp_path / "run"
    cfg = policy_config(tiny_sft_policy, out, rl={"algorithm": "reinforce", "maxSteps": 10,
                                                  "deepspeed": {"zeroStage": 2}})
    proc = run_programmatic(write_config(tmp_path / "cfg.json", cfg), "blue", tmp_path / "log.txt")
    assert proc.returncode == 0, proc.stdout[-3000:]
    rows = steps(out)
    assert [r["step"] for r in rows] == list(range(1, 11))
    for key in ("meanReward", "kl", "entropy", "responseLength", "valueLoss", "policyLoss", "rolloutSeconds",
                "rewardSeconds", "updateSeconds"):
        assert all(isinstance(r[key], float) for r in rows), key
    check_learning(rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stage"] == "policy" and summary["outputs"]["model"] == f"{out}/model"
    assert summary["algorithm"] == "reinforce" and summary["rolloutEngine"] == "transformers"
    assert summary["deepspeed"]["zeroStage"] == 2
    assert "old-policy log-probs from the update's forward" in proc.stdout  # one pass: no separate one
    assert summary["metrics"]["meanReward"] > summary["metrics"]["initialMeanReward"] + 0.3
    # the exported HF folder, sampled on its own, has learned the preference; the SFT model has not
    trained, sft = blue_rate(sample_texts(out / "model", PROMPTS)), blue_rate(sample_texts(tiny_sft_policy, PROMPTS))
    assert sft < 0.4 and trained > sft + 0.3, (sft, trained)


def test_rloo_with_vllm_rollouts_learns_and_reports_the_weight_sync(tiny_sft_policy, tmp_path):
    out = tmp_path / "run"
    cfg = policy_config(tiny_sft_policy, out, rl={"algorithm": "rloo", "maxSteps": 10,
                                                  "deepspeed": {"zeroStage": 0}},
                        rollout={"engine": "vllm"})
    proc = run_programmatic(write_config(tmp_path / "cfg.json", cfg), "blue", tmp_path / "log.txt")
    assert proc.returncode == 0, proc.stdout[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rolloutEngine"] == "vllm", "vLLM did not run: " + proc.stdout[-2000:]
    rows = steps(out)
    # If the pushed weights did not reach vLLM, the samples would stay the SFT model's: no learning, and
    # the KL estimate E_SFT[log pi - log pi_SFT] would turn negative.
    check_learning(rows)
    assert mean([r["kl"] for r in rows[-3:]]) > 0.1
    assert all(r["syncSeconds"] > 0 for r in rows) and "valueLoss" not in rows[0]
    assert summary["metrics"]["meanSyncSeconds"] > 0
    assert "old-policy log-probs from the update's forward" in proc.stdout


def test_ppo_epochs_take_the_old_log_probs_from_a_separate_pass(tiny_sft_policy, tmp_path):
    """With two passes over each batch the second needs the true pi_old: the trainer computes it first,
    and the second pass sees the policy moved away from it (approxKl > 0; 0 would mean pi_old = pi)."""
    out = tmp_path / "run"
    cfg = policy_config(tiny_sft_policy, out, rl={"algorithm": "ppo", "ppoEpochs": 2, "maxSteps": 2,
                                                  "deepspeed": {"zeroStage": 0}})
    proc = run_programmatic(write_config(tmp_path / "cfg.json", cfg), "blue", tmp_path / "log.txt")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "old-policy log-probs from a separate pass" in proc.stdout
    rows = steps(out)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["approxKl"] > 0 and 0 <= r["clipFraction"] <= 1 and r["valueLoss"] > 0 for r in rows), rows


def test_pushed_weights_are_the_ones_vllm_samples_from(tiny_sft_policy):
    """After load_weights, vLLM's greedy answers equal transformers' on the same new weights (the push goes
    through the worker's own ``reload_weights``; sleep mode, on where CUDA is, is slept through as a step does)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif_jobs.policy.prompts import encode_prompt
    from rlaif_jobs.policy.rollout import TransformersRollout
    from rlaif_jobs.policy.rollout_vllm import VLLMRollout

    tok = AutoTokenizer.from_pretrained(tiny_sft_policy)
    model = AutoModelForCausalLM.from_pretrained(tiny_sft_policy, dtype=torch.float32)
    ids = [encode_prompt(tok, p, 150) for p in PROMPTS]
    engine = VLLMRollout(str(tiny_sft_policy), tok, "float32", max_model_len=256, sleep_mode="auto")
    assert engine.sleeps == torch.cuda.is_available()
    try:
        hf = TransformersRollout(model, tok, "cpu")

        def greedy(e):
            return [g[0].token_ids for g in e.generate(ids, 1, 8, 0.0, 1.0, 0)]  # temperature 0: greedy

        before = greedy(engine)
        assert before == greedy(hf)
        torch.manual_seed(1)
        with torch.no_grad():  # new weights, as an update would make them (tied embeddings included)
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
        changed = greedy(hf)
        assert changed != before, "the edit must change what the model says, or the test proves nothing"
        engine.sleep()  # as train_step does before the update; load_weights wakes it
        assert engine.asleep == engine.sleeps
        seconds = engine.load_weights(model.state_dict().items())
        assert not engine.asleep
        assert greedy(engine) == changed
        assert seconds > 0
    finally:
        engine.close()
