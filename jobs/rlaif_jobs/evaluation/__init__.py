"""Evaluation of a trained policy against its SFT starting point (the paper's metrics, by its definitions).

- ``metrics``: pure functions: win rate, length-controlled win rate (App. J), harmless rates;
- ``bootstrap``: 95% percentile intervals by resampling prompts (paired);
- ``oracle``: judge-free scoring against a prompt's ground truth (answer, key fact, must decline);
- ``run``: the orchestration the policy trainer calls: generate SFT and policy responses with the same
  decoding, release the training engines, load the judge, judge, score, write ``eval.jsonl``.
"""

from rlaif_jobs.evaluation.run import (
    EVAL_SEED_STEP,
    Plan,
    Samples,
    generate,
    judge_and_score,
    plan,
    release_memory,
)

__all__ = ["EVAL_SEED_STEP", "Plan", "Samples", "generate", "judge_and_score", "plan", "release_memory"]
