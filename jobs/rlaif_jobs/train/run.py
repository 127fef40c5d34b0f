"""The skeleton every DeepSpeed trainer shares around its own step: output folder, resume, checkpoint
cadence, progress, export and summary. The reward trainer and the policy trainer differ only in their
data, models and step; this is the rest.

    out = output_dir(config.output.uri, "reward trainer")            # before anything slow
    ...
    run = TrainingRun(out, spec, env, {"model": engine}, total_steps, desc="reward",
                      tracking=config.tracking, params=config.to_wire())  # trackers start here (rank 0)
    # run.start: the step to resume from; run.saved: the state saved with that checkpoint
    for batch in sampler.steps(run.start, total_steps):
        ...                                                           # the trainer's own step
        run.step_done(batch.global_step, {...state to save...})
    run.finish({...})                                                 # final checkpoint if needed
    run.export(engine, tokenizer)                                     # <out>/model
    summary = run.report(config.output.uri, "reward", results, extra)  # metrics closed, summary.json

Inputs: the local output folder, the TrainerSpec (keepCheckpoints, checkpointEverySteps), the
DistEnv, the named DeepSpeed engines to checkpoint together, the run's total optimizer steps, and the
stage's ``tracking`` spec with the config to record as the tracked runs' parameters (``params``).
Call ``check_tracking(config.tracking)`` before anything slow: a tracker whose package is missing then
fails the stage at once (exit 3) rather than after the models loaded.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rlaif_jobs import io, summaries
from rlaif_jobs.config.tracking import TrackingSpec
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.train.checkpoint import CheckpointManager
from rlaif_jobs.train.dist import DistEnv
from rlaif_jobs.train.engine import export_hf_model
from rlaif_jobs.train.lora import export_lora, is_peft
from rlaif_jobs.train.metrics import MetricsLogger
from rlaif_jobs.train.progress import progress_bar
from rlaif_jobs.train.trackers import Trackers

log = logging.getLogger(__name__)


def output_dir(uri: str, who: str) -> Path:
    """The local output folder for ``uri``; an object store is refused (DeepSpeed checkpoints need a
    filesystem). ``who`` names the trainer in the error ("the reward trainer")."""
    if io.is_remote(uri):
        raise ConfigError(f"output.uri: {uri!r} is an object store; {who} writes DeepSpeed checkpoints and"
                          " the model to a filesystem: use a mounted volume path")
    return io.local_path(uri)


class TrainingRun:
    """Resumes from the newest complete checkpoint on construction; saves on the spec's cadence."""

    def __init__(self, out: Path, spec: Any, env: DistEnv, engines: dict[str, Any], total_steps: int,
                 desc: str, tracking: TrackingSpec | None = None, params: Mapping[str, Any] | None = None) -> None:
        self.out, self.env, self.engines, self.total_steps = out, env, engines, total_steps
        self.every = spec.checkpoint_every_steps
        self.lora = getattr(spec, "lora", None)
        self.ckpt = CheckpointManager(out / "checkpoints", spec.keep_checkpoints, env)
        info = self.ckpt.load(engines)
        self.resumed = info is not None
        self.start = info.step if info else 0
        self.saved: dict[str, Any] = info.state if info else {}
        # In the summary (and the metrics' "resumed" event) when the checkpoint came from another world size.
        self.resume_note: dict[str, Any] = (
            {"resumedFromWorldSize": info.resharded_from, "checkpointResharded": "universal"}
            if info is not None and info.resharded_from is not None else {})
        resume_step = self.start if info else None
        trackers = Trackers(tracking, out, resume_step, params, stage=desc) if env.is_main else None
        self.metrics = MetricsLogger(out / "metrics.jsonl", enabled=env.is_main, resume_step=resume_step,
                                     trackers=trackers)
        if info:
            self.metrics.log(self.start, event="resumed", checkpoint=info.path.name, **self.resume_note)
        self.last_saved = self.start if info else -1
        self.steps_done = 0
        self.bar = progress_bar(total_steps, initial=self.start, enabled=env.is_main, desc=desc)

    def save(self, step: int, state: dict[str, Any]) -> None:
        self.ckpt.save(self.engines, step, state)
        self.last_saved = step

    def step_done(self, step: int, state: dict[str, Any]) -> None:
        """Counts a finished optimizer step; checkpoints every checkpointEverySteps and at the last step
        (``state``: what to save beside the engines, e.g. the data position and running averages)."""
        self.steps_done += 1
        self.bar.update(1)
        if step % self.every == 0 or step == self.total_steps:
            self.save(step, state)

    def finish(self, state: dict[str, Any]) -> None:
        """Closes the progress bar; saves the final step unless it already is the newest checkpoint."""
        self.bar.close()
        if self.last_saved != self.total_steps and self.start < self.total_steps:
            self.save(self.total_steps, state)

    def export(self, engine: Any, tokenizer: Any, base_uri: str | None = None) -> Path:
        """``<out>/model`` as an HF folder (every rank calls it: ZeRO-3 gathers). A LoRA model is written
        as ``lora.export`` says (train/lora.py: merged, or the adapter folder noting ``base_uri``)."""
        if self.lora is not None and is_peft(engine.module):
            return export_lora(engine, self.out / "model", self.env, tokenizer, self.lora, base_uri or "")
        return export_hf_model(engine, self.out / "model", self.env, tokenizer)

    def report(self, uri: str, kind: str, results: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        """Closes the metrics (the trackers record ``results`` as their runs' summary); writes
        ``summary.json`` with the model as output on rank 0 and returns it (elsewhere returns ``results``);
        a resharded resume adds ``resumedFromWorldSize`` to ``extra``, a tracker that failed on the way
        ``trackersFailed`` to the metrics and its field to ``trackingFailed``."""
        extra = {**self.resume_note, **extra}
        failed = self.metrics.close(summary=results)
        if failed:  # the trackers the spec enabled that stopped getting metrics: in the status, not a log line
            results = {**results, "trackersFailed": len(failed)}
            extra = {**extra, "trackingFailed": failed}
        if not self.env.is_main:
            return results
        summary = summaries.write_summary(uri, kind, {summaries.OUTPUT_MODEL: io.join(uri, "model")}, results, extra)
        log.info("done: %s", {k: round(v, 4) if isinstance(v, float) else v for k, v in results.items()})
        return summary
