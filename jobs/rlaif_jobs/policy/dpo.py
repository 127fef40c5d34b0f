"""rl.algorithm dpo: the policy trained directly on the labeling stage's soft preferences (no reward model,
no rollouts), then evaluated exactly as an RL policy is.

The loss is the soft-label DPO loss (Rafailov et al. 2023, with the label as a soft target: the
"conservative" / label-smoothed DPO), with p = P(a preferred) from the labeler and beta = rl.dpoBeta::

    D = [log pi(a|x) - log pi_SFT(a|x)] - [log pi(b|x) - log pi_SFT(b|x)]   (summed over response tokens)
    L = -[p * log sigmoid(beta * D) + (1 - p) * log sigmoid(-beta * D)]      (mean over pairs)

A pair labeled p = 0.5 pulls D towards 0 (its minimum): it is kept, as "no difference". The
reference pi_SFT is the frozen initial policy; its log-probs are computed once per micro-batch, in
inference mode, beside the policy's forward (a pair's prompt is computed once for both responses:
policy.packing). Responses are shown as the RL rollouts are: the prompt as the user's turn of the chat
template, the response after it ending with EOS, at most rl.maxNewTokens tokens (longer ones are cut).

``train_dpo(config)`` follows the RL trainer's outline (policy.trainer): checks before anything slow,
one DeepSpeed engine (ZeRO, precision and checkpoints as in RL; rl.batchSize and microBatchSize count
pairs), resume, steps (metrics: dpoLoss, preferenceAccuracy, rewardMargin, ...), export, the trainer's
half of the held-out evaluation (policy.heldout: the same prompts, decoding and judge as an RL run,
with no reward scores), summary.json marked evaluation pending. Training pairs whose context is one of
the held-out prompts are left out, so the evaluation never sees a trained-on prompt.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from rlaif_jobs.config.policy import PolicyConfig
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.policy import heldout
from rlaif_jobs.policy.models import SequenceBatch, load_policy, load_reference, make_batch, policy_forward
from rlaif_jobs.policy.prompts import encode_prompt, load_prompt_records, to_prompts
from rlaif_jobs.policy.step import reference_logprobs
from rlaif_jobs.policy.step import rollout_seed as _rollout_seed
from rlaif_jobs.reward.data import PreferencePair, load_preferences
from rlaif_jobs.train import (
    BatchPlan,
    ShardedSampler,
    all_reduce_sum,
    build_ds_config,
    build_engine,
    current_lr,
    init_distributed,
    plan_batches,
    shutdown,
    world_size_from_env,
    zero_stage_note,
)
from rlaif_jobs.train.engine import backward
from rlaif_jobs.train.run import TrainingRun, output_dir
from rlaif_jobs.train.trackers import check_tracking

log = logging.getLogger(__name__)
NAME = "dpo"
RECENT = 5  # steps averaged for the summary's final figures
REWARD = "none: dpo on preferences"  # the summary's "reward" (a DPO policy has no reward source)


def soft_dpo_loss(policy_a: torch.Tensor, policy_b: torch.Tensor, ref_a: torch.Tensor, ref_b: torch.Tensor,
                  p: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean loss, D per pair) of the module docstring's loss. Inputs [N]: the summed log-probs of
    response a and b under the policy (with a graph) and the reference, and p = P(a preferred)."""
    delta = (policy_a - ref_a) - (policy_b - ref_b)
    z = beta * delta
    per_pair = -(p * F.logsigmoid(z) + (1.0 - p) * F.logsigmoid(-z))
    return per_pair.mean(), delta


@dataclass(frozen=True)
class TokenizedPair:
    """A pair ready for the forward: the prompt's ids, both responses' ids (EOS-terminated), p."""

    prompt: list[int]
    a: list[int]
    b: list[int]
    p: float


def tokenize_pairs(pairs: list[PreferencePair], tokenizer: Any, max_prompt: int, max_response: int
                   ) -> list[TokenizedPair]:
    """Each pair's prompt as the policy's input (chat template, left-truncated to ``max_prompt``) and its
    responses cut to ``max_response`` tokens, the last one EOS."""
    eos = tokenizer.eos_token_id

    def response(text: str) -> list[int]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][: max_response - 1]
        return [*ids, eos]

    return [TokenizedPair(encode_prompt(tokenizer, x.context, max_prompt), response(x.response_a),
                          response(x.response_b), x.p) for x in pairs]


def pair_batch(pairs: list[TokenizedPair], pad_id: int) -> SequenceBatch:
    """Rows [a_1 .. a_n, b_1 .. b_n] of one SequenceBatch (each prompt twice: packing computes it once)."""
    return make_batch([x.prompt for x in pairs] * 2, [x.a for x in pairs] + [x.b for x in pairs], pad_id)


def sequence_logprobs(lp: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum log pi over response a's tokens, the same for b) from pair_batch's [2n, T] token log-probs."""
    seq = (lp * mask).sum(-1)
    n = seq.shape[0] // 2
    return seq[:n], seq[n:]


def _check_inputs(config: PolicyConfig) -> tuple[BatchPlan, dict[str, Any], list[PreferencePair], Any, int]:
    """Before anything slow: batch arithmetic, lengths, the labels file, the evaluation plan; returns (plan,
    DeepSpeed config, training pairs, evaluation plan or None, pairs dropped as held-out prompts)."""
    spec = config.rl
    if getattr(spec, "lora", None) is not None:
        raise ConfigError("rl.lora: rl.algorithm dpo trains every weight of the policy (its reference is a"
                          " separate frozen copy); remove rl.lora, or use reinforce, rloo or ppo with LoRA")
    plan = plan_batches(spec, world_size_from_env(), "rl")
    ds_config = build_ds_config(spec, plan, "cuda" if torch.cuda.is_available() else "cpu", "rl")
    if spec.max_new_tokens >= spec.max_length:
        raise ConfigError(f"rl.maxNewTokens: {spec.max_new_tokens} leaves no room for the prompt within"
                          f" rl.maxLength {spec.max_length}")
    assert config.preferences_uri is not None  # PolicyConfig's validator: dpo needs preferences
    pairs = load_preferences(config.preferences_uri)  # PreferencesError (exit 3) names preferencesUri
    # the prompts file serves the evaluation only: held-out prompts as in an RL run with the same settings
    eval_plan = None
    if config.evaluation.enabled:
        _, eval_plan = heldout.plan(config, load_prompt_records(config.prompts), load_prompt_records)
    held = {str(r["prompt"]).strip() for r in eval_plan.records} if eval_plan is not None else set()
    kept = [x for x in pairs if x.context.strip() not in held]
    if len(kept) < plan.global_batch:
        raise ConfigError(f"preferencesUri: {config.preferences_uri} has {len(kept)} pairs to train on"
                          f" ({len(pairs) - len(kept)} more are held-out evaluation prompts), fewer than one"
                          f" step's rl.batchSize {spec.batch_size}; lower rl.batchSize or label more pairs")
    return plan, ds_config, kept, eval_plan, len(pairs) - len(kept)


def train_dpo(config: PolicyConfig) -> dict[str, Any]:
    """Trains the policy with soft-label DPO, exports, runs the trainer's half of the evaluation, reports.
    Returns the summary (evaluation pending: ``python -m rlaif_jobs.evaluation`` completes it)."""
    from rlaif_jobs.policy.trainer import _make_rollout, policy_weights

    t_start = time.time()
    spec = config.rl
    out = output_dir(config.output.uri, "the policy trainer")
    check_tracking(config.tracking)
    plan, ds_config, pairs, eval_plan, dropped = _check_inputs(config)
    created_group = not torch.distributed.is_initialized()
    env = init_distributed()
    try:
        torch.manual_seed(spec.seed)
        policy_path, tokenizer, policy_model = load_policy(config.policy)
        max_prompt = spec.max_length - spec.max_new_tokens
        data = tokenize_pairs(pairs, tokenizer, max_prompt, spec.max_new_tokens)
        held = to_prompts(eval_plan.records, tokenizer, max_prompt) if eval_plan is not None else []
        sampler = ShardedSampler(len(data), plan, env.rank, seed=spec.seed)
        total_steps = spec.max_steps or max(1, math.floor(spec.epochs * sampler.steps_per_epoch))
        policy = build_engine(policy_model, spec, ds_config, total_steps)
        reference = load_reference(policy_path, config.policy, spec.precision, env.device)
        run = TrainingRun(out, spec, env, {"policy": policy}, total_steps, desc="policy", tracking=config.tracking,
                          params=config.to_wire())
        if env.is_main:
            log.info("dpo: %d pairs from %s (%d left out: held-out prompts), %d held-out prompts, %d steps of %d"
                     " pairs, beta %g", len(data), config.preferences_uri, dropped, len(held), total_steps,
                     plan.global_batch, spec.dpo_beta)
        recent: list[dict[str, float]] = list(run.saved.get("recent", []))
        first: dict[str, float] | None = run.saved.get("first")
        update_seconds = 0.0
        for sb in sampler.steps(run.start, total_steps):
            t0 = time.perf_counter()
            row = _step(policy, reference, tokenizer, [[data[i] for i in mb] for mb in sb.micro_batches], spec.dpo_beta,
                        env)
            update_seconds += time.perf_counter() - t0
            row["learningRate"] = current_lr(policy)
            first = first or {k: row[k] for k in ("dpoLoss", "preferenceAccuracy")}
            recent = (recent + [{k: row[k] for k in ("dpoLoss", "preferenceAccuracy", "rewardMargin")}])[-RECENT:]
            if sb.global_step % spec.log_every_steps == 0 or sb.global_step == total_steps:
                run.metrics.log(sb.global_step, **row)
            run.bar.set_postfix(loss=f"{row['dpoLoss']:.3f}", acc=f"{row['preferenceAccuracy']:.2f}")
            run.step_done(sb.global_step, {"recent": recent, "first": first})
        run.finish({"recent": recent, "first": first})
        run.export(policy, tokenizer)
        results: dict[str, Any] = {k: sum(r[k] for r in recent) / len(recent) for k in recent[0]} if recent else {}
        if first:
            results["initialDpoLoss"] = first["dpoLoss"]
            results["initialPreferenceAccuracy"] = first["preferenceAccuracy"]
        results.update({"steps": total_steps, "stepsThisRun": run.steps_done, "resumedFromStep": run.start,
                        "preferencePairs": len(data), "pairsLeftOutAsHeldOut": dropped,
                        "samplesPerSecond": run.steps_done * plan.global_batch / update_seconds
                        if update_seconds > 0 else float("nan"),
                        "updateSeconds": update_seconds, "worldSize": env.world_size})
        rollout = _make_rollout(config, policy_path, policy.module, tokenizer, env, spec.precision)
        try:
            eval_record = None
            if eval_plan is not None:
                if rollout.needs_sync:  # the engine starts with the SFT weights: give it the trained ones
                    rollout.load_weights(policy_weights(policy))
                eval_plan.prompts = held
                samples = heldout.generate(eval_plan, rollout, reference, tokenizer, env, config,
                                           _rollout_seed(spec.seed, heldout.EVAL_SEED_STEP, 0))
                # no reward source scores the held-out responses: the evaluation reports no reward-oracle AUC
                eval_record = heldout.write_pending(eval_plan, samples, config) if env.is_main else None
        finally:
            rollout.close()
        results["elapsedSeconds"] = time.time() - t_start
        return run.report(
            config.output.uri, "policy", results,
            extra={"algorithm": NAME, "rolloutEngine": rollout.name, "reward": REWARD,
                   "preferences": config.preferences_uri, "dpoBeta": spec.dpo_beta, "policy": config.policy.uri,
                   "evaluation": eval_record,
                   "deepspeed": {**zero_stage_note(spec, ds_config), "precision": spec.precision,
                                 "gradientAccumulation": plan.grad_accum}})
    finally:
        if created_group:
            shutdown()


def _step(policy: Any, reference: Any, tokenizer: Any, micro_batches: list[list[TokenizedPair]], beta: float,
          env: Any) -> dict[str, float]:
    """One optimizer step over this rank's micro-batches of pairs; the step's metrics over all ranks."""
    sums = [0.0] * 7  # loss x n, n, right, decided, margin (towards the preferred), chosen ratio, rejected ratio
    for mb in micro_batches:
        batch = pair_batch(mb, tokenizer.pad_token_id).to(env.device)
        ref_a, ref_b = sequence_logprobs(reference_logprobs(reference, batch, 2 * len(mb), 1.0), batch.mask)
        lp, _ = policy_forward(policy, batch, 1.0)
        pol_a, pol_b = sequence_logprobs(lp, batch.mask)
        p = torch.tensor([x.p for x in mb], dtype=torch.float32, device=lp.device)
        loss, delta = soft_dpo_loss(pol_a.float(), pol_b.float(), ref_a.float(), ref_b.float(), p, beta)
        backward(policy, loss)
        policy.step()
        with torch.no_grad():
            d = delta.detach()
            sign = torch.sign(p - 0.5)  # +1: a preferred, -1: b, 0: a tie (no right answer)
            decided = sign != 0
            ratio_a, ratio_b = (pol_a - ref_a).detach(), (pol_b - ref_b).detach()
            chosen = torch.where(sign >= 0, ratio_a, ratio_b)
            rejected = torch.where(sign >= 0, ratio_b, ratio_a)
            sums = [s + v for s, v in zip(sums, [
                float(loss.detach()) * len(mb), float(len(mb)), float(((d * sign) > 0)[decided].sum()),
                float(decided.sum()), float((beta * d * sign)[decided].sum()), float(beta * chosen[decided].sum()),
                float(beta * rejected[decided].sum())], strict=True)]
    s = all_reduce_sum(sums, env)
    decided_n = max(s[3], 1.0)
    return {"dpoLoss": s[0] / s[1], "preferenceAccuracy": s[2] / decided_n, "rewardMargin": s[4] / decided_n,
            "chosenReward": s[5] / decided_n, "rejectedReward": s[6] / decided_n, "pairs": s[1]}
