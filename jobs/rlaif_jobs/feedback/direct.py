"""d-RLAIF scoring: the labeler rates one response 1-10, and the rating's expected value is the reward.

The labeler is asked to rate the response after "SCORE:"; the probabilities of the scores 1..10 are
read (both spellings, "7" and " 7"), normalised over 1..10, and the expected score s = sum_i i * P(i)
is computed (``expected_score``); ``rescale`` maps it to (s - 5.5) / 4.5 in [-1, 1]. "10" is often two
tokens "1" + "0": ``score_variants`` finds out and ``expected_score`` then does not count 10's mass
as 1. ``DirectScorer`` runs this on an Engine in batches; policy/rewards.py wraps it as a reward source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from rlaif_jobs.feedback.engines.base import chat_template_here
from rlaif_jobs.feedback.prompts import PromptParts, render

SCORES = list(range(1, 11))
ENDING = "SCORE:"

# d-RLAIF rating prompt (paper, App. D): an expert-rater line, the input and ONE response, a 1-10 scale
# where 1 is awful and 10 perfect, and the reply opens with "SCORE:" (the score is read as "7" or " 7",
# i.e. P("SCORE: 7") however the tokenizer splits the space).
RATING_PREAMBLES = {
    "summarization": (
        "You are an expert at rating summaries. Below is a text and one summary of it. A good summary is"
        " much shorter than the text, reads clearly, states only what the text supports and keeps the"
        " information that matters. Rate the summary on a scale from 1 to 10, where 1 is an awful summary"
        " and 10 a perfect one. Reply with SCORE: followed by the number only."
    ),
    "helpful": (
        "You are an expert at rating the responses of an AI Assistant. Below is a conversation and one"
        " response of the Assistant. Rate how helpful and honest the response is on a scale from 1 to 10,"
        " where 1 is awful and 10 perfect. Reply with SCORE: followed by the number only."
    ),
    "harmless": (
        "You are an expert at rating the responses of an AI Assistant. Below is a conversation and one"
        " response of the Assistant. Rate how harmless the response is on a scale from 1 to 10, where 1"
        " is very harmful and 10 completely harmless. Reply with SCORE: followed by the number only."
    ),
}
_SAMPLE = {"summarization": "Text - {prompt}\nSummary - {response}"}
_DIALOGUE_SAMPLE = "Context - {prompt}\nResponse - {response}"


def rating_user_message(task: str, prompt: str, response: str, template: str | None = None) -> str:
    """The user's message asking for a 1-10 rating (the assistant's reply then opens with "SCORE:").

    ``template`` (DirectRewardSpec.template) replaces the built-in wording; its {prompt} and
    {response} are filled in with str.replace (user text may contain braces).
    """
    if template is None:
        if task not in RATING_PREAMBLES:
            raise ValueError(f"no rating prompt for task {task!r}: use summarization, helpful or harmless")
        template = RATING_PREAMBLES[task] + "\n\n" + _SAMPLE.get(task, _DIALOGUE_SAMPLE)
    return template.replace("{prompt}", prompt).replace("{response}", response)


def score_variants(tokenizer: Any) -> list[tuple[int, str, str | None]]:
    """The continuation strings read for each score, and which of them hides a "10" inside.

    Each score i is read as "i" and " i" (tokenizers differ on whether the space after "SCORE:" is
    part of the digit's token; the two probabilities are summed, as the labeling stage does for 1/2).
    Returns (score, continuation, overlapped-by) triples: for the variants of 1, ``overlapped-by`` is
    the matching "10" variant when "10" is several tokens that start with the tokens of "1", because
    then log P("1" | prompt) also counts every answer that goes on with "0", i.e. the mass of 10.
    """
    out: list[tuple[int, str, str | None]] = []
    for space in ("", " "):
        one, ten = f"{space}1", f"{space}10"
        overlapped = ten if _prefix_tokens(tokenizer, one, ten) else None
        for i in SCORES:
            text = f"{space}{i}"
            out.append((i, text, overlapped if i == 1 else None))
    return out


def _prefix_tokens(tokenizer: Any, short: str, long: str) -> bool:
    """True when ``long`` encodes to more tokens than ``short`` and starts with all of them.

    Without a tokenizer (an endpoint sent plain text) the engine matches text token by token, and
    every tokenizer we know splits "10" into "1" + "0": assume the overlap.
    """
    if tokenizer is None:
        return True
    a = tokenizer(short, add_special_tokens=False)["input_ids"]
    b = tokenizer(long, add_special_tokens=False)["input_ids"]
    return len(b) > len(a) and list(b[: len(a)]) == list(a)


def expected_score(logprobs: Sequence[float | None], variants: Sequence[tuple[int, str, str | None]]
                   ) -> float:
    """E[score] over 1..10 from the log-probabilities of ``variants`` (aligned with them); NaN if unknown.

    P(i) is the sum of exp(logprob) over i's variants; for a variant of 1 overlapped by a multi-token
    "10" variant, that "10" variant's probability is subtracted first (clamped at 0), so the mass of
    10 is not counted as 1 too. The P(i) are then normalised over 1..10 (the rest of the vocabulary
    is ignored, as the paper does). None (the engine could not tell) counts as probability 0; if no
    score has a known probability the result is NaN.
    """
    by_text = {text: lp for (_, text, _), lp in zip(variants, logprobs, strict=True)}
    mass = dict.fromkeys(SCORES, 0.0)
    known = False
    for (i, _text, overlapped_by), lp in zip(variants, logprobs, strict=True):
        if lp is None or math.isnan(lp):
            continue
        known = True
        p = math.exp(lp)
        if overlapped_by is not None and by_text.get(overlapped_by) is not None:
            p = max(0.0, p - math.exp(by_text[overlapped_by]))  # type: ignore[arg-type]
        mass[i] += p
    total = sum(mass.values())
    if not known or total <= 0.0:
        return float("nan")
    return sum(i * p for i, p in mass.items()) / total


def rescale(s: float) -> float:
    """Expected score in [1, 10] -> reward in [-1, 1]: (s - 5.5) / 4.5 (NaN stays NaN)."""
    return (s - 5.5) / 4.5


class DirectScorer:
    """Expected 1-10 ratings of responses from a feedback Engine.

    Inputs: the engine (``open_engine(spec)``), the default task (a response's own task, when it is one
    of summarization/helpful/harmless, wins), an optional custom template (DirectRewardSpec.template,
    with {prompt} and {response}), whether to wrap the message in the labeler's chat template, and how
    many prompts go to the engine per call. The engine stays the caller's to close.
    """

    def __init__(self, engine: Any, task: str = "summarization", template: str | None = None,
                 use_chat_template: bool = True, batch_size: int = 64):
        self.engine = engine
        self.task = task
        self.template = template
        self.use_chat_template = use_chat_template
        self.batch_size = max(1, batch_size)
        self.variants = score_variants(getattr(engine, "tokenizer", None))

    def prompt(self, prompt: str, response: str, task: str | None = None) -> str:
        """The exact text sent to the labeler; the score token comes right after it."""
        task = task if task in RATING_PREAMBLES else self.task
        user = rating_user_message(task, prompt, response, self.template)
        return render(PromptParts(user, ENDING), getattr(self.engine, "tokenizer", None),
                      chat_template_here(self.engine, self.use_chat_template))

    def expected_scores(self, prompts: list[str], responses: list[str],
                        tasks: Sequence[str | None] | None = None) -> list[float]:
        """E[score] in [1, 10] per response (NaN where no score had a probability). Raises EngineError."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        tasks = list(tasks) if tasks is not None else [None] * len(prompts)
        texts = [self.prompt(p, r, t) for p, r, t in zip(prompts, responses, tasks, strict=True)]
        continuations = [text for _, text, _ in self.variants]
        expected: list[float] = []
        for lo in range(0, len(texts), self.batch_size):
            rows = self.engine.continuation_logprobs(texts[lo: lo + self.batch_size], continuations)
            expected.extend(expected_score(row, self.variants) for row in rows)
        return expected
