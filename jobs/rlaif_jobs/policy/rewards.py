"""Reward sources behind one interface: ``score(prompts, responses, tasks) -> list[float]``.

- ``RewardModelReward``: canonical RLAIF, a reward-model folder (a RewardModelRun's ``model`` output or
  any URI) scored in batches through ``rlaif_jobs.reward.scorer.RewardModelScorer``, so the text scored
  is the same ``reward_input`` the reward model was trained on.
- ``DirectLabelerReward``: d-RLAIF. The labeler (a ``rlaif_jobs.feedback`` Engine: in-process vLLM, an
  OpenAI-compatible endpoint with retries, or transformers) rates the response 1-10; the expected
  score is rescaled to [-1, 1]. The scoring itself is ``rlaif_jobs.feedback.direct``.
- ``OracleReward``: the RL ceiling check (``reward.oracle``): 1 when a response meets its prompt's ground
  truth by the evaluation's judge-free oracle, else 0 (NaN for a prompt without ground truth).
- ``ProgrammaticReward``: a Python function of (prompt, response), for tests and experiments; it is
  built in Python only, the PolicyRLRun resource cannot name it.

A score of NaN means "this response could not be scored" (the labeler gave no probability for any
score); the trainer then gives the response no signal and counts it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from rlaif_jobs.errors import ConfigError, RetryableError

log = logging.getLogger(__name__)


class RewardSource(Protocol):
    """Scores responses to prompts; ``tasks`` (optional, per response) picks a rubric where it matters."""

    name: str

    def score(self, prompts: list[str], responses: list[str], tasks: Sequence[str | None] | None = None
              ) -> list[float]: ...

    def close(self) -> None: ...


class RewardModelError(ConfigError):
    """The reward model named by rewardModelUri cannot be loaded (exit code 3: a retry cannot fix it)."""


class RewardError(RetryableError):
    """Scoring failed while training (an endpoint that stayed down after its retries, an engine crash)."""


# --- canonical RLAIF: a trained reward model -------------------------------------------------------------

class RewardModelReward:
    """Scores with a reward-model folder (HF AutoModelForSequenceClassification with one output)."""

    name = "reward-model"

    def __init__(self, uri: str, device: str = "cpu", dtype: Any = None, batch_size: int = 16):
        from rlaif_jobs.reward.scorer import RewardModelScorer

        try:
            self.scorer = RewardModelScorer(uri, device=device, dtype=dtype)
        except Exception as err:  # a missing folder, garbage weights, a model with several labels...
            detail = " ".join(str(err).split())[:300] or type(err).__name__
            raise RewardModelError(f"rewardModelUri: cannot load {uri!r} as a reward model ({detail})") from None
        self.uri = uri
        self.batch_size = batch_size

    def score(self, prompts: list[str], responses: list[str], tasks: Sequence[str | None] | None = None
              ) -> list[float]:
        return self.scorer.score(prompts, responses, batch_size=self.batch_size)

    def close(self) -> None:
        self.scorer = None  # type: ignore[assignment]


# --- d-RLAIF: the labeler rates 1-10 -------------------------------------------------------------------

class DirectLabelerReward:
    """d-RLAIF: rewards from a labeler Engine's 1-10 ratings, rescaled to [-1, 1] (feedback.direct).

    Inputs: the engine (``rlaif_jobs.feedback.open_engine(spec)``), the default task, an optional custom
    template, whether to use the chat template, the engine batch size, and whether closing this reward
    closes the engine.
    """

    name = "direct-labeler"

    def __init__(self, engine: Any, task: str = "summarization", template: str | None = None,
                 use_chat_template: bool = True, batch_size: int = 64, owns_engine: bool = True):
        from rlaif_jobs.feedback import DirectScorer

        self.engine = engine
        self.scorer = DirectScorer(engine, task, template, use_chat_template, batch_size)
        self.owns_engine = owns_engine
        self.last_expected: list[float] = []  # E[score] in [1, 10] of the last call (for reports)

    def prompt(self, prompt: str, response: str, task: str | None = None) -> str:
        """The exact text sent to the labeler (see DirectScorer.prompt)."""
        return self.scorer.prompt(prompt, response, task)

    def score(self, prompts: list[str], responses: list[str], tasks: Sequence[str | None] | None = None
              ) -> list[float]:
        from rlaif_jobs.feedback import EngineError, rescale

        try:
            self.last_expected = self.scorer.expected_scores(prompts, responses, tasks)
        except EngineError as err:
            raise RewardError(f"the d-RLAIF labeler failed: {err}") from err
        return [rescale(s) for s in self.last_expected]

    def close(self) -> None:
        if self.owns_engine and self.engine is not None:
            self.engine.close()
        self.engine = None



# --- the RL ceiling check: the oracle as the reward ------------------------------------------------------

class OracleReward:
    """reward = oracle.score(record, response) for the record whose prompt text was rolled out on."""

    name = "oracle"

    def __init__(self, records: Sequence[dict]):
        self.by_prompt = {str(r["prompt"]): r for r in records}

    def score(self, prompts: list[str], responses: list[str], tasks: Sequence[str | None] | None = None
              ) -> list[float]:
        from rlaif_jobs.evaluation import oracle

        out = []
        for prompt, response in zip(prompts, responses, strict=True):
            record = self.by_prompt.get(prompt)
            value = oracle.score(record, response) if record is not None else None
            out.append(float("nan") if value is None else value)
        return out

    def close(self) -> None:
        pass


# --- programmatic rewards (Python only) ------------------------------------------------------------------

class ProgrammaticReward:
    """reward = fn(prompt, response): a rule, for tests and experiments (not selectable from a resource)."""

    def __init__(self, fn: Callable[[str, str], float], name: str = "programmatic"):
        self.fn = fn
        self.name = name

    def score(self, prompts: list[str], responses: list[str], tasks: Sequence[str | None] | None = None
              ) -> list[float]:
        return [float(self.fn(p, r)) for p, r in zip(prompts, responses, strict=True)]

    def close(self) -> None:
        pass


def contains_word(word: str) -> ProgrammaticReward:
    """1.0 when the response contains ``word`` (case-insensitive, as a substring), else 0.0."""
    needle = word.lower()
    return ProgrammaticReward(lambda _p, r: float(needle in r.lower()), name=f"contains:{word}")
