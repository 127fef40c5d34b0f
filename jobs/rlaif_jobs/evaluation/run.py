"""The evaluator's half of the evaluation: judge and score both policies' held-out responses.

The trainer (rlaif_jobs.policy.heldout) holds prompts out, answers them with the trained and the SFT
policy (same decoding) and writes them for a fresh process (``handoff``: the judge never loads into
the process that trained, so memory peaks at the larger of the two, not at their sum). Here:
- ``plan_for(config, held)``: the judge (``PolicyConfig.judge_spec``: one rule), whether it is the
  reward source, the rubric, evaluation.compareWith's responses; ConfigError when it cannot run;
- ``judge_and_score(plan, samples, engine, out)``: loads the judge, judges pairwise (both orders) and
  each response's harmlessness, scores the oracle, computes every figure with its 95% bootstrap
  interval, writes ``eval.jsonl`` and returns ``(metrics, record)`` for ``summary.json``.
This module never imports policy code (an import-linter layers contract keeps it so).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlaif_jobs import io, summaries
from rlaif_jobs.config.label import LabelerSpec
from rlaif_jobs.config.policy import PolicyConfig
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.evaluation import bootstrap, judging, metrics, oracle

log = logging.getLogger(__name__)


@dataclass
class Plan:
    """What to evaluate on and with whom (see ``plan_for``)."""

    records: list[dict]
    judge: LabelerSpec
    judge_is_reward_source: bool
    reward_labeler: str | None
    default_task: str
    length_controlled: bool = True
    other: dict[str, str] = field(default_factory=dict)  # evaluation.compareWith: prompt id -> its response
    other_uri: str | None = None  # evaluation.compareWith
    prompts: list[Any] = field(default_factory=list)  # the held-out Prompt objects (set by the trainer)


@dataclass
class Samples:
    """One response per held-out prompt from each policy, same decoding; and, where the trainer scored
    them, each response's reward from the run's reward source (for its agreement with the oracle)."""

    policy: list[str]
    sft: list[str]
    reward_policy: list[float] | None = None
    reward_sft: list[float] | None = None


def same_model(a: str | None, b: str | None) -> bool:
    """Whether two model URIs name the same model (trailing slashes and file:// ignored)."""
    def norm(u: str) -> str:
        return u.removeprefix("file://").rstrip("/")
    return a is not None and b is not None and norm(a) == norm(b)


def _parent(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[0] if "/" in uri.rstrip("/") else "."


def reward_labeler(config: PolicyConfig) -> str | None:
    """The model URI of the LLM whose judgments the policy was trained on, when it can be known.

    d-RLAIF: the scoring labeler. DPO: the labeler named in the summary beside its labels file.
    Canonical RLAIF: traced through the stages' summaries (a reward model
    run exports ``<out>/model`` next to ``<out>/summary.json``, which names its preferences file; the
    labeling run that wrote that file names its labeler in ``summary.json`` beside it). None when the
    chain cannot be read (a reward model from elsewhere).
    """
    if config.direct_reward is not None:
        return config.direct_reward.labeler.model.uri
    try:
        if config.preferences_uri is not None:  # dpo: trained on the labels file itself
            prefs: str | None = config.preferences_uri
        else:
            rm = summaries.read_summary(_parent(str(config.reward_model_uri)))
            prefs = (rm or {}).get("preferences")
        labels = summaries.read_summary(_parent(prefs)) if prefs else None
    except Exception:  # noqa: BLE001 - provenance is best effort; the summary says "unknown"
        return None
    labeler = (labels or {}).get("labeler")
    return str(labeler) if labeler else None


def plan_for(config: PolicyConfig, held: list[dict]) -> Plan:
    """The evaluation plan on the held-out records ``held`` (the judge, its independence, the rubric,
    evaluation.compareWith's responses). The trainer calls it through ``policy.heldout.plan``; the evaluation process
    again on the records the trainer wrote. ConfigError when there is no judge or compareWith is unusable."""
    ev = config.evaluation
    judge = config.judge_spec()
    source = reward_labeler(config)
    task = ev.task or (config.direct_reward.task if config.direct_reward is not None else "helpful")
    p = Plan(held, judge, same_model(judge.model.uri, source), source, task, ev.length_controlled)
    if ev.compare_with is not None:
        p.other, p.other_uri = _other_responses(ev.compare_with, [str(r["id"]) for r in held]), ev.compare_with
    return p


def _other_responses(uri: str, held_ids: list[str]) -> dict[str, str]:
    """evaluation.compareWith's responses by prompt id, for this run's held-out prompts (ConfigError if none)."""
    samples = io.join(uri, "eval.jsonl")
    if not io.exists(samples):
        raise ConfigError(f"evaluation.compareWith: no eval.jsonl under {uri!r}; it must name the output folder"
                          " of a policy run that has finished its evaluation")
    with io.open_read(samples) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    wanted = set(held_ids)
    other = {str(r["id"]): str(r["policy"]) for r in rows if str(r.get("id")) in wanted}
    if not other:
        raise ConfigError(f"evaluation.compareWith: none of the {len(rows)} prompts in {samples} is held out in"
                          " this run; use the same prompts, rl.seed and evaluation.numPrompts in both runs")
    return other


def _with_interval(out: dict[str, float], name: str, value: float, low_high: tuple[float, float]) -> None:
    out[name] = value
    out[f"{name}Low"], out[f"{name}High"] = low_high


def figures(p: Plan, s: Samples, verdicts: list[judging.PairVerdict], harm_policy: list[float | None],
            harm_sft: list[float | None], harm_rows: list[int], seed: int) -> dict[str, float]:
    """Every evaluation figure (numbers only), with 95% bootstrap intervals. Pure."""
    n = len(verdicts)
    outcomes = [metrics.outcome(v.p_policy) for v in verdicts]
    ratios = metrics.length_ratios(s.policy, s.sft)
    out: dict[str, float] = {"evalPrompts": float(n)}
    _with_interval(out, "winRate", metrics.win_rate(outcomes), bootstrap.mean_interval(outcomes, seed=seed))
    _with_interval(out, "lengthControlledWinRate", metrics.length_controlled_win_rate(outcomes, ratios),
                   bootstrap.interval(n, lambda idx: metrics.length_controlled_win_rate(
                       [outcomes[i] for i in idx], [ratios[i] for i in idx]), resamples=500, seed=seed))
    # the win rate with the policy shown first / second: a judge with position bias shows it here
    for k, name in ((0, "winRatePolicyFirst"), (1, "winRatePolicySecond")):
        known = [metrics.outcome(x) for v in verdicts if (x := v.p_orders[k]) is not None]
        if known:
            out[name] = metrics.win_rate(known)
    both = [v for v in verdicts if None not in v.p_orders]
    if both:  # judge picked the same position in both orders
        out["judgeSamePositionRate"] = sum((v.p_orders[0] >= 0.5) == (v.p_orders[1] < 0.5)  # type: ignore[operator]
                                           for v in both) / len(both)
    out["meanPolicyPreference"] = sum(v.p_policy for v in verdicts) / n
    out["evalLengthRatio"] = sum(ratios) / n
    out["policyMeanLength"] = metrics.mean_length(s.policy)
    out["sftMeanLength"] = metrics.mean_length(s.sft)
    out["judgeAbstained"] = float(sum(v.p_orders == (None, None) for v in verdicts))

    # harmless rates: each response judged on its own; abstentions count as a tie (0.5)
    hp = [0.5 if x is None else x for x in harm_policy]
    hs = [0.5 if x is None else x for x in harm_sft]
    if hp:
        op, os_ = [metrics.outcome(x) for x in hp], [metrics.outcome(x) for x in hs]
        _with_interval(out, "harmlessRate", metrics.harmless_rate(hp), bootstrap.mean_interval(op, seed=seed))
        _with_interval(out, "sftHarmlessRate", metrics.harmless_rate(hs), bootstrap.mean_interval(os_, seed=seed))
        _with_interval(out, "harmlessRateDelta", out["harmlessRate"] - out["sftHarmlessRate"],
                       bootstrap.difference_interval(op, os_, seed=seed))
        policy_h = [s.policy[i] for i in harm_rows]
        sft_mean = metrics.mean_length([s.sft[i] for i in harm_rows])
        out["lengthControlledHarmlessRate"] = metrics.length_controlled_harmless_rate(hp, policy_h, sft_mean)
        out["harmlessPrompts"] = float(len(hp))

    # the judge-free oracle, on the prompts that carry ground truth
    po, so = oracle.scores(p.records, s.policy), oracle.scores(p.records, s.sft)
    _oracle_figures(out, "", [i for i in range(n) if po[i] is not None], po, so, seed)
    # per task, so a mixed prompt set shows where the policy moved
    for task in sorted({str(r["task"]) for r in p.records if r.get("task")}):
        idx = [i for i in range(n) if p.records[i].get("task") == task]
        key = task[0].upper() + task[1:]
        out[f"winRate{key}"] = metrics.win_rate([outcomes[i] for i in idx])
        _oracle_figures(out, key, [i for i in idx if po[i] is not None], po, so, seed)
    # over-refusal: the benign look-alikes (mustDecline: false) that a response declined
    rp = [oracle.over_refusal(r, x) for r, x in zip(p.records, s.policy, strict=True)]
    rs = [oracle.over_refusal(r, x) for r, x in zip(p.records, s.sft, strict=True)]
    benign = [i for i in range(n) if rp[i] is not None]
    if benign:
        a, b = [float(rp[i]) for i in benign], [float(rs[i]) for i in benign]  # type: ignore[arg-type]
        _with_interval(out, "overRefusalRate", sum(a) / len(a), bootstrap.mean_interval(a, seed=seed))
        _with_interval(out, "sftOverRefusalRate", sum(b) / len(b), bootstrap.mean_interval(b, seed=seed))
        out["overRefusalPrompts"] = float(len(benign))
    # the reward's agreement with the oracle on both policies' own held-out responses
    if s.reward_policy is not None and s.reward_sft is not None:
        _agreement(out, p, po, so, s.reward_policy, s.reward_sft, seed)
    return out


def _oracle_figures(out: dict[str, float], key: str, rows: list[int], po: list[float | None],
                    so: list[float | None], seed: int) -> None:
    """oracleScore{key}, sftOracleScore{key}, oracleDelta{key} with intervals, oraclePrompts{key}."""
    if not rows:
        return
    a, b = [float(po[i]) for i in rows], [float(so[i]) for i in rows]  # type: ignore[arg-type]
    _with_interval(out, f"oracleScore{key}", sum(a) / len(a), bootstrap.mean_interval(a, seed=seed))
    _with_interval(out, f"sftOracleScore{key}", sum(b) / len(b), bootstrap.mean_interval(b, seed=seed))
    _with_interval(out, f"oracleDelta{key}", out[f"oracleScore{key}"] - out[f"sftOracleScore{key}"],
                   bootstrap.difference_interval(a, b, seed=seed))
    out[f"oraclePrompts{key}"] = float(len(rows))


def _agreement(out: dict[str, float], p: Plan, po: list[float | None], so: list[float | None],
               rp: list[float], rs: list[float], seed: int) -> None:
    """rewardOracleAuc{Task} per task and rewardOracleAuc over all, each with a bootstrap interval over
    responses: the AUC of the reward for oracle-right vs oracle-wrong responses, both policies' responses
    pooled. Over all tasks it is stratified (pairs within a task only), so a reward model trained on one
    task is not credited or blamed for its scale on another. A resample without a (right, wrong) pair
    counts 0.5, no information."""
    n = len(po)
    pooled = [(rp[i], po[i], p.records[i].get("task")) for i in range(n) if po[i] is not None]
    pooled += [(rs[i], so[i], p.records[i].get("task")) for i in range(n) if so[i] is not None]
    tasks = sorted({str(r[2]) for r in pooled if r[2]})
    for key, rows in [("", pooled)] + [(t[0].upper() + t[1:], [r for r in pooled if r[2] == t]) for t in tasks]:
        scores, good = [r[0] for r in rows], [float(r[1]) for r in rows]  # type: ignore[arg-type]
        strata = [str(r[2]) for r in rows]
        value = metrics.auc(scores, good, strata)
        if value is None:
            continue

        def stat(idx: list[int], scores: list[float] = scores, good: list[float] = good,
                 strata: list[str] = strata) -> float:
            got = metrics.auc([scores[i] for i in idx], [good[i] for i in idx], [strata[i] for i in idx])
            return 0.5 if got is None else got

        _with_interval(out, f"rewardOracleAuc{key}", value, bootstrap.interval(len(rows), stat, resamples=500,
                                                                                seed=seed))


def head_to_head(p: Plan, s: Samples, rows: list[int], versus: list[judging.PairVerdict], seed: int
                 ) -> dict[str, float]:
    """This policy against evaluation.compareWith's on ``rows`` (indices of prompts both held out). Pure."""
    outcomes = [metrics.outcome(v.p_policy) for v in versus]
    out: dict[str, float] = {"headToHeadPrompts": float(len(rows))}
    _with_interval(out, "winRateVsOther", metrics.win_rate(outcomes), bootstrap.mean_interval(outcomes, seed=seed))
    mine = [oracle.score(p.records[i], s.policy[i]) for i in rows]
    theirs = [oracle.score(p.records[i], p.other[p.prompts[i].id]) for i in rows]
    pairs = [(a, b) for a, b in zip(mine, theirs, strict=True) if a is not None and b is not None]
    if pairs:
        a, b = [x for x, _ in pairs], [y for _, y in pairs]
        _with_interval(out, "oracleDeltaVsOther", (sum(a) - sum(b)) / len(a),
                       bootstrap.difference_interval(a, b, seed=seed))
    return out


def judge_and_score(p: Plan, s: Samples, engine: Any, out_dir: Path | str, seed: int,
                    use_chat_template: bool | None = None) -> tuple[dict[str, float], dict[str, Any]]:
    """Judges and scores (module docstring). Returns (metrics, summary record).

    ``engine``: a judge engine to borrow (not closed here), or None: the judge is loaded (feedback's
    open_engine: EngineLoadError, exit 3, when it cannot; EndpointUnavailableError, exit 1, when its
    endpoint is down) and closed after judging.
    """
    chat = p.judge.use_chat_template if use_chat_template is None else use_chat_template
    contexts = [q.text for q in p.prompts]
    tasks = [q.task for q in p.prompts]
    harm_rows = [i for i, t in enumerate(tasks) if t == "harmless"] or list(range(len(tasks)))
    owned = engine is None
    if owned:
        from rlaif_jobs.feedback import open_engine

        engine = open_engine(p.judge, "evaluation.judge")
    try:
        verdicts = judging.pairwise(engine, contexts, s.policy, s.sft, tasks, p.default_task, chat)
        harm = judging.harmless(engine, [contexts[i] for i in harm_rows] * 2,
                                [s.policy[i] for i in harm_rows] + [s.sft[i] for i in harm_rows], chat)
        if p.other:  # head to head with evaluation.compareWith's policy, on the prompts both held out
            both = [i for i, q in enumerate(p.prompts) if q.id in p.other]
            versus = judging.pairwise(engine, [contexts[i] for i in both], [s.policy[i] for i in both],
                                      [p.other[p.prompts[i].id] for i in both], [tasks[i] for i in both],
                                      p.default_task, chat)
    finally:
        if owned:
            engine.close()
    k = len(harm_rows)
    harm_policy, harm_sft = harm[:k], harm[k:]
    figs = figures(p, s, verdicts, harm_policy, harm_sft, harm_rows, seed)
    if p.other:
        figs.update(head_to_head(p, s, both, versus, seed))
    figs["judgeIsRewardSource"] = float(p.judge_is_reward_source)
    if not p.length_controlled:  # evaluation.lengthControlled: false
        for key in [k for k in figs if k.startswith("lengthControlled")]:
            del figs[key]
    hp = dict(zip(harm_rows, harm_policy, strict=True))
    hs = dict(zip(harm_rows, harm_sft, strict=True))
    rows = []
    for i, (q, rec, v) in enumerate(zip(p.prompts, p.records, verdicts, strict=True)):
        row = {"id": q.id, "task": q.task, "prompt": q.text, "policy": s.policy[i], "sft": s.sft[i],
               "pPolicyBetter": v.p_policy, "pPolicyBetterPolicyFirst": v.p_orders[0],
               "pPolicyBetterPolicySecond": v.p_orders[1],
               "oraclePolicy": oracle.score(rec, s.policy[i]), "oracleSft": oracle.score(rec, s.sft[i])}
        row.update({f: rec[f] for f in oracle.ORACLE_FIELDS if rec.get(f) is not None})
        if i in hp:
            row["pHarmlessPolicy"], row["pHarmlessSft"] = hp[i], hs[i]
        if s.reward_policy is not None and s.reward_sft is not None:
            row["rewardPolicy"], row["rewardSft"] = s.reward_policy[i], s.reward_sft[i]
        rows.append(row)
    io.write_jsonl(str(Path(out_dir) / "eval.jsonl"), rows)
    notes = []
    if "oracleScore" not in figs:
        notes.append("no oracle score: no held-out prompt carries answer, keyFact or mustDecline")
    if p.judge_is_reward_source:
        notes.append(f"the judge ({p.judge.model.uri}) is the model whose judgments trained this policy's reward:"
                     " its win rate is not independent evidence; see the oracle score")
    record = {"judge": p.judge.model.uri, "judgeEngine": p.judge.engine,
              "judgeIsRewardSource": p.judge_is_reward_source, "rewardLabeler": p.reward_labeler,
              "rubric": p.default_task, "comparedWith": p.other_uri, "harmlessJudgedOn": "harmless prompts" if any(
                  t == "harmless" for t in tasks) else "all prompts", "samples": "eval.jsonl", "notes": notes}
    log.info("evaluation on %d prompts: win rate %.3f [%.3f, %.3f], length-controlled %.3f; oracle %s vs SFT %s",
             len(verdicts), figs["winRate"], figs["winRateLow"], figs["winRateHigh"],
             figs["lengthControlledWinRate"], _fmt(figs.get("oracleScore")), _fmt(figs.get("sftOracleScore")))
    return figs, record


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"
