"""The DeepSpeed training layer shared by the reward trainer and the policy (RL) trainer.

Pieces, each in its own module, each usable alone:

- ``dist``: ``init_distributed() -> DistEnv`` from torchrun's environment (world of one without it;
  gloo on CPU, NCCL on GPU); ``world_size_from_env()`` before any process group exists;
  ``barrier``, ``all_reduce_sum``, ``broadcast_object``, ``shutdown``.
- ``dsconfig``: ``plan_batches(spec, world, field_prefix) -> BatchPlan`` (grad accumulation =
  batchSize / (microBatchSize x world)), ``build_ds_config(spec, plan, device_type, field_prefix)``
  (ZeRO stage, bf16/fp16/fp32, clipping, offload; the user's ``deepspeed.config`` merged over it).
  Both raise ``TrainingConfigError`` (a ConfigError: exit code 3) naming the field.
- ``engine``: ``build_engine(model, spec, ds_config, total_steps, lr=None)`` -> DeepSpeedEngine with
  torch AdamW and warm-up + linear decay (call it once per model: policy and value get one each);
  ``export_hf_model(engine, dir, env, tokenizer)`` writes a standard HF folder atomically (gathers
  ZeRO-3 partitions).
- ``checkpoint``: ``CheckpointManager(root, keep, env)``; ``.save({"policy": e1, "value": e2}, step,
  state)`` every N steps and at the end; ``.load(engines) -> CheckpointInfo | None`` restores the
  newest COMPLETE checkpoint (weights, optimizer, LR schedule) and returns the saved state (your data
  position). A ``COMPLETE`` marker and then ``latest`` are written last, so a killed save is ignored.
- ``sampler``: ``ShardedSampler(n, plan, rank, seed).steps(start_step, total_steps)`` yields each
  rank's disjoint micro-batches per optimizer step, reproducibly, so the step count is the data
  position; ``regroup_by_length`` re-cuts a step's micro-batches by length (less padding, same
  gradient); ``eval_shards`` splits an evaluation set with equal batch counts per rank.
- ``metrics``: ``MetricsLogger(path, enabled=env.is_main, resume_step, trackers)`` writes JSONL, drops
  lines past the resumed step, and fans each line out to the experiment trackers.
- ``trackers``: ``Trackers(tracking, out, resume_step, params)``: TensorBoard, MLflow, W&B (the config's
  ``tracking``); ``check_tracking(tracking)`` refuses a missing package before anything slow.
- ``progress``: ``progress_bar(total, initial, enabled=env.is_main)``.

- ``run``: ``TrainingRun(out, spec, env, engines, total_steps, desc)`` puts these together for a
  trainer: resumes on construction (``.start``, ``.saved``), ``.step_done(step, state)`` checkpoints on
  the spec's cadence, ``.finish``, ``.export``, ``.report`` (summary.json and the termination message).

A trainer's outline (what ``rlaif_jobs.reward.trainer`` does)::

    plan = plan_batches(spec, world_size_from_env(), "training")      # check inputs before anything slow
    cfg = build_ds_config(spec, plan, device_type, "training")
    env = init_distributed()
    engine = build_engine(model, spec, cfg, total_steps)
    run = TrainingRun(out, spec, env, {"model": engine}, total_steps, desc="reward")
    for batch in ShardedSampler(n, plan, env.rank, spec.seed).steps(run.start, total_steps):
        for micro in batch.micro_batches:
            loss = ...; engine.backward(loss); engine.step()
        run.step_done(batch.global_step, {...})                        # checkpoints every N steps
    run.finish({...}); run.export(engine, tokenizer); run.report(uri, "reward", metrics)
"""

from rlaif_jobs.train.checkpoint import CheckpointError, CheckpointInfo, CheckpointManager
from rlaif_jobs.train.dist import (
    DistEnv,
    all_reduce_sum,
    barrier,
    broadcast_object,
    init_distributed,
    shutdown,
    world_size_from_env,
)
from rlaif_jobs.train.dsconfig import (
    BatchPlan,
    TrainingConfigError,
    build_ds_config,
    deep_merge,
    plan_batches,
    zero_stage_note,
)
from rlaif_jobs.train.engine import build_engine, current_lr, export_hf_model
from rlaif_jobs.train.metrics import MetricsLogger, read_metrics
from rlaif_jobs.train.progress import progress_bar
from rlaif_jobs.train.sampler import ShardedSampler, StepBatch, eval_shards, regroup_by_length

__all__ = [
    "BatchPlan", "CheckpointError", "CheckpointInfo", "CheckpointManager", "DistEnv", "MetricsLogger",
    "ShardedSampler", "StepBatch", "TrainingConfigError", "all_reduce_sum", "barrier", "broadcast_object",
    "build_ds_config", "build_engine", "current_lr", "deep_merge", "eval_shards", "export_hf_model",
    "init_distributed", "plan_batches", "progress_bar", "read_metrics", "regroup_by_length", "shutdown",
    "zero_stage_note",
    "world_size_from_env",
]
