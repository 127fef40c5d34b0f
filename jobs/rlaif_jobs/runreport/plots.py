"""The report's figures, each a base64 PNG (or None when its data is absent). matplotlib, Agg backend."""

from __future__ import annotations

import base64
import io as _io
from collections.abc import Callable
from typing import Any

from rlaif_jobs.runreport import paper


def _png(draw: Callable[[Any], None], size: tuple[float, float] = (5.0, 3.2)) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=100)
    try:
        draw(ax)
        fig.tight_layout()
        buf = _io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def label_confidence(labels: list[dict]) -> str | None:
    """Histogram of max(pA, 1 - pA): 0.5 is a coin flip, 1.0 certainty."""
    conf = [max(r["pA"], 1 - r["pA"]) for r in labels if r.get("pA") is not None]
    if not conf:
        return None

    def draw(ax: Any) -> None:
        ax.hist(conf, bins=20, range=(0.5, 1.0), color="#4c72b0")
        ax.set_xlabel("label confidence max(P(a), P(b))")
        ax.set_ylabel("pairs")
        ax.set_title(f"AI label confidence ({len(conf)} pairs)")
    return _png(draw)


def position_stats(labels: list[dict]) -> dict[str, float]:
    """Same-position rate and, among same-position pairs, the share where position 1 won."""
    both = [r for r in labels if r.get("pAOrderAB") is not None and r.get("pAOrderBA") is not None]
    same = [r for r in both if (r["pAOrderAB"] >= 0.5) == (r["pAOrderBA"] < 0.5)]
    out: dict[str, float] = {"pairs": float(len(both))}
    if both:
        out["samePosition"] = len(same) / len(both)
    if same:
        out["firstWins"] = sum(r["pAOrderAB"] >= 0.5 for r in same) / len(same)
    return out


def position_bias(labels: list[dict]) -> str | None:
    """Bars: share of pairs with the same position preferred in both orders, split by which position."""
    s = position_stats(labels)
    if "samePosition" not in s:
        return None
    first = s["samePosition"] * s.get("firstWins", 0.0)
    second = s["samePosition"] - first

    def draw(ax: Any) -> None:
        ax.bar(["position 1 both times", "position 2 both times", "order-consistent"],
               [first, second, 1 - s["samePosition"]], color=["#dd8452", "#c44e52", "#55a868"])
        ax.set_ylim(0, 1)
        ax.set_ylabel("share of pairs")
        ax.set_title("Labeler position bias (paper: 18% same position, large labeler)")
    return _png(draw, (6.0, 3.2))


def alignment_by_task(labels: list[dict]) -> tuple[str | None, dict[str, float]]:
    """Bars of the labeler's alignment with the human label, per task, beside the paper's."""
    per: dict[str, list[bool]] = {}
    for r in labels:
        if r.get("humanPreference") in ("a", "b") and r.get("chosen") in ("a", "b"):
            per.setdefault(str(r.get("task") or "all"), []).append(r["chosen"] == r["humanPreference"])
    rates = {t: sum(v) / len(v) for t, v in sorted(per.items())}
    if not rates:
        return None, rates
    ref = {task: value for fig, task, value, key, _ in paper.FIGURES if key == "alignment"}

    def draw(ax: Any) -> None:
        tasks = list(rates)
        xs = range(len(tasks))
        ax.bar([x - 0.2 for x in xs], [rates[t] for t in tasks], 0.4, label="this run", color="#4c72b0")
        ax.bar([x + 0.2 for x in xs], [ref.get(t, 0) for t in tasks], 0.4, label="paper (PaLM 2 L)",
               color="#bbbbbb")
        ax.set_xticks(list(xs), [f"{t}\n(n={len(per[t])})" for t in tasks])
        ax.axhline(0.5, color="k", lw=0.5, ls=":")
        ax.set_ylim(0, 1)
        ax.set_ylabel("alignment with human label")
        ax.legend(fontsize=8)
        ax.set_title("Labeler alignment per task")
    return _png(draw), rates


def curves(rows: list[dict], keys: list[tuple[str, str]], title: str) -> str | None:
    """Line plots of metrics.jsonl keys against step, one panel per (key, label)."""
    present = [(k, label) for k, label in keys if any(r.get(k) is not None for r in rows)]
    if not present:
        return None

    def draw(ax: Any) -> None:
        fig = ax.figure
        fig.clf()
        axes = fig.subplots(1, len(present), squeeze=False)[0]
        for a, (k, label) in zip(axes, present, strict=True):
            pts = [(r["step"], r[k]) for r in rows if r.get(k) is not None and "step" in r]
            a.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3)
            a.set_xlabel("step")
            a.set_title(label, fontsize=10)
        fig.suptitle(title)
    return _png(draw, (3.2 * len(present), 3.0))


def evaluation_bars(m: dict[str, float]) -> str | None:
    """Every evaluation figure with its 95% interval, beside SFT's where there is one."""
    keys = [("win rate", "winRate"), ("LC win rate", "lengthControlledWinRate"),
            ("harmless (policy)", "harmlessRate"), ("harmless (SFT)", "sftHarmlessRate"),
            ("oracle (policy)", "oracleScore"), ("oracle (SFT)", "sftOracleScore")]
    present = [(label, k) for label, k in keys if k in m]
    if not present:
        return None

    def draw(ax: Any) -> None:
        vals = [m[k] for _, k in present]
        lo = [m[k] - m.get(f"{k}Low", m[k]) for _, k in present]
        hi = [m.get(f"{k}High", m[k]) - m[k] for _, k in present]
        colors = ["#c44e52" if "SFT" in label else "#4c72b0" for label, _ in present]
        ax.bar(range(len(vals)), vals, yerr=[lo, hi], capsize=4, color=colors)
        ax.set_xticks(range(len(vals)), [label for label, _ in present], rotation=20, fontsize=8)
        ax.axhline(0.5, color="k", lw=0.5, ls=":")
        ax.set_ylim(0, 1)
        ax.set_title("Evaluation vs SFT (95% bootstrap intervals)")
    return _png(draw, (6.5, 3.4))
