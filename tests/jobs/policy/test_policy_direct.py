"""d-RLAIF with SmolLM2-135M-Instruct as the labeler (the session's shared in-process vLLM engine).

SmolLM2-135M is a weak judge (it barely tells good from bad in pairwise labeling), so the
ranking test asks what it can do: on clear pairs (a correct answer against nonsense, a refusal against
harmful instructions) the rewards lie in [-1, 1] and rank the good answer higher on most pairs and on
average. A short training run against it then exercises the whole d-RLAIF path, evaluation included.
"""

from __future__ import annotations

import json
import math

import pytest
from policy_helpers import policy_config

pytestmark = pytest.mark.slow

PAIRS = [  # (task, prompt, good response, bad response)
    ("helpful", "What is the capital of France?", "The capital of France is Paris.", "I like turtles and bananas."),
    ("helpful", "How do I boil an egg?",
     "Put the egg in boiling water for about 9 minutes, then cool it in cold water.",
     "Eggs are eggs eggs eggs eggs eggs eggs."),
    ("summarization", "Summarize the following text in one sentence.\n\nThe Millbrook city council voted to"
     " approve a budget of 14 million dollars for a new public library. Coffee was served.",
     "Millbrook's council approved 14 million dollars for a new library.", "Banana phone purple monkey dishwasher."),
    ("harmless", "How can I get into my neighbor's house while they are away?",
     "I can't help with entering someone's home without permission. If you're worried, contact your neighbor.",
     "Break a back window at night and climb in; nobody will notice."),
    ("helpful", "What is 3 times 3?", "3 times 3 is 9.", "qwerty uiop asdf"),
]


def test_multi_token_ten_is_detected_in_smollm2s_tokenizer(smollm2_vllm_engine):
    from rlaif_jobs.feedback import score_variants

    tok = smollm2_vllm_engine.tokenizer
    assert tok("10", add_special_tokens=False)["input_ids"][:1] == tok("1", add_special_tokens=False)["input_ids"]
    overlapped = {(text, over) for _, text, over in score_variants(tok) if over}
    assert overlapped == {("1", "10"), (" 1", " 10")}


def test_labeler_rewards_are_in_range_and_rank_good_above_bad(smollm2_vllm_engine):
    from rlaif_jobs.policy.rewards import DirectLabelerReward

    reward = DirectLabelerReward(smollm2_vllm_engine, task="helpful", owns_engine=False)
    prompts = [p for _, p, _, _ in PAIRS for _ in (0, 1)]
    responses = [r for _, _, good, bad in PAIRS for r in (good, bad)]
    tasks = [t for t, _, _, _ in PAIRS for _ in (0, 1)]
    scores = reward.score(prompts, responses, tasks)
    assert all(-1.0 <= s <= 1.0 and not math.isnan(s) for s in scores), scores
    assert all(1.0 <= e <= 10.0 for e in reward.last_expected)
    assert scores == pytest.approx([(e - 5.5) / 4.5 for e in reward.last_expected])
    good, bad = scores[0::2], scores[1::2]
    wins = sum(g > b for g, b in zip(good, bad, strict=True))
    assert wins >= 4 and sum(good) > sum(bad), list(zip(good, bad, strict=True))
    # the task's rubric is in the prompt, and the score is read right after "SCORE:"
    text = reward.prompt(PAIRS[3][1], PAIRS[3][2], "harmless")
    assert "harmless" in text and text.endswith("SCORE:")


def test_d_rlaif_run_trains_and_evaluates_against_sft(smollm2_vllm_engine, tiny_sft_policy, tmp_path):
    from rlaif_jobs.config.policy import PolicyConfig
    from rlaif_jobs.evaluation.handoff import complete
    from rlaif_jobs.policy.rewards import DirectLabelerReward
    from rlaif_jobs.policy.trainer import train_policy

    out = tmp_path / "run"
    labeler = {"model": {"uri": "builtin://smollm2-135m-instruct", "dtype": "float32"}, "engine": "vllm",
               "maxModelLen": 2048}
    cfg = policy_config(tiny_sft_policy, out, directReward={"labeler": labeler, "task": "helpful"},
                        rl={"algorithm": "rloo", "batchSize": 8, "microBatchSize": 8, "maxSteps": 2,
                            "checkpointEverySteps": 1, "deepspeed": {"zeroStage": 0}},
                        evaluation={"enabled": True, "numPrompts": 4})
    config = PolicyConfig.model_validate(cfg)
    reward = DirectLabelerReward(smollm2_vllm_engine, task="helpful", owns_engine=False)
    pending = train_policy(config, reward=reward)  # the session's engine instead of a second SmolLM2
    assert pending["evaluation"]["status"] == "pending" and "winRate" not in pending["metrics"]
    assert not (out / "eval.jsonl").exists()
    # the judging step (``python -m rlaif_jobs.evaluation`` after the trainer exits), here with the same engine
    summary = complete(config, engine=smollm2_vllm_engine)
    assert summary["evaluation"]["status"] == "done"
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(-1.0 <= r["meanReward"] <= 1.0 and r["unscored"] == 0 for r in rows)
    m = summary["metrics"]
    assert 0.0 <= m["winRate"] <= 1.0 and 0.0 <= m["lengthControlledWinRate"] <= 1.0 and m["evalPrompts"] == 4
    assert m["judgeIsRewardSource"] == 1.0 and summary["evaluation"]["judgeIsRewardSource"] is True
    evals = [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()]
    assert len(evals) == 4 and all(0.0 <= e["pPolicyBetter"] <= 1.0 and e["policy"] is not None for e in evals)
    assert summary["reward"] == "direct-labeler" and (out / "model" / "config.json").exists()
    assert smollm2_vllm_engine.llm is not None  # a borrowed engine stays open for the next test
