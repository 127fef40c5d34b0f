"""The evaluation's hand-off from the policy trainer's process to a fresh process that judges.

Why: the judge (often a 1.5B LLM) must not load into the process that trained. That process still
holds what training left (DeepSpeed, the rollout engine, the allocator's pages), so it would peak at
training leftovers plus the judge. So evaluation is split in two processes:

- the trainer (rank 0), after generating both policies' responses: ``policy.heldout.write_pending`` writes the
  held-out prompts (their records, ground truth included) with the two responses to
  ``<out>/eval-samples.jsonl`` and returns the ``evaluation`` record (``status: pending``) that the
  trainer puts in ``summary.json``;
- ``python -m rlaif_jobs.evaluation --config FILE`` (run by ``rlaif_jobs.launch`` after torchrun's
  workers have exited, on node 0 only): ``complete`` loads the judge, judges and scores, writes
  ``eval.jsonl`` and completes ``summary.json`` (the figures in ``metrics``, ``status: done``, the
  trainer's and the evaluator's pids). Every write is atomic.

``awaiting(config)``: the trainer finished (model exported, samples written) for this very config and
only the judging is missing, so a rerun (the launcher) runs the evaluation without retraining.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from rlaif_jobs import io, progress, summaries
from rlaif_jobs.config.policy import PolicyConfig
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.evaluation.run import Samples, judge_and_score, plan_for

log = logging.getLogger(__name__)
SAMPLES = "eval-samples.jsonl"
PENDING, DONE = "pending", "done"
COMMAND = "python -m rlaif_jobs.evaluation --config FILE"


@dataclass(frozen=True)
class HeldPrompt:
    """A held-out prompt as the judge needs it (the trainer's Prompt without its token ids)."""

    id: str
    text: str
    task: str | None


def config_digest(config: PolicyConfig) -> str:
    """Identifies the config the samples were generated under (a rerun with another config retrains)."""
    return hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]


def _pending(summary: dict[str, Any] | None) -> dict[str, Any] | None:
    ev = (summary or {}).get("evaluation")
    return ev if isinstance(ev, dict) and ev.get("status") == PENDING else None


def awaiting(config: PolicyConfig) -> bool:
    """Whether training and sampling are done for ``config`` and only the judging is left."""
    uri = config.output.uri
    if not config.evaluation.enabled or io.is_remote(uri):
        return False
    ev = _pending(summaries.read_summary(uri))
    return ev is not None and ev.get("configDigest") == config_digest(config) and io.exists(io.join(uri, SAMPLES))


def complete(config: PolicyConfig, engine: Any = None) -> dict[str, Any]:
    """Judges the pending samples of the run in ``config.output.uri`` and completes its summary.

    ``engine``: a judge engine to borrow (tests; not closed), else the config's judge is loaded. Returns
    the summary (unchanged when nothing is pending: evaluation disabled or already done). ConfigError
    when the trainer has not finished there, or finished under another config.
    """
    t0 = time.time()
    uri = config.output.uri
    summary = summaries.read_summary(uri)
    if summary is None:
        raise ConfigError(f"output.uri: no summary.json under {uri!r}: the policy trainer has not finished"
                          " there; run the policy stage first (rlaif_jobs.launch runs the evaluation after it)")
    ev = _pending(summary)
    if ev is None:
        log.info("evaluation: nothing pending in %s (%s)", uri,
                 "evaluation.enabled: false" if summary.get("evaluation") is None else "already done")
        return summary
    if ev.get("configDigest") != config_digest(config):
        raise ConfigError(f"--config: the evaluation samples in {uri!r} were generated under another config;"
                          " rerun the policy stage with this config (it retrains) or use its own config")
    with io.open_read(io.join(uri, SAMPLES)) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    p = plan_for(config, [r["record"] for r in rows])
    p.prompts = [HeldPrompt(str(r["id"]), str(r["prompt"]), r.get("task")) for r in rows]
    scored = all("rewardPolicy" in r for r in rows)
    samples = Samples([str(r["policy"]) for r in rows], [str(r["sft"]) for r in rows],
                      [float(r["rewardPolicy"]) for r in rows] if scored else None,
                      [float(r["rewardSft"]) for r in rows] if scored else None)
    progress.report("loading the judge", 0)
    figures, record = judge_and_score(p, samples, engine, io.local_path(uri), seed=config.rl.seed)
    seconds = time.time() - t0
    metrics = {**summary["metrics"], **figures, "evaluationSeconds": seconds,
               "elapsedSeconds": summary["metrics"].get("elapsedSeconds", 0.0) + seconds}
    extra = {k: v for k, v in summary.items() if k not in ("stage", "outputs", "metrics")}
    extra["evaluation"] = {**record, "status": DONE, "trainerPid": ev.get("trainerPid"), "evaluatorPid": os.getpid(),
                           "configDigest": ev.get("configDigest")}
    log.info("evaluation done in %.0f s", seconds)
    return summaries.write_summary(uri, summary["stage"], summary["outputs"], metrics, extra)
