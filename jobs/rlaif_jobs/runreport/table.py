"""The console table of a run's evaluation figures: every figure the paper defines, each with its 95%
interval, and a line saying why for any that is missing (nothing is left out silently)."""

from __future__ import annotations

from rlaif_jobs.runreport.collect import Run

# (label, metric key, has an interval); the judge-free oracle first: it is the evidence that does not
# depend on an AI judge (the quickstart's judge is the reward source)
ROWS = [
    ("oracle score (policy)", "oracleScore", True),
    ("oracle score (SFT)", "sftOracleScore", True),
    ("oracle score difference", "oracleDelta", True),
    ("over-refusal rate (policy)", "overRefusalRate", True),
    ("over-refusal rate (SFT)", "sftOverRefusalRate", True),
    ("reward-oracle agreement (AUC)", "rewardOracleAuc", True),
    ("win rate vs SFT (judge)", "winRate", True),
    ("length-controlled win rate", "lengthControlledWinRate", True),
    ("harmless rate (policy)", "harmlessRate", True),
    ("harmless rate (SFT)", "sftHarmlessRate", True),
    ("length-controlled harmless rate", "lengthControlledHarmlessRate", False),
]
TASKS = ("summarization", "helpful", "harmless")
LABEL_ROWS = [("labeler alignment", "alignment"), ("same position in both orders", "samePositionRate")]
REWARD_ROWS = [("reward model accuracy (human labels)", "evalAccuracyHuman", True),
               ("reward model accuracy (AI labels)", "evalAccuracyAi", True),
               ("eval loss", "evalLoss", False),
               ("eval loss floor (label entropy)", "evalLossFloor", False),
               ("held-out pairs", "evalPairs", False)]


def _cell(m: dict[str, float], key: str, interval: bool) -> str:
    if key not in m:
        return "not measured"
    text = f"{m[key]:.3f}"
    if interval and f"{key}Low" in m:
        text += f"  [{m[key + 'Low']:.3f}, {m[key + 'High']:.3f}]"
    return text


def no_evaluation(summary: dict) -> str:
    """Why a policy summary has no evaluation figures: still pending (the judge step has not finished), or
    turned off. Shared by the console table and the HTML report."""
    if (summary.get("evaluation") or {}).get("status") == "pending":
        return ("evaluation pending: the policy trained but its judge step has not finished; rerun the stage"
                " (only the evaluation runs)")
    return "evaluation did not run (evaluation.enabled: false)"


def evaluation_table(run: Run) -> str:
    """The table as text (one block per stage that has figures)."""
    lines = []
    for st in run.of("label"):
        lines.append(f"{st.name} (labels):")
        lines += [f"  {label:<38} {_cell(st.metrics, key, False)}" for label, key in LABEL_ROWS]
    for st in run.of("reward"):
        lines.append(f"{st.name} (reward model):")
        lines += [f"  {label:<38} {_cell(st.metrics, key, iv)}" for label, key, iv in REWARD_ROWS]
    for st in run.of("policy"):
        m = st.metrics
        ev = st.summary.get("evaluation") or {}
        lines.append(f"{st.name} ({st.summary.get('algorithm', '?')}, reward {st.summary.get('reward', '?')};"
                     f" policy vs SFT on {int(m.get('evalPrompts', 0))} held-out prompts, judge"
                     f" {ev.get('judge', 'none')}):")
        if "winRate" not in m:
            lines.append(f"  {no_evaluation(st.summary)}")
            continue
        lines += [f"  {label:<38} {_cell(m, key, iv)}" for label, key, iv in ROWS]
        for task in TASKS:
            key = task[0].upper() + task[1:]
            if f"oracleDelta{key}" in m:
                n = int(m.get(f"oraclePrompts{key}", 0))
                lines.append(f"  {'oracle ' + task + f' ({n})':<38} {m[f'oracleScore{key}']:.3f} vs SFT"
                             f" {m[f'sftOracleScore{key}']:.3f}, difference {_cell(m, f'oracleDelta{key}', True)}")
        if "winRateVsOther" in m:
            other = str(ev.get("comparedWith", "the other policy")).rstrip("/").rsplit("/", 1)[-1]
            lines.append(f"  {'win rate vs ' + other + ' (judge)':<38} {_cell(m, 'winRateVsOther', True)}")
            lines.append(f"  {'oracle difference vs ' + other:<38} {_cell(m, 'oracleDeltaVsOther', True)}")
        for note in ev.get("notes", []):
            lines.append(f"  note: {note}")
    for problem in run.problems:
        lines.append(f"  problem: {problem}")
    return "\n".join(lines)
