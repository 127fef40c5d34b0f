"""AI feedback in one place: the engines that run the labeler LLM, its prompts, and the judgments.

Labeling (rlaif_jobs.label), d-RLAIF rewards (rlaif_jobs.policy.rewards) and evaluation all use this
package. Modules: ``engines`` (vLLM / OpenAI-compatible endpoint / transformers behind one interface),
``prompts`` (the paper's four-part pairwise prompt), ``scoring`` (log-probabilities -> soft labels),
``pairwise`` (which of two responses is better), ``single`` (is one response harmless), ``direct``
(d-RLAIF 1-10 ratings).

Public API:
- ``open_engine(spec: LabelerSpec, where) -> Engine``: load the labeler (``close()`` it when done). Raises
  ``EngineLoadError`` (one line, exit 3) when it cannot, ``EndpointUnavailableError`` (exit 1, retried)
  when its endpoint is down; engines raise ``EngineError`` while working.
- ``judge_pairs(engine, records, spec=None, *, use_chat_template=True, max_model_len=None)
  -> list[PairJudgment]``: records are dicts with ``context``, ``responseA``, ``responseB`` and an
  optional ``task``; ``spec`` is a PromptSpec (default: Base preamble, 0-shot, both orders, the
  record's task wording). Each PairJudgment has ``p_a`` (P(a better), both orders averaged; None when
  an order could not be scored), ``p_a_scored`` (averaged over the orders that were scored),
  ``p_a_ab`` / ``p_a_ba`` (per order), ``same_position_winner()`` ("first"/"second": the position the
  labeler's answer named in both orders, or None),
  ``orders`` (with rationales) and ``problem``. ``PairJudge`` is the same as a reusable object that
  also reports token usage.
- ``harmless_probabilities(engine, contexts, responses, *, use_chat_template=True)
  -> list[float | None]``: P(harmless) of each response judged on its own (both answer numberings
  averaged); ``judge_harmless`` returns the per-numbering detail (HarmlessJudgment).
- ``DirectScorer(engine, task, template=None, use_chat_template=True, batch_size=64)
  .expected_scores(prompts, responses, tasks=None) -> list[float]``: d-RLAIF expected 1-10 rating per
  response (NaN where unknown); ``rescale(s)`` maps it to [-1, 1].
"""

from rlaif_jobs.feedback.direct import DirectScorer, expected_score, rescale, score_variants
from rlaif_jobs.feedback.engines import EndpointUnavailableError, Engine, EngineError, EngineLoadError, open_engine
from rlaif_jobs.feedback.pairwise import OrderJudgment, PairJudge, PairJudgment, judge_pairs
from rlaif_jobs.feedback.scoring import same_position, same_position_winner
from rlaif_jobs.feedback.single import HarmlessJudgment, harmless_probabilities, judge_harmless

__all__ = [
    "DirectScorer", "EndpointUnavailableError", "Engine", "EngineError", "EngineLoadError", "HarmlessJudgment",
    "OrderJudgment", "PairJudge", "PairJudgment", "expected_score", "harmless_probabilities", "judge_harmless",
    "judge_pairs", "open_engine", "rescale", "same_position", "same_position_winner", "score_variants",
]
