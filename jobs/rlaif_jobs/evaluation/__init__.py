"""Evaluation of a trained policy against its SFT starting point (the paper's metrics, by its definitions).

- ``metrics``: pure functions: win rate, length-controlled win rate (App. J), harmless rates;
- ``bootstrap``: 95% percentile intervals by resampling prompts (paired);
- ``oracle``: judge-free scoring against a prompt's ground truth (answer, key fact, must decline);
- ``run``: judge and score both policies' held-out responses, write ``eval.jsonl``;
- ``handoff``: ``python -m rlaif_jobs.evaluation`` (a fresh process, run by ``rlaif_jobs.launch`` after
  training) reads what the trainer wrote (rlaif_jobs.policy.heldout) and completes the summary.

Nothing here imports policy code: the trainer imports this package, never the other way round.
"""

from rlaif_jobs.evaluation.run import Plan, Samples, judge_and_score, plan_for

__all__ = ["Plan", "Samples", "judge_and_score", "plan_for"]
