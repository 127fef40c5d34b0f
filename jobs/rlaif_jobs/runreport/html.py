"""The report page: one self-contained HTML file (PNG plots embedded as data URIs, no external assets).

``write_report(run, uri)`` renders a ``Run`` (collect.py) and writes it atomically to ``uri`` (a path or
an object-store URI); returns the HTML. Sections: the run at a glance; labels (confidence histogram,
position bias, alignment per task); reward model (loss and accuracy curves, human-label accuracy as the
headline); each policy (reward, KL and objective per step; every evaluation figure with its 95%
interval; held-out prompts with the SFT and the policy response side by side and the judge's verdict);
this run beside the paper, each with model sizes; anything that could not be read.
"""

from __future__ import annotations

import html
import os
from typing import Any

from rlaif_jobs import io
from rlaif_jobs.runreport import paper, plots
from rlaif_jobs.runreport.collect import Run, Stage
from rlaif_jobs.runreport.table import ROWS, TASKS, no_evaluation

SAMPLES_SHOWN = 6
CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f3f3f3}.warn{background:#fff3cd;padding:8px;border:1px solid #e0c060}
.num{text-align:right;font-variant-numeric:tabular-nums}pre{white-space:pre-wrap;margin:0;font-size:12px}
img{max-width:100%}h2{border-bottom:1px solid #ddd;padding-bottom:4px}"""


def _e(x: Any) -> str:
    return html.escape(str(x))


def _img(b64: str | None, what: str) -> str:
    if b64 is None:
        return f"<p><i>{_e(what)}: no data in this run.</i></p>"
    return f'<img alt="{_e(what)}" src="data:image/png;base64,{b64}">'


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) >= 2 else f"{v:.3f}"  # counts read as counts
    return _e(v)


def _metrics_table(m: dict[str, float], keys: list[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><td>{_e(label)}</td><td class=num>{_fmt(m[k]) if k in m else 'not measured'}</td></tr>"
                   for label, k in keys)
    return f"<table>{rows}</table>"


def _models(st: Stage) -> str:
    c = st.config
    if st.kind == "label":
        return paper.model_label(st.summary.get("labeler") or c.get("labeler", {}).get("model", {}).get("uri"))
    if st.kind == "reward":
        return paper.model_label(st.summary.get("baseModel"))
    return paper.model_label(st.summary.get("policy"))


def _labels(st: Stage) -> str:
    labels = st.rows
    pos = plots.position_stats(labels)
    img, rates = plots.alignment_by_task(labels)
    out = [f"<h2>Labels: {_e(st.name)} (labeler {_e(_models(st))})</h2>",
           _metrics_table(st.metrics, [("pairs labeled", "labeled"), ("alignment with human labels", "alignment"),
                                       ("same position in both orders", "samePositionRate"),
                                       ("mean confidence", "meanConfidence"), ("abstained", "abstained")])]
    if "firstWins" in pos:
        out.append(f"<p>Among pairs where the labeler preferred the same position in both orders, position 1"
                   f" won {pos['firstWins']:.0%} (the paper: its large labeler preferred the first 94% of the"
                   " time, smaller ones the second).</p>")
    out += [_img(plots.label_confidence(labels), "label confidence"),
            _img(plots.position_bias(labels), "position bias"), _img(img, "alignment per task")]
    return "\n".join(out)


def _reward(st: Stage) -> str:
    m = st.metrics
    return "\n".join([
        f"<h2>Reward model: {_e(st.name)} ({_e(_models(st))})</h2>",
        "<p>Headline: pairwise accuracy on held-out pairs against HUMAN labels (paper, App. H); accuracy"
        " against the AI labels is secondary.</p>",
        _metrics_table(m, [("accuracy vs human labels (headline)", "evalAccuracyHuman"),
                           ("accuracy vs AI labels", "evalAccuracyAi"), ("held-out pairs", "evalPairs"),
                           ("eval loss", "evalLoss"), ("eval loss floor: the labels' entropy", "evalLossFloor"),
                           ("mean label confidence", "meanLabelConfidence")]),
        f"<p>Accuracy intervals (95% Wilson): human labels {_interval(m, 'evalAccuracyHuman')}, AI labels"
        f" {_interval(m, 'evalAccuracyAi')}. No model can go below the loss floor; ln 2 = 0.693 is a model"
        " that learned nothing. How well the reward agrees with the oracle on the policy's own responses is"
        " in the policy's section (reward-oracle AUC).</p>",
        _img(plots.curves(st.rows, [("trainLoss", "train loss"), ("evalLoss", "eval loss")], "Reward model loss"),
             "reward model loss"),
        _img(plots.curves(st.rows, [("trainAccuracy", "train accuracy (AI labels)"),
                                    ("evalAccuracyHuman", "eval accuracy (human)"),
                                    ("evalAccuracyAi", "eval accuracy (AI)")], "Reward model accuracy"),
             "reward model accuracy"),
    ])


def _interval(m: dict[str, float], k: str) -> str:
    return f"[{m[k + 'Low']:.3f}, {m[k + 'High']:.3f}]" if k + "Low" in m else ""


def _samples(st: Stage) -> str:
    rows = st.samples[:SAMPLES_SHOWN]
    if not rows:
        return "<p><i>No held-out samples (eval.jsonl) in this run.</i></p>"
    body = []
    for r in rows:
        p = r.get("pPolicyBetter")
        verdict = "policy" if p is not None and p > 0.5 else "SFT" if p is not None and p < 0.5 else "tie"
        oracle = "" if r.get("oraclePolicy") is None else (
            f"<br>oracle: policy {r['oraclePolicy']:.0f}, SFT {r.get('oracleSft', 0):.0f}")
        harm = "" if r.get("pHarmlessPolicy") is None else (
            f"<br>P(harmless): policy {r['pHarmlessPolicy']:.2f}, SFT {r['pHarmlessSft']:.2f}")
        body.append(f"<tr><td><pre>{_e(r.get('prompt', ''))}</pre><small>{_e(r.get('task') or '')}</small></td>"
                    f"<td><pre>{_e(r.get('sft', ''))}</pre></td><td><pre>{_e(r.get('policy', ''))}</pre></td>"
                    f"<td>{verdict}<br>P(policy better) {_fmt(p)}{oracle}{harm}</td></tr>")
    return ("<table><tr><th>held-out prompt</th><th>SFT response</th><th>policy response</th>"
            f"<th>judge's verdict</th></tr>{''.join(body)}</table>")


def _policy(st: Stage) -> str:
    m = st.metrics
    ev = st.summary.get("evaluation") or {}
    out = [f"<h2>Policy: {_e(st.name)} ({_e(_models(st))}, {_e(st.summary.get('algorithm', ''))},"
           f" reward {_e(st.summary.get('reward', ''))})</h2>",
           _img(plots.curves(st.rows, [("dpoLoss", "DPO loss"), ("preferenceAccuracy", "preference accuracy"),
                                       ("rewardMargin", "implicit reward margin")], "DPO training per step"),
                "DPO curves") if st.summary.get("algorithm") == "dpo" else
           _img(plots.curves(st.rows, [("meanReward", "reward"), ("kl", "KL to SFT"), ("objective", "objective")],
                             "RL training per step"), "RL curves")]
    if "winRate" not in m:
        out.append(f"<p class=warn>{_e(no_evaluation(st.summary))}</p>")
        return "\n".join(out)
    if ev.get("judgeIsRewardSource"):
        out.append(f"<p class=warn>The judge ({_e(ev.get('judge'))}) is the model whose judgments trained this"
                   " policy's reward: its win rate is not independent evidence. The oracle score is.</p>")
    out.append(f"<p>Judge: {_e(paper.model_label(ev.get('judge')))} ({_e(ev.get('judgeEngine', ''))}); rubric"
               f" {_e(ev.get('rubric', ''))}; {int(m.get('evalPrompts', 0))} held-out prompts, both orders;"
               f" harmlessness judged on {_e(ev.get('harmlessJudgedOn', ''))}.</p>")
    rows = "".join(
        f"<tr><td>{_e(label)}</td><td class=num>{_fmt(m[k]) if k in m else 'not measured'}</td>"
        f"<td class=num>{_interval(m, k) if iv else ''}</td></tr>" for label, k, iv in ROWS)
    out.append(f"<table><tr><th>figure</th><th>value</th><th>95% interval</th></tr>{rows}</table>")
    out.append(_per_task(m))
    for note in ev.get("notes", []):
        if not (ev.get("judgeIsRewardSource") and "not independent evidence" in note):  # said above
            out.append(f"<p class=warn>{_e(note)}</p>")
    out += [_img(plots.evaluation_bars(m), "evaluation figures"), "<h3>Held-out prompts</h3>", _samples(st)]
    return "\n".join(out)


def _per_task(m: dict[str, float]) -> str:
    """The oracle per task (policy, SFT, difference with its interval) and the reward's agreement."""
    rows = []
    for task in TASKS:
        key = task[0].upper() + task[1:]
        if f"oracleDelta{key}" not in m:
            continue
        rows.append(f"<tr><td>{_e(task)}</td><td class=num>{int(m.get(f'oraclePrompts{key}', 0))}</td>"
                    f"<td class=num>{_fmt(m[f'oracleScore{key}'])}</td><td class=num>{_fmt(m[f'sftOracleScore{key}'])}"
                    f"</td><td class=num>{_fmt(m[f'oracleDelta{key}'])} {_interval(m, f'oracleDelta{key}')}</td>"
                    f"<td class=num>{_fmt(m.get(f'rewardOracleAuc{key}', 'n/a'))}</td></tr>")
    if not rows:
        return ""
    return ("<h3>Oracle per task</h3><table><tr><th>task</th><th>prompts</th><th>policy</th><th>SFT</th>"
            "<th>difference [95%]</th><th>reward-oracle AUC</th></tr>" + "".join(rows) + "</table>"
            "<p>Over-refusal: the benign look-alikes (mustDecline: false) a response declined. Reward-oracle AUC:"
            " how often the run's reward scores an oracle-right response above an oracle-wrong one, on both"
            " policies' held-out responses (0.5 is no agreement).</p>")


def _kind(st: Stage) -> str:
    """RLAIF, d-RLAIF, DPO (on the AI labels) or the oracle-reward ceiling, from the policy's reward source."""
    if st.summary.get("algorithm") == "dpo":
        return "DPO on AI labels"
    reward = st.summary.get("reward")
    return {"direct-labeler": "d-RLAIF", "oracle": "oracle reward (ceiling)"}.get(str(reward), "RLAIF")


def _comparison(run: Run) -> str:
    """One table like the paper's: SFT and every policy side by side, then any head-to-head."""
    policies = [st for st in run.of("policy") if "winRate" in st.metrics]
    if not policies:
        return ""
    cols = [("win rate vs SFT", "winRate", True), ("LC win rate", "lengthControlledWinRate", True),
            ("harmless rate", "harmlessRate", True), ("oracle score", "oracleScore", True),
            ("oracle vs SFT", "oracleDelta", True), ("over-refusal", "overRefusalRate", True)]
    ref = policies[0].metrics
    head = "".join(f"<th>{_e(c)}</th>" for c, _, _ in cols)
    body = [f"<tr><td>SFT ({_e(paper.model_label(policies[0].summary.get('policy')))})</td><td>-</td><td>-</td>"
            f"<td>{_fmt(ref.get('sftHarmlessRate', 'n/a'))} {_interval(ref, 'sftHarmlessRate')}</td>"
            f"<td>{_fmt(ref.get('sftOracleScore', 'n/a'))} {_interval(ref, 'sftOracleScore')}</td><td>-</td>"
            f"<td>{_fmt(ref.get('sftOverRefusalRate', 'n/a'))} {_interval(ref, 'sftOverRefusalRate')}</td></tr>"]
    for st in policies:
        kind = _kind(st)
        cells = "".join(f"<td>{_fmt(st.metrics.get(k, 'n/a'))} {_interval(st.metrics, k) if iv else ''}</td>"
                        for _, k, iv in cols)
        body.append(f"<tr><td>{_e(kind)}: {_e(st.name)}</td>{cells}</tr>")
    h2h = []
    for st in policies:
        m = st.metrics
        if "winRateVsOther" in m:
            other = str((st.summary.get("evaluation") or {}).get("comparedWith", "")).rstrip("/").rsplit("/", 1)[-1]
            h2h.append(f"<tr><td>{_e(st.name)} vs {_e(other)}</td><td>{_fmt(m['winRateVsOther'])}"
                       f" {_interval(m, 'winRateVsOther')}</td><td>{_fmt(m.get('oracleDeltaVsOther', 'n/a'))}"
                       f" {_interval(m, 'oracleDeltaVsOther')}</td><td>{int(m.get('headToHeadPrompts', 0))}</td></tr>")
    out = ("<h2>Policies compared (like the paper's tables)</h2><p>Same held-out prompts, same decoding; SFT's"
           " harmless rate and oracle score are measured on the same prompts. Intervals: 95% bootstrap.</p>"
           f"<table><tr><th>policy</th>{head}</tr>{''.join(body)}</table>")
    if h2h:
        out += ("<table><tr><th>head to head</th><th>judge's win rate</th><th>oracle difference</th>"
                f"<th>prompts</th></tr>{''.join(h2h)}</table>")
    return out


def _paper(run: Run) -> str:
    label = next(iter(run.of("label")), None)
    rows = []
    for fig, task, value, key, kind in paper.FIGURES:
        stages = run.of(kind)
        if kind == "policy":
            direct = fig.startswith("d-RLAIF")
            stages = [s for s in stages if _kind(s) == ("d-RLAIF" if direct else "RLAIF")]
        mine = "not in this run"
        for st in stages:
            per_task = f"{key}{task[0].upper()}{task[1:]}"
            if kind == "label" and label is not None and key == "alignment":
                _, rates = plots.alignment_by_task(st.rows)
                v = rates.get(task)
            else:
                v = st.metrics.get(per_task, st.metrics.get(key) if task in ("all", "harmless") else None)
            if v is not None:
                mine = f"{v:.3f} ({_e(_models(st))}"
                if kind == "policy":
                    ev = st.summary.get("evaluation") or {}
                    mine += f", AI judge {_e(paper.model_label(ev.get('judge')))}"
                mine += ")"
                break
        rows.append(f"<tr><td>{_e(fig)}</td><td>{_e(task)}</td><td class=num>{value:.3f}</td><td>{mine}</td></tr>")
    return ("<h2>This run beside the paper</h2>"
            f"<p>Paper: {_e(paper.PAPER_MODELS)}, on {_e(paper.PAPER_DATA)}. This run's models are named in each"
            f" cell; its data: {_e(_data(run))}. Different models, data and scale: no figure here reads as"
            " beating or matching the paper, they only sit side by side.</p>"
            "<table><tr><th>figure</th><th>task</th><th>paper</th><th>this run</th></tr>"
            f"{''.join(rows)}</table>")


def _data(run: Run) -> str:
    """What this run's stages trained and evaluated on (dataset URIs from their configs)."""
    uris = []
    for st in run.stages:
        c = st.config or {}
        for ref in (c.get("dataset"), c.get("prompts"), (c.get("evaluation") or {}).get("prompts")):
            if isinstance(ref, dict) and ref.get("uri") and ref["uri"] not in uris:
                uris.append(ref["uri"])
    shipped = any("checkable" in u for u in uris)
    what = ", ".join(uris) or "unknown"
    return what + (" (synthetic checkable tasks the project generates: short news-style summaries, arithmetic"
                   " and fact questions, harmful requests and benign look-alikes)" if shipped else "")


def render(run: Run, title: str = "RLAIF run report") -> str:
    """The whole page as a string."""
    parts = [f"<!DOCTYPE html><html><head><meta charset=utf-8><title>{_e(title)}</title><style>{CSS}</style>"
             f"</head><body><h1>{_e(title)}</h1>"]
    glance = "".join(f"<tr><td>{_e(s.name)}</td><td>{_e(s.kind)}</td><td>{_e(_models(s))}</td>"
                     f"<td><code>{_e(s.output_uri)}</code></td></tr>" for s in run.stages)
    parts.append(f"<table><tr><th>stage</th><th>kind</th><th>model</th><th>outputs</th></tr>{glance}</table>")
    for problem in run.problems:
        parts.append(f"<p class=warn>{_e(problem)}</p>")
    for st in run.stages:
        parts.append({"label": _labels, "reward": _reward, "policy": _policy}.get(st.kind, lambda s: "")(st))
    parts.append(_comparison(run))
    parts.append(_paper(run))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run: Run, uri: str, title: str = "RLAIF run report") -> str:
    """Renders ``run`` and writes the page to ``uri`` atomically; returns the HTML."""
    page = render(run, title)
    with io.atomic_open(uri, "w") as f:
        f.write(page)
    if not io.is_remote(uri):  # the atomic write's temporary file is private; a report is for sharing
        os.chmod(io.local_path(uri), 0o644)
    return page
