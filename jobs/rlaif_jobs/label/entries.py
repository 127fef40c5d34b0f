"""Labels a batch of records with the pairwise judge and turns the verdicts into store entries.

``label_batch(judge, config, records, positions)`` returns one entry per record — labeled, abstained
(with the reason) or skipped (an empty response) — in store.py's shape, plus the tokens spent.
"""

from __future__ import annotations

from typing import Any

from rlaif_jobs.config.label import LabelConfig
from rlaif_jobs.data import normalize_preference
from rlaif_jobs.feedback import scoring as S
from rlaif_jobs.feedback.pairwise import PairJudge, PairJudgment, Usage


def label_batch(judge: PairJudge, config: LabelConfig, prompt_hash: str, records: list[dict],
                positions: list[int]) -> tuple[list[dict], Usage]:
    """Entries for ``records`` (dataset positions ``positions``) and the tokens spent on them."""
    judgments, usage = judge.judge(records)
    entries = []
    for record, position, judgment in zip(records, positions, judgments, strict=True):
        if judgment.skipped:
            entries.append(_other(config, prompt_hash, record, position, "skipped", judgment.skipped))
        elif judgment.problem:
            entries.append(_other(config, prompt_hash, record, position, "abstained", judgment.problem))
        else:
            entries.append(_labeled(config, prompt_hash, record, position, judgment))
    return entries, usage


def _human(config: LabelConfig, record: dict) -> str | None:
    if record.get("humanPreference") is None:
        return None
    return normalize_preference(record["humanPreference"], config.dataset.preference_index_base)


def _head(record: dict) -> dict[str, Any]:
    out: dict[str, Any] = {"id": record["id"]}
    if "task" in record:
        out["task"] = record["task"]
    return out


def _labeled(config: LabelConfig, prompt_hash: str, record: dict, position: int, judgment: PairJudgment) -> dict:
    p_a = judgment.p_a
    assert p_a is not None
    ab, ba = judgment.orders["AB"], judgment.orders.get("BA")
    out = _head(record)
    out.update({
        "context": record["context"], "responseA": record["responseA"], "responseB": record["responseB"],
        "pA": p_a, "pAOrderAB": ab.p_a if ba is not None else None, "pAOrderBA": judgment.p_a_ba,
        "chosen": S.chosen(p_a), "humanPreference": _human(config, record),
        # with self-consistency the first sampled rationale stands for the order
        "rationale": ab.rationales[0] if ab.rationales else None,
        "rationaleOrderBA": ba.rationales[0] if ba is not None and ba.rationales else None,
        "labeler": config.labeler.model.uri, "promptHash": prompt_hash,
    })
    return {"status": "labeled", "position": position, "record": out}


def _other(config: LabelConfig, prompt_hash: str, record: dict, position: int, status: str, reason: str) -> dict:
    out = _head(record)
    out.update({"kind": status, "reason": reason, "humanPreference": _human(config, record),
                "labeler": config.labeler.model.uri, "promptHash": prompt_hash})
    return {"status": status, "position": position, "record": out}
