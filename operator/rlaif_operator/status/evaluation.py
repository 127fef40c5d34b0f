"""Pure rule: the condition a finished PolicyRLRun gets from its evaluation figures.

``evaluation_conditions(kind, metrics, now, generation)`` returns, for a PolicyRLRun whose summary
reported ``judgeIsRewardSource``, one condition of type ``JudgeIndependent`` (beside the four every
resource carries): False with reason ``JudgeIsRewardSource`` (a warning: the judge is the model whose
judgments trained the policy's reward, so its win rate is not independent evidence) or True with reason
``IndependentJudge``. No evaluation figures (evaluation disabled): no condition. Used by the operator's
status logic and by ``rlaif run``.
"""

from __future__ import annotations

from rlaif_operator.api.common import Condition
from rlaif_operator.api.conditions import ExtraConditionType, Reason

WARNING = ("the evaluation judge is the model whose judgments trained this policy's reward (the d-RLAIF labeler,"
           " or the labeler of the reward model's labels): its win rate is not independent evidence; set"
           " evaluation.judge to an LLM of another model family, and see oracleScore for judge-free evidence")


def evaluation_conditions(kind: str, metrics: dict[str, float], now: str, generation: int | None = None
                          ) -> list[Condition]:
    """The JudgeIndependent condition of a PolicyRLRun with evaluation figures, else []."""
    if kind != "PolicyRLRun" or "judgeIsRewardSource" not in metrics:
        return []
    if metrics["judgeIsRewardSource"] >= 0.5:
        return [Condition(type=ExtraConditionType.JUDGE_INDEPENDENT, status="False",
                          reason=Reason.JUDGE_IS_REWARD_SOURCE, message=WARNING,
                          last_transition_time=now, observed_generation=generation)]
    return [Condition(type=ExtraConditionType.JUDGE_INDEPENDENT, status="True", reason=Reason.INDEPENDENT_JUDGE,
                      message="the evaluation judge is not the source of the policy's reward",
                      last_transition_time=now, observed_generation=generation)]
