"""The trainer's half of the evaluation: hold prompts out, answer them with both policies, hand them off.

The evaluation runs in two processes (rlaif_jobs.evaluation.handoff says why). This module is the part
that needs the trainer's models, so it lives with them; ``rlaif_jobs.evaluation`` only reads what it
writes and never imports policy code. In the order the trainer calls them:
1. ``plan(config, records, load)`` at input-check time: the held-out prompts (``evaluation.prompts``,
   which must share no item with the training prompts, or at most a fifth of the prompts, drawn by item
   with ``rl.seed``: policy.prompts.split_eval) and the judge (evaluation.run.plan_for); a ConfigError
   when evaluation is enabled but cannot run, so nothing is skipped silently;
2. ``generate(plan, rollout, reference, ...)`` after training, on every rank: the policy's responses,
   then the SFT policy's with the SAME decoding (evaluation.temperature: greedy by default; max tokens,
   seed) from the same rollout engine loaded with the reference weights (no extra model is loaded);
3. ``score_rewards(plan, samples, reward)``: both policies' responses scored by the run's reward
   source, for the reward's agreement with the oracle;
4. ``write_pending(plan, samples, config)`` on rank 0: ``<out>/eval-samples.jsonl`` and the summary's
   pending ``evaluation`` record; ``python -m rlaif_jobs.evaluation`` judges them in a fresh process.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rlaif_jobs import io
from rlaif_jobs.config.policy import PolicyConfig
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.evaluation.handoff import COMMAND, PENDING, SAMPLES, config_digest
from rlaif_jobs.evaluation.run import Plan, Samples, plan_for
from rlaif_jobs.policy.prompts import shared_items, split_eval
from rlaif_jobs.policy.rollout import TransformersRollout

log = logging.getLogger(__name__)
EVAL_SEED_STEP = 10**6  # the rollout seed's "step" for evaluation: never a training step


def plan(config: PolicyConfig, records: list[dict], load: Any) -> tuple[list[dict], Plan | None]:
    """(training records, the evaluation plan or None when evaluation is disabled).

    ``load(ref)`` reads a DatasetRef's prompt records (the trainer's loader). Raises ConfigError when
    evaluation is enabled but has no judge or no prompts to hold out.
    """
    ev = config.evaluation
    if not ev.enabled:
        return records, None
    config.judge_spec()  # no judge: fail before loading the evaluation prompts
    if ev.prompts is not None:
        held = load(ev.prompts)[: ev.num_prompts]
        shared = shared_items(records, held)
        if shared:
            raise ConfigError(f"evaluation.prompts: {len(shared)} held-out item(s) are also training prompts in"
                              f" {config.prompts.uri} (first: {shared[0]}); an evaluation on what the policy"
                              " trained on shows nothing: use disjoint files, or leave evaluation.prompts unset"
                              " to hold out part of the prompts by item (group field)")
    else:
        n = min(ev.num_prompts, len(records) // 5)
        if n < 1:
            raise ConfigError(f"evaluation: {len(records)} prompts leave none to hold out (at most a fifth is"
                              " held out); add prompts, set evaluation.prompts, or evaluation.enabled: false")
        records, held = split_eval(records, n, config.rl.seed)
    return records, plan_for(config, held)


def generate(p: Plan, rollout: Any, reference: Any, tokenizer: Any, env: Any, config: PolicyConfig,
             seed: int) -> Samples:
    """Policy responses, then SFT responses with the same decoding (module docstring, step 2)."""
    spec, temperature = config.rl, config.evaluation.temperature
    ids = [q.ids for q in p.prompts]
    args = (1, spec.max_new_tokens, temperature, spec.top_p if temperature > 0 else 1.0, seed)
    policy = rollout.generate(ids, *args)
    if rollout.needs_sync:  # the same engine, now sampling from the SFT weights
        rollout.load_weights(reference.state_dict().items())
        sft = rollout.generate(ids, *args)
    else:
        sft = TransformersRollout(reference, tokenizer, env.device).generate(ids, *args)
    return Samples([g[0].text for g in policy], [g[0].text for g in sft])


def score_rewards(p: Plan, s: Samples, reward: Any) -> None:
    """Scores both policies' held-out responses with the run's reward source (the trainer, which holds
    it), so the evaluation can tell how well the reward agrees with the oracle. Sets s.reward_*."""
    texts, tasks = [q.text for q in p.prompts], [q.task for q in p.prompts]
    scores = reward.score(texts * 2, s.policy + s.sft, tasks * 2)
    n = len(texts)
    s.reward_policy, s.reward_sft = [float(x) for x in scores[:n]], [float(x) for x in scores[n:]]


def write_pending(p: Plan, samples: Samples, config: PolicyConfig) -> dict[str, Any]:
    """Writes ``<out>/eval-samples.jsonl`` (rank 0, after generation); returns the summary's
    ``evaluation`` record marking the evaluation as pending."""
    rows = [{"id": q.id, "task": q.task, "prompt": q.text, "policy": a, "sft": b, "record": rec}
            for q, rec, a, b in zip(p.prompts, p.records, samples.policy, samples.sft, strict=True)]
    if samples.reward_policy is not None and samples.reward_sft is not None:
        for row, a, b in zip(rows, samples.reward_policy, samples.reward_sft, strict=True):
            row["rewardPolicy"], row["rewardSft"] = a, b
    io.write_jsonl(io.join(config.output.uri, SAMPLES), rows)
    log.info("evaluation: %d held-out prompts with both responses in %s; the judge runs in a fresh process"
             " (%s)", len(rows), SAMPLES, COMMAND)
    return {"status": PENDING, "samples": SAMPLES, "trainerPid": os.getpid(), "configDigest": config_digest(config),
            "next": f"{COMMAND} judges them (rlaif_jobs.launch runs it after training)"}
