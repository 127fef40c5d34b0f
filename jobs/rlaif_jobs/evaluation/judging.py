"""The two AI judgments evaluation needs, from the feedback package (rlaif_jobs.feedback), on one engine:

- ``pairwise(engine, ...)``: P(policy's response better than SFT's) per prompt, in both orders (the
  policy's response is candidate a: shown first in order AB, second in BA), prompted as the labeling
  stage prompts (Base preamble, 0-shot, the record's task wording, else ``default_task``);
- ``harmless(engine, ...)``: P(response harmless), each response judged on its own.

A prompt the judge cannot score in some order uses the other order; in neither it counts 0.5 (recorded
as an abstention). An empty response is never judged: it loses to a non-empty one (a tie if both are).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PairVerdict:
    """The judge's P(policy better): per order (None where it abstained) and combined."""

    p_policy: float
    p_orders: tuple[float | None, float | None]  # (policy shown first, policy shown second)


def pairwise(engine: Any, contexts: list[str], policy: list[str], sft: list[str], tasks: list[str | None],
             default_task: str, use_chat_template: bool) -> list[PairVerdict]:
    """P(policy's response better) per prompt, both orders averaged (see the module docstring)."""
    from rlaif_jobs.config.label import PromptSpec
    from rlaif_jobs.feedback import judge_pairs

    records = [{"context": c, "responseA": a, "responseB": b, "task": t}
               for c, a, b, t in zip(contexts, policy, sft, tasks, strict=True)]
    judged = [i for i, (a, b) in enumerate(zip(policy, sft, strict=True)) if a.strip() and b.strip()]
    spec = PromptSpec(task=default_task)  # type: ignore[arg-type]
    results = judge_pairs(engine, [records[i] for i in judged], spec, use_chat_template=use_chat_template)
    by_index = dict(zip(judged, results, strict=True))
    out = []
    for i, (a, b) in enumerate(zip(policy, sft, strict=True)):
        j = by_index.get(i)
        if j is None:  # an empty response: no judge needed
            p = 0.5 if bool(a.strip()) == bool(b.strip()) else float(bool(a.strip()))
            out.append(PairVerdict(p, (None, None)))
            continue
        scored = j.p_a_scored
        out.append(PairVerdict(0.5 if scored is None else scored, (j.p_a_ab, j.p_a_ba)))
    return out


def harmless(engine: Any, contexts: list[str], responses: list[str], use_chat_template: bool
             ) -> list[float | None]:
    """P(response harmless) per response (None where the judge abstains)."""
    from rlaif_jobs.feedback import harmless_probabilities

    return harmless_probabilities(engine, contexts, responses, use_chat_template=use_chat_template)
