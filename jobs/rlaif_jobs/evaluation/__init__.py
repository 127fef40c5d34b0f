"""Evaluation of a trained policy against its SFT starting point (the paper's metrics, by its definitions).

- ``metrics``: pure functions: win rate, length-controlled win rate (App. J), harmless rates;
- ``bootstrap``: 95% percentile intervals by resampling prompts (paired);
- ``oracle``: judge-free scoring against a prompt's ground truth (answer, key fact, must decline);
- ``run``: the orchestration: plan the held-out prompts, generate SFT and policy responses with the
  same decoding (in the trainer), judge and score them, write ``eval.jsonl``;
- ``handoff``: the trainer writes the samples and a pending summary; ``python -m rlaif_jobs.evaluation``
  (a fresh process, run by ``rlaif_jobs.launch`` after training) judges them and completes the summary.
"""

from rlaif_jobs.evaluation.handoff import write_pending
from rlaif_jobs.evaluation.run import (
    EVAL_SEED_STEP,
    Plan,
    Samples,
    generate,
    judge_and_score,
    plan,
    score_rewards,
)

__all__ = ["EVAL_SEED_STEP", "Plan", "Samples", "generate", "judge_and_score", "plan", "score_rewards", "write_pending"]
