"""Stage 3: RL fine-tuning of the SFT policy against a reward model or the labeler (d-RLAIF); rl.algorithm
dpo trains on the preference labels instead (policy.dpo, which train_policy hands the config to).

``train_policy(config, reward=None)`` runs on every rank of a torchrun job (or alone). In order:
1. input checks before anything slow: output location, batch arithmetic for this world size, the
   prompt set (present, non-empty, enough for one step), the reward source (a reward model that
   loads, or a labeler that answers), the policy model;
2. joins the process group and builds DeepSpeed engines for the policy and (REINFORCE, PPO) the
   value model, ZeRO stage and precision from ``rl``; the frozen SFT reference sits beside them;
   with ``rl.lora`` the policy (and value backbone) carry PEFT adapters, only they train, and the
   reference is the policy with its adapters off (train/lora.py);
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
from dataclasses import dataclass, field
from typing import Any

import torch

from rlaif_jobs.config.common import dtype_name
from rlaif_jobs.config.policy import PolicyConfig
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.evaluation.run import Plan
from rlaif_jobs.policy import heldout
from rlaif_jobs.policy.algorithms import get_algorithm
from rlaif_jobs.policy.models import load_policy, load_reference, load_value_model
from rlaif_jobs.policy.prompts import load_prompt_records, to_prompts
from rlaif_jobs.policy.rewards import RewardError, RewardSource
from rlaif_jobs.policy.rollout import RolloutEngine, TransformersRollout
from rlaif_jobs.policy.step import StepContext, fused_old_logprobs, train_step
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
from rlaif_jobs.train.lora import AdapterOff, adapter_state_dict, apply_lora, is_peft, merged_state_dict
from rlaif_jobs.train.run import TrainingRun, output_dir
from rlaif_jobs.train.trackers import check_tracking

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
                               max_sequences=config.rl.batch_size // env.world_size,
                               lora_rank=config.rl.lora.rank if config.rl.lora is not None else None,
                               sleep_mode=config.rollout.sleep_mode)
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


def sync_mode(rollout: RolloutEngine, module: Any) -> str:
    """How ``sync_rollout`` reaches the rollout engine: adapter (a LoRA policy, vLLM serving LoRA),
    merged (a LoRA policy, an engine without LoRA: weights with the adapter merged in) or weights."""
    if not is_peft(module):
        return "weights"
    return "adapter" if getattr(rollout, "serves_lora", False) else "merged"


def sync_rollout(rollout: RolloutEngine, engine: Any) -> float:
    """Makes the rollout engine sample from the policy's current weights; returns the seconds taken.
    A LoRA policy sends its adapter where the engine serves LoRA (vLLM's LoRARequest), else the
    weights with the adapter merged in; a fully trained one sends every weight (``policy_weights``)."""
    module = engine.module
    mode = sync_mode(rollout, module)
    if mode == "weights":
        return rollout.load_weights(policy_weights(engine))
    if mode == "adapter":
        return rollout.load_adapter(adapter_state_dict(module), module.peft_config["default"])  # type: ignore[attr-defined]
    return rollout.load_weights(merged_state_dict(module).items())


def _device_from_env() -> str:
    """This rank's device before the process group exists: cuda:LOCAL_RANK with CUDA, else cpu."""
    import os

    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}" if torch.cuda.is_available() else "cpu"


@dataclass
class _Inputs:
    """Step 1's checked inputs: the batch arithmetic, the DeepSpeed config, the training prompt records
    and the evaluation plan (None when evaluation is disabled)."""

    plan: BatchPlan
    prompts_per_rank: int
    ds_config: dict[str, Any]
    records: list[dict]
    eval_plan: Plan | None

    @property
    def prompts_per_step(self) -> int:
        return self.prompts_per_rank * self.plan.world_size

    @property
    def scored(self) -> list[dict]:
        """Every record the reward may score: training and held out (the oracle reward needs them all)."""
        return self.records + (self.eval_plan.records if self.eval_plan else [])


@dataclass
class _Progress:
    """What the training loop carries across steps (and across a resume, through the checkpoint)."""

    recent: list[dict[str, float]]
    first: dict[str, float] | None
    samples_done: int = 0
    sync_seconds: list[float] = field(default_factory=list)


def train_policy(config: PolicyConfig, reward: RewardSource | None = None) -> dict[str, Any]:
    """Trains, exports, evaluates and reports (the module docstring's five steps).

    ``reward`` replaces the config's reward source (tests and experiments: a ProgrammaticReward, or a
    labeler engine built once for several runs); the config must still name one. Returns the summary.
    Raises ConfigError subclasses (exit code 3) for bad input before training; RewardError when
    scoring fails mid-run (checkpoints kept).
    """
    if config.rl.algorithm == "dpo":  # no reward and no rollouts: trains on the preference labels (policy.dpo)
        from rlaif_jobs.policy.dpo import train_dpo

        if reward is not None:
            raise ConfigError("rl.algorithm: dpo trains on preferencesUri, not against a reward; pass none")
        return train_dpo(config)
    t_start = time.time()
    spec = config.rl
    algo = get_algorithm(spec.algorithm)
    out = output_dir(config.output.uri, "the policy trainer")
    check_tracking(config.tracking)  # an enabled tracker whose package is missing: exit 3 now, not after loading
    inputs = _check_inputs(config)
    if config.rollout.engine == "vllm":  # sleepMode on without CUDA: exit 3 now, not after loading
        from rlaif_jobs.policy.rollout_vllm import resolve_sleep_mode

        resolve_sleep_mode(config.rollout.sleep_mode, torch.cuda.is_available())

    # Reward sources load before the process group exists, so a bad one fails fast (exit 3, or 1 for
    # an endpoint that is down) and cannot leave other ranks waiting; except an in-process vLLM
    # labeler, which must join the trainer's group rather than create its own.
    own_reward = reward is None
    if reward is None and (config.direct_reward is None or config.direct_reward.labeler.engine != "vllm"):
        reward = build_reward(config, _device_from_env(), inputs.scored)
    created_group = not torch.distributed.is_initialized()
    env = init_distributed()
    if reward is None:
        reward = build_reward(config, env.device, inputs.scored)
    torch.manual_seed(spec.seed)
    policy_path, tokenizer, policy_model = load_policy(config.policy)
    prompts, held = (to_prompts(r, tokenizer, spec.max_length - spec.max_new_tokens)
                     for r in (inputs.records, inputs.eval_plan.records if inputs.eval_plan else []))

    # 2. Engines.
    plan = inputs.plan
    prompt_plan = BatchPlan(global_batch=inputs.prompts_per_step, micro_batch=inputs.prompts_per_rank,
                            grad_accum=1, world_size=plan.world_size)
    sampler = ShardedSampler(len(prompts), prompt_plan, env.rank, seed=spec.seed)
    total_steps = spec.max_steps or max(1, math.floor(spec.epochs * sampler.steps_per_epoch))
    engines = _engines(config, algo, inputs.ds_config, policy_model, policy_path, total_steps)
    policy, value = engines["policy"], engines.get("value")
    # A LoRA policy's reference is the same model with its adapters off: no second copy of the weights.
    reference = AdapterOff(policy.module) if spec.lora is not None else \
        load_reference(policy_path, config.policy, spec.precision, env.device)

    # 3. Resume.
    run = TrainingRun(out, spec, env, engines, total_steps, desc="policy", tracking=config.tracking,
                      params=config.to_wire())
    rollout = _make_rollout(config, policy_path, policy.module, tokenizer, env, spec.precision)
    progress = _Progress(list(run.saved.get("recent", [])), run.saved.get("first"))
    if spec.lora is not None and rollout.needs_sync and env.is_main:
        log.info("rl.lora: the rollout engine is synced by %s", sync_mode(rollout, policy.module))
    if run.resumed and rollout.needs_sync:
        progress.sync_seconds.append(sync_rollout(rollout, policy))
    ctx = StepContext(config, algo, env, rollout, reward, policy, value, reference, tokenizer, plan,
                      fused_old_logprobs(algo, spec, plan, policy.module), doing=run.bar.phase)
    if env.is_main:
        log.info("%s: %d prompts (%d held out), %d steps of %d prompts x %d samples; rollouts by %s; reward %s;"
                 " old-policy log-probs %s", algo.name, len(prompts), len(held), total_steps,
                 inputs.prompts_per_step, spec.samples_per_prompt, rollout.name, reward.name,
                 "from the update's forward" if ctx.fused else "from a separate pass")
    try:
        try:  # 4. Train; 5. export, evaluate
            _train(ctx, run, sampler, prompts, total_steps, progress)
            run.export(policy, tokenizer, base_uri=config.policy.uri)
            results = _results(ctx, run, total_steps, progress)
            eval_record = _evaluate(ctx, inputs.eval_plan, held)
        finally:
            rollout.close()
            if own_reward:
                reward.close()
        results["elapsedSeconds"] = time.time() - t_start
        return run.report(
            config.output.uri, "policy", results,
            extra={"algorithm": algo.name, "rolloutEngine": rollout.name, "reward": reward.name,
                   "rollout": {"sleepMode": getattr(rollout, "sleep_note", "off (no vLLM engine)")},
                   "policy": config.policy.uri, "evaluation": eval_record,
                   "deepspeed": {**zero_stage_note(spec, inputs.ds_config),
                                 "precision": spec.precision, "gradientAccumulation": plan.grad_accum}})
    finally:
        if created_group:  # leave a process group this call did not create (a caller's, or vLLM's) alone
            shutdown()


def _engines(config: PolicyConfig, algo: Any, ds_config: dict[str, Any], policy_model: Any, policy_path: str,
             total_steps: int) -> dict[str, Any]:
    """Step 2: DeepSpeed engines for the policy and (REINFORCE, PPO) the value model, by name."""
    spec = config.rl
    updates = total_steps * (spec.ppo_epochs if algo.multi_epoch else 1)
    if spec.lora is not None:  # adapters before the engine: its optimizer then holds only them
        policy_model = apply_lora(policy_model, spec.lora, "rl.lora")
    engines = {"policy": build_engine(policy_model, spec, ds_config, updates)}
    if algo.uses_value:
        value_model = load_value_model(policy_path, config.policy)
        if spec.lora is not None:  # its own frozen backbone with adapters; the value head trains whole
            value_model.backbone = apply_lora(value_model.backbone, spec.lora, "rl.lora", task_type=None)
        engines["value"] = build_engine(value_model, spec, ds_config, updates, lr=spec.value_learning_rate)
    return engines


def _check_inputs(config: PolicyConfig) -> _Inputs:
    """Step 1, cheapest first, before any process group exists: batch arithmetic, lengths, the prompts,
    the evaluation plan (held-out prompts and judge), the oracle's ground truth. ConfigError on each."""
    spec = config.rl
    plan = plan_batches(spec, world_size_from_env(), "rl")
    n_prompts_rank = prompts_per_rank(config, plan)
    ds_config = build_ds_config(spec, plan, "cuda" if torch.cuda.is_available() else "cpu", "rl")
    if spec.max_new_tokens >= spec.max_length:
        raise ConfigError(f"rl.maxNewTokens: {spec.max_new_tokens} leaves no room for the prompt within"
                          f" rl.maxLength {spec.max_length}")
    records = load_prompt_records(config.prompts)
    records, eval_plan = heldout.plan(config, records, load_prompt_records)
    if config.oracle_reward is not None:
        from rlaif_jobs.evaluation.oracle import score as oracle_score

        if not any(oracle_score(r, "") is not None for r in records):
            raise ConfigError(f"reward.oracle: no training prompt in {config.prompts.uri} carries ground truth"
                              " (answer, keyFact or mustDecline), so every reward would be empty; use prompts"
                              " that do, or another reward")
    inputs = _Inputs(plan, n_prompts_rank, ds_config, records, eval_plan)
    if len(records) < inputs.prompts_per_step:
        raise ConfigError(f"prompts: {config.prompts.uri} has {len(records)} training prompts, fewer than one"
                          f" step's {inputs.prompts_per_step} (rl.batchSize {spec.batch_size} / samplesPerPrompt"
                          f" {spec.samples_per_prompt}); add prompts or lower rl.batchSize")
    return inputs


def _train(ctx: StepContext, run: TrainingRun, sampler: ShardedSampler, prompts: list[Any], total_steps: int,
           progress: _Progress) -> None:
    """Step 4: every step from the resume point on: train, push the weights to the rollout engine, log,
    checkpoint. A RewardError is re-raised naming the step and the checkpoint a rerun resumes from."""
    spec, policy = ctx.config.rl, ctx.policy
    step = run.start
    try:
        for sb in sampler.steps(run.start, total_steps):
            step = sb.global_step
            row = train_step(ctx, step, [prompts[i] for mb in sb.micro_batches for i in mb])
            progress.samples_done += ctx.plan.global_batch
            if ctx.rollout.needs_sync:
                t = sync_rollout(ctx.rollout, policy)
                ctx.times["sync"] += t
                progress.sync_seconds.append(t)
                row["syncSeconds"] = t
            row["learningRate"] = current_lr(policy)
            progress.first = progress.first or {k: row[k] for k in ("meanReward", "kl")}
            progress.recent = (progress.recent + [{k: row[k] for k in ("meanReward", "kl", "objective")}])[-RECENT:]
            if step % spec.log_every_steps == 0 or step == total_steps:
                run.metrics.log(step, **row)
            run.bar.set_postfix(reward=f"{row['meanReward']:.3f}", kl=f"{row['kl']:.3f}")
            run.step_done(step, {"recent": progress.recent, "first": progress.first})
    except RewardError as err:
        run.bar.close()
        kept = run.ckpt.latest()
        where = f"the last checkpoint ({kept.path.name}) is kept; rerun to resume from it" if kept else \
            "no checkpoint was written yet"
        run.metrics.log(step, event="failed", error=str(err)[:500])
        run.metrics.close()
        raise RewardError(f"{err} (at step {step}; {where})") from err
    run.finish({"recent": progress.recent, "first": progress.first})


def _results(ctx: StepContext, run: TrainingRun, total_steps: int, progress: _Progress) -> dict[str, Any]:
    """The summary's training metrics: the last steps' reward, KL and objective, the first step's, rates."""
    results: dict[str, Any] = {}
    if progress.recent:
        for k in ("meanReward", "kl", "objective"):
            results[k] = sum(r[k] for r in progress.recent) / len(progress.recent)
    if progress.first:
        results["initialMeanReward"] = progress.first["meanReward"]
        results["initialKl"] = progress.first["kl"]
    train_seconds = sum(ctx.times.values())
    sync = progress.sync_seconds
    results.update({
        "steps": total_steps, "stepsThisRun": run.steps_done, "resumedFromStep": run.start,
        "samplesPerSecond": progress.samples_done / train_seconds if train_seconds > 0 else float("nan"),
        **{f"{k}Seconds": v for k, v in ctx.times.items()},
        "meanSyncSeconds": sum(sync) / len(sync) if sync else 0.0,
        "worldSize": ctx.env.world_size,
    })
    return results


def _evaluate(ctx: StepContext, eval_plan: Plan | None, held: list[Any]) -> dict[str, Any] | None:
    """The trainer's half of the evaluation (policy.heldout): both policies' responses with the same
    decoding, scored by the run's reward, written with a summary marked pending; the judge loads in a
    fresh process after this one exits, so memory never holds both. Returns the summary's record."""
    if eval_plan is None:
        return None
    eval_plan.prompts = held
    samples = heldout.generate(eval_plan, ctx.rollout, ctx.reference, ctx.tokenizer, ctx.env, ctx.config,
                               _rollout_seed(ctx.config.rl.seed, heldout.EVAL_SEED_STEP, 0))
    heldout.score_rewards(eval_plan, samples, ctx.reward)  # the reward's agreement with the oracle
    return heldout.write_pending(eval_plan, samples, ctx.config) if ctx.env.is_main else None
