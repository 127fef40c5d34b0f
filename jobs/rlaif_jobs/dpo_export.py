"""Soft AI preference labels as DPO pairs: the prompt/chosen/rejected JSONL other trainers read.

The labeling stage writes ``dpo.jsonl`` beside its labels with ``dpo_records``; ``rlaif export dpo
LABELS_URI OUT [--min-confidence 0.6]`` runs ``export_dpo`` on any labels file afterwards. One record
per pair, in the plain-text "prompt / chosen / rejected" layout TRL's DPOTrainer and OpenRLHF read::

    {"id": "...", "prompt": context, "chosen": the preferred response, "rejected": the other,
     "chosenProbability": max(pA, 1 - pA), "task": ... (when the label has one)}

``chosenProbability`` is the labeler's soft probability that ``chosen`` is the better response (above
0.5), so a soft-label (label-smoothed / conservative) DPO can use it as its target.

What is left out, and counted in the returned stats:

- ties: pairs with pA exactly 0.5 carry no preference (no response is "chosen"), so they are dropped
  (``ties``). rl.algorithm dpo in this platform trains on the labels file itself, where such a pair
  still counts as a target of "no difference";
- ``belowConfidence``: pairs whose chosenProbability is below ``min_confidence`` (default 0.5: none).

The prompt is the raw context text: apply the policy's chat template downstream where it expects one
(this platform's DPO shows it as the user's turn, as the RL rollouts do).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from rlaif_jobs import io
from rlaif_jobs.config.common import DatasetRef
from rlaif_jobs.data import DatasetError, load_records

DPO_FILE = "dpo.jsonl"  # the labeling stage's output beside labels.jsonl (summary outputs.dpo)
OUTPUT_DPO = "dpo"


def check_min_confidence(value: float, field: str = "--min-confidence") -> float:
    """``value`` when it is a probability in [0.5, 1]; else ValueError naming ``field``."""
    if not (isinstance(value, (int, float)) and 0.5 <= value <= 1.0):
        raise ValueError(f"{field}: {value!r} is not in [0.5, 1] (the chosen response's probability; 0.5 keeps"
                         " every pair that has a preference)")
    return float(value)


def dpo_records(labels: Iterable[dict[str, Any]], min_confidence: float = 0.5
                ) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """(DPO records, counts) from label records (context, responseA, responseB, pA; id and task kept).

    Counts: ``pairs`` written, ``ties`` (pA exactly 0.5: dropped, no preference), ``belowConfidence``
    (max(pA, 1 - pA) < min_confidence: dropped), ``total`` read. ValueError on a pA that is not a
    probability, naming the record.
    """
    check_min_confidence(min_confidence, "min_confidence")
    out: list[dict[str, Any]] = []
    counts = {"pairs": 0, "ties": 0, "belowConfidence": 0, "total": 0}
    for n, rec in enumerate(labels, start=1):
        counts["total"] += 1
        raw = rec.get("pA")
        try:
            p = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            p = math.nan
        if isinstance(raw, bool) or not (0.0 <= p <= 1.0):
            raise ValueError(f"label record {n} (id {rec.get('id')!r}): pA must be a probability in [0, 1],"
                             f" got {raw!r}")
        if p == 0.5:
            counts["ties"] += 1
            continue
        confidence = max(p, 1.0 - p)
        if confidence < min_confidence:
            counts["belowConfidence"] += 1
            continue
        a_better = p > 0.5
        row: dict[str, Any] = {"id": str(rec.get("id", n - 1)), "prompt": rec["context"],
                               "chosen": rec["responseA"] if a_better else rec["responseB"],
                               "rejected": rec["responseB"] if a_better else rec["responseA"],
                               "chosenProbability": confidence}
        if rec.get("task") is not None:
            row["task"] = rec["task"]
        out.append(row)
    counts["pairs"] = len(out)
    return out, counts


def read_labels(uri: str) -> list[dict[str, Any]]:
    """The records of a labels file (JSONL, JSON, Parquet or CSV): DatasetError when unreadable or a
    record lacks context, responseA, responseB or pA."""
    return load_records(DatasetRef(uri=uri), required=["context", "responseA", "responseB", "pA"],
                        optional=("task",))


def export_dpo(labels_uri: str, out_uri: str, min_confidence: float = 0.5) -> dict[str, int]:
    """Reads ``labels_uri``, writes its DPO records to ``out_uri`` atomically; returns the counts.
    DatasetError for an unreadable labels file or a bad pA (a ConfigError: exit code 3)."""
    labels = read_labels(labels_uri)
    try:
        records, counts = dpo_records(labels, min_confidence)
    except ValueError as err:
        raise DatasetError(f"{labels_uri}: {err}") from None
    io.write_jsonl(out_uri, records)
    return counts
