"""The label summary's metrics, computed from the labels. Pure functions over label records.

A label record carries ``pA`` (the soft label), ``chosen``, ``humanPreference`` (a, b or None),
``task`` (optional) and, when both orders ran, ``pAOrderAB`` / ``pAOrderBA``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rlaif_jobs.feedback.scoring import same_position, same_position_winner


def alignment(labels: Iterable[dict]) -> tuple[float | None, int]:
    """(share of labels whose ``chosen`` equals ``humanPreference``, how many had a human label)."""
    judged = [lab for lab in labels if lab.get("humanPreference") in ("a", "b")]
    if not judged:
        return None, 0
    return sum(lab["chosen"] == lab["humanPreference"] for lab in judged) / len(judged), len(judged)


def alignment_by_task(labels: Iterable[dict]) -> dict[str, float]:
    """Alignment per ``task`` (records without a task count as "default"); tasks without human labels
    are left out."""
    groups: dict[str, list[dict]] = {}
    for lab in labels:
        groups.setdefault(str(lab.get("task") or "default"), []).append(lab)
    out = {}
    for task, group in sorted(groups.items()):
        value, _ = alignment(group)
        if value is not None:
            out[task] = value
    return out


def _both_orders(labels: Iterable[dict]) -> list[dict]:
    return [lab for lab in labels if lab.get("pAOrderAB") is not None and lab.get("pAOrderBA") is not None]


def same_position_rate(labels: Iterable[dict]) -> float | None:
    """Share of labels (with both orders) where the labeler preferred the same position twice."""
    both = _both_orders(labels)
    if not both:
        return None
    return sum(same_position(lab["pAOrderAB"], lab["pAOrderBA"]) for lab in both) / len(both)


def same_position_winners(labels: Iterable[dict], inverted: Callable[[dict], bool] = lambda _: False
                          ) -> dict[str, float] | None:
    """Among same-position labels, the shares where the labeler's answer named the first / the second
    position: {"first": x, "second": 1 - x}; None when no label named the same position twice.
    ``inverted(label)``: whether that label's prompt asked for the worse candidate (harmless)."""
    winners = [same_position_winner(lab["pAOrderAB"], lab["pAOrderBA"], inverted(lab)) for lab in _both_orders(labels)]
    same = [w for w in winners if w is not None]
    if not same:
        return None
    first = sum(w == "first" for w in same) / len(same)
    return {"first": first, "second": 1.0 - first}


def mean_confidence(labels: Iterable[dict]) -> float | None:
    """Mean of max(pA, 1 - pA): 0.5 is a coin flip, 1.0 is certainty."""
    values = [max(lab["pA"], 1.0 - lab["pA"]) for lab in labels]
    return sum(values) / len(values) if values else None
