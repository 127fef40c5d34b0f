"""Stage 3: RL fine-tuning of the SFT policy against a reward model or the labeler (d-RLAIF).

``train_policy(config, reward=None)`` runs on every rank of a torchrun job (or alone). In order:
1. input checks before anything slow: output location, batch arithmetic for this world size, the
   prompt set (present, non-empty, enough for one step), the reward source (a reward model that
   loads, or a labeler that answers), the policy model;
2. joins the process group and builds DeepSpeed engines for the policy and (REINFORCE, PPO) the
   value model, ZeRO stage and precision from ``rl``; the frozen SFT reference sits beside them;
3. resumes from the newest complete checkpoint (both engines, optimizers, schedules, the step: the
   step fixes the prompt position) and pushes the resumed weights into the rollout engine;
4. per step (rlaif_jobs.policy.step): roll out ``samplesPerPrompt`` responses per prompt (vLLM or
   transformers), score them, compute log-probs of the reference and the values, the KL penalty, the
   algorithm's advantages and losses, update (``ppoEpochs`` passes for PPO; with one pass the policy's
   old log-probs come from the update's own forward), push the new weights to vLLM, log metrics,
   checkpoint every ``checkpointEverySteps`` and at the end;
5. exports ``<output>/model`` (an HF folder), generates the held-out responses of the policy and the
   SFT policy (policy.heldout) and writes them with ``summary.json`` marked evaluation pending:
   ``python -m rlaif_jobs.evaluation`` judges them in a fresh process (rlaif_jobs.launch runs it).

A reward source that fails mid-run (a labeler endpoint that stays down after its retries) raises
RewardError: the run stops, the checkpoints written so far stay, and a rerun resumes from the last.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import torch

from rlaif_jobs.config.common import dtype_name
from rlaif_jobs.config.policy import PolicyConfig
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.policy import heldout
from rlaif_jobs.policy.algorithms import get_algorithm
from rlaif_jobs.policy.models import load_policy, load_reference, load_value_model
from rlaif_jobs.policy.prompts import load_prompt_records, to_prompts
from rlaif_jobs.policy.rewards import RewardError, RewardSource
from rlaif_jobs.policy.rollout import RolloutEngine, TransformersRollout
from rlaif_jobs.policy.step import fused_old_logprobs, train_step
from rlaif_jobs.policy.step import rollout_seed as _rollout_seed
from rlaif_jobs.train import (
    BatchPlan,
    DistEnv,
    ShardedSampler,
    build_ds_config,
    build_engine,
    current_lr,
    init_distributed,
    plan_batches,
    shutdown,
    world_size_from_env,
    zero_stage_note,
)
from rlaif_jobs.train.run import TrainingRun, output_dir

log = logging.getLogger(__name__)
RECENT = 5  # steps averaged for the summary's final meanReward / kl


def prompts_per_rank(config: PolicyConfig, plan: BatchPlan) -> int:
    """Prompts each rank rolls out per step: its share of rl.batchSize responses / samplesPerPrompt."""
    k = config.rl.samples_per_prompt
    if plan.per_rank_batch % k:
        raise ConfigError(
            f"rl.batchSize: {plan.global_batch} responses over {plan.world_size} rank(s) is"
            f" {plan.per_rank_batch} per rank, not a multiple of rl.samplesPerPrompt {k} (a prompt's"
            " responses stay on one rank, as RLOO's leave-one-out group needs)")
    return plan.per_rank_batch // k


def build_reward(config: PolicyConfig, device: Any, records: list[dict] | None = None) -> RewardSource:
    """The reward source the config names (reward model folder, the labeler for d-RLAIF, or the oracle on
    ``records``: every prompt record it will score, training and held out)."""
    from rlaif_jobs.feedback.engines import open_engine
    from rlaif_jobs.policy.rewards import DirectLabelerReward, OracleReward, RewardModelReward

    if config.oracle_reward is not None:
        return OracleReward(records or [])
    if config.reward_model_uri is not None:
        return RewardModelReward(config.reward_model_uri, device=str(device),
                                 batch_size=max(config.rl.micro_batch_size, 8))
    spec = config.direct_reward
    assert spec is not None  # PolicyConfig's validator: exactly one reward source
    return DirectLabelerReward(open_engine(spec.labeler, "directReward.labeler"), task=spec.task,
                               template=spec.template, use_chat_template=spec.labeler.use_chat_template,
                               batch_size=spec.labeler.batch_size)


def _make_rollout(config: PolicyConfig, policy_path: str, module: Any, tokenizer: Any, env: DistEnv,
                  precision: str) -> RolloutEngine:
    """The configured rollout engine; vLLM falls back to transformers (with a warning) where it cannot run."""
    if config.rollout.engine == "vllm":
        from rlaif_jobs.policy.rollout_vllm import RolloutEngineError, VLLMRollout

        try:
            return VLLMRollout(policy_path, tokenizer, dtype=dtype_name(precision),
                               max_model_len=config.rl.max_length, seed=config.rl.seed,
                               gpu_memory_utilization=config.rollout.gpu_memory_utilization,
                               world_size=env.world_size,
                               max_sequences=config.rl.batch_size // env.world_size)
        except RolloutEngineError as err:
            log.warning("rollout.engine vllm cannot run here (%s); falling back to transformers generate", err)
    return TransformersRollout(module, tokenizer, env.device)


def policy_weights(engine: Any) -> list[tuple[str, Any]]:
    """(HF name, full tensor) of every weight of the policy, tied ones under each of their names.

    vLLM must receive tied weights under every name (``lm_head.weight`` as well as
    ``model.embed_tokens.weight``): its in-place reload restores a layer that received nothing to its
    old values. Under ZeRO 0-2 the tensors are the training module's own (no copy); under ZeRO-3 the
    partitions are gathered and copied, which needs one full copy of the model in memory for a moment.
    """
    module = engine.module
    if not engine.zero_optimization_partition_weights():
        return list(module.state_dict().items())
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(module.parameters())):
        return [(name, tensor.detach().clone()) for name, tensor in module.state_dict().items()]


def _device_from_env() -> str:
    """This rank's device before the process group exists: cuda:LOCAL_RANK with CUDA, else cpu."""
    import os

    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"


def train_policy(config: PolicyConfig, reward: RewardSource | None = None) -> dict[str, Any]:
    """Trains, exports, evaluates and reports (see the module docstring).

    ``reward`` replaces the config's reward source (tests and experiments: a ProgrammaticReward, or a
    labeler engine built once for several runs); the config must still name one. Returns the summary.
    Raises ConfigError subclasses (exit code 3) for bad input before training; RewardError when
    scoring fails mid-run (checkpoints kept).
    """
    t_start = time.time()
    spec = config.rl
    algo = get_algorithm(spec.algorithm)
    out = output_dir(config.output.uri, "the policy trainer")

    # 1. Input checks, cheapest first, before any process group exists.
    plan = plan_batches(spec, world_size_from_env(), "rl")
    n_prompts_rank = prompts_per_rank(config, plan)
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    ds_config = build_ds_config(spec, plan, device_type, "rl")
    if spec.max_new_tokens >= spec.max_length:
        raise ConfigError(f"rl.maxNewTokens: {spec.max_new_tokens} leaves no room for the prompt within"
                          f" rl.maxLength {spec.max_length}")
    records = load_prompt_records(config.prompts)
    # --- evaluation plan (policy.heldout): held-out prompts and judge; ConfigError if it cannot run
    records, eval_plan = heldout.plan(config, records, load_prompt_records)
    if config.oracle_reward is not None:
        from rlaif_jobs.evaluation.oracle import score as oracle_score

        if not any(oracle_score(r, "") is not None for r in records):
            raise ConfigError(f"reward.oracle: no training prompt in {config.prompts.uri} carries ground truth"
                              " (answer, keyFact or mustDecline), so every reward would be empty; use prompts"
                              " that do, or another reward")
    scored = records + (eval_plan.records if eval_plan else [])
    prompts_per_step = n_prompts_rank * plan.world_size
    if len(records) < prompts_per_step:
        raise ConfigError(f"prompts: {config.prompts.uri} has {len(records)} training prompts, fewer than one"
                          f" step's {prompts_per_step} (rl.batchSize {spec.batch_size} / samplesPerPrompt"
                          f" {spec.samples_per_prompt}); add prompts or lower rl.batchSize")

    # Reward sources load before the process group exists, so a bad one fails fast (exit 3, or 1 for
    # an endpoint that is down) and cannot leave other ranks waiting; except an in-process vLLM
    # labeler, which must join the trainer's group rather than create its own.
    own_reward = reward is None
    if reward is None and (config.direct_reward is None or config.direct_reward.labeler.engine != "vllm"):
        reward = build_reward(config, _device_from_env(), scored)
    created_group = not torch.distributed.is_initialized()
    env = init_distributed()
    device = env.device
    if reward is None:
        reward = build_reward(config, device, scored)
    torch.manual_seed(spec.seed)
    policy_path, tokenizer, policy_model = load_policy(config.policy)
    prompts = to_prompts(records, tokenizer, spec.max_length - spec.max_new_tokens)
    held = to_prompts(eval_plan.records if eval_plan else [], tokenizer, spec.max_length - spec.max_new_tokens)

    # 2. Engines.
    prompt_plan = BatchPlan(global_batch=prompts_per_step, micro_batch=n_prompts_rank, grad_accum=1,
                            world_size=plan.world_size)
    sampler = ShardedSampler(len(prompts), prompt_plan, env.rank, seed=spec.seed)
    total_steps = spec.max_steps or max(1, math.floor(spec.epochs * sampler.steps_per_epoch))
    epochs = spec.ppo_epochs if algo.multi_epoch else 1
    policy = build_engine(policy_model, spec, ds_config, total_steps * epochs)
    engines: dict[str, Any] = {"policy": policy}
    value = None
    if algo.uses_value:
        value = build_engine(load_value_model(policy_path, config.policy), spec, ds_config, total_steps * epochs,
                             lr=spec.value_learning_rate)
        engines["value"] = value
    reference = load_reference(policy_path, config.policy, spec.precision, device)

    # 3. Resume.
    run = TrainingRun(out, spec, env, engines, total_steps, desc="policy")
    start, saved, metrics = run.start, run.saved, run.metrics
    rollout = _make_rollout(config, policy_path, policy.module, tokenizer, env, spec.precision)
    sync_seconds: list[float] = []
    if run.resumed and rollout.needs_sync:
        sync_seconds.append(rollout.load_weights(policy_weights(policy)))
    fused = fused_old_logprobs(algo, spec, plan, policy.module)
    if env.is_main:
        log.info("%s: %d prompts (%d held out), %d steps of %d prompts x %d samples; rollouts by %s; reward %s;"
                 " old-policy log-probs %s", algo.name, len(prompts), len(held), total_steps, prompts_per_step,
                 spec.samples_per_prompt, rollout.name, reward.name,
                 "from the update's forward" if fused else "from a separate pass")

    # 4. Train.
    recent: list[dict[str, float]] = list(saved.get("recent", []))
    first: dict[str, float] | None = saved.get("first")
    times = {"rollout": 0.0, "reward": 0.0, "prepare": 0.0, "update": 0.0, "sync": 0.0}
    samples_done = 0
    try:
        for sb in sampler.steps(start, total_steps):
            step = sb.global_step
            mine = [prompts[i] for mb in sb.micro_batches for i in mb]
            row = train_step(config, algo, step, env, mine, rollout, reward, policy, value, reference,
                             tokenizer, plan, times, fused, doing=run.bar.phase)
            samples_done += plan.global_batch
            if rollout.needs_sync:
                t = rollout.load_weights(policy_weights(policy))
                times["sync"] += t
                sync_seconds.append(t)
                row["syncSeconds"] = t
            row["learningRate"] = current_lr(policy)
            first = first or {k: row[k] for k in ("meanReward", "kl")}
            recent = (recent + [{k: row[k] for k in ("meanReward", "kl", "objective")}])[-RECENT:]
            if step % spec.log_every_steps == 0 or step == total_steps:
                metrics.log(step, **row)
            run.bar.set_postfix(reward=f"{row['meanReward']:.3f}", kl=f"{row['kl']:.3f}")
            run.step_done(step, {"recent": recent, "first": first})
    except RewardError as err:
        run.bar.close()
        kept = run.ckpt.latest()
        where = f"the last checkpoint ({kept.path.name}) is kept; rerun to resume from it" if kept else \
            "no checkpoint was written yet"
        metrics.log(step, event="failed", error=str(err)[:500])
        metrics.close()
        rollout.close()
        if own_reward:
            reward.close()
        if created_group:
            shutdown()
        raise RewardError(f"{err} (at step {step}; {where})") from err
    run.finish({"recent": recent, "first": first})

    # 5. Export, evaluate, report.
    run.export(policy, tokenizer)
    steps_done = run.steps_done
    results: dict[str, Any] = {}
    if recent:
        for k in ("meanReward", "kl", "objective"):
            results[k] = sum(r[k] for r in recent) / len(recent)
    if first:
        results["initialMeanReward"] = first["meanReward"]
        results["initialKl"] = first["kl"]
    train_seconds = sum(times.values())
    results.update({
        "steps": total_steps, "stepsThisRun": steps_done, "resumedFromStep": start,
        "samplesPerSecond": samples_done / train_seconds if train_seconds > 0 else float("nan"),
        **{f"{k}Seconds": v for k, v in times.items()},
        "meanSyncSeconds": sum(sync_seconds) / len(sync_seconds) if sync_seconds else 0.0,
        "worldSize": env.world_size,
    })
    # --- evaluation (policy.heldout): responses of both policies with the same decoding, written
    # with a summary marked pending; the judge loads in a fresh process after this one exits
    # (python -m rlaif_jobs.evaluation, run by rlaif_jobs.launch), so memory never holds both.
    eval_record: dict[str, Any] | None = None
    if eval_plan is not None:
        eval_plan.prompts = held
        samples = heldout.generate(eval_plan, rollout, reference, tokenizer, env, config,
                                   _rollout_seed(spec.seed, heldout.EVAL_SEED_STEP, 0))
        heldout.score_rewards(eval_plan, samples, reward)  # the reward's agreement with the oracle
        if env.is_main:
            eval_record = heldout.write_pending(eval_plan, samples, config)
    rollout.close()
    if own_reward:
        reward.close()
    # --- end of evaluation
    results["elapsedSeconds"] = time.time() - t_start
    summary = run.report(
        config.output.uri, "policy", results,
        extra={"algorithm": algo.name, "rolloutEngine": rollout.name, "reward": reward.name,
               "policy": config.policy.uri, "evaluation": eval_record,
               "deepspeed": {**zero_stage_note(spec, ds_config),
                             "precision": spec.precision, "gradientAccumulation": plan.grad_accum}})
    if created_group:  # leave a process group this call did not create (a caller's, or vLLM's) alone
        shutdown()
    return summary
