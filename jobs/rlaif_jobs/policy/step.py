"""One RL step of the policy trainer: roll out, score, reference log-probs, targets, update.

``train_step(ctx, step, prompts)`` runs on every rank with that rank's prompts and returns the step's
metrics, averaged over all ranks; ``ctx`` (a ``StepContext``) holds what every step of the run uses.
Its phases (timed into ``ctx.times``: rollout, reward, prepare, update):

1. rollout: ``samplesPerPrompt`` responses per prompt from the rollout engine;
2. reward: the reward source scores them (unscored ones get the batch mean);
3. prepare: log pi_SFT of the responses under the frozen reference (inference mode), the value
   model's V_old (REINFORCE, PPO) and, on the *separate* path only, log pi_old and the targets;
4. update: the policy loss per micro-batch, ``backward``, ``step`` (and the value loss).

The old-policy log-probs (the KL's log pi and PPO's ratio denominator) come from one of two paths:

- fused (``fused_old_logprobs``): when the update makes ONE pass over the rollout batch, the policy
  at each micro-batch's forward is the policy that sampled it (DeepSpeed steps the optimizer only
  after the last micro-batch), so log pi_old equals that forward's own log-probs: they are taken
  detached from it (ratio exactly 1, its gradient that of log pi), and the targets are computed
  right there from them. This saves one full forward pass of the policy per step. It needs the
  targets of a micro-batch to depend on that micro-batch only (one micro-batch per rank, or an
  algorithm whose targets are per prompt group with whole groups in each micro-batch) and a policy
  without dropout (a training-mode forward must equal the sampling policy's).
- separate: a no-grad pass over the whole batch first (PPO's several epochs, whitening across
  micro-batches, or a model with dropout).

Both give the same loss and gradient (tests/unit/test_policy_step.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from rlaif_jobs.policy.kl import kl_per_token, masked_mean, sequence_kl
from rlaif_jobs.policy.models import SequenceBatch, make_batch, policy_forward, value_forward
from rlaif_jobs.policy.prompts import Prompt
from rlaif_jobs.policy.rewards import RewardError, RewardSource
from rlaif_jobs.policy.rollout import RolloutEngine
from rlaif_jobs.train import BatchPlan, DistEnv, all_reduce_sum
from rlaif_jobs.train.engine import backward


def rollout_seed(seed: int, step: int, rank: int) -> int:
    """The rollout engine's seed for this step and rank (reproducible, distinct per step and rank)."""
    return (seed * 1_000_003 + step * 10_007 + rank * 101) % (2**31 - 1)


def has_dropout(module: torch.nn.Module) -> bool:
    """Whether a training-mode forward of ``module`` can differ from an eval-mode one: a Dropout
    layer with p > 0, or a positive ``*dropout`` / ``*pdrop`` setting in its config (HF attention
    implementations apply ``attention_dropout`` themselves, without a Dropout module)."""
    if any(isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0 for m in module.modules()):
        return True
    config: Any = getattr(module, "config", None)
    settings = config.to_dict() if hasattr(config, "to_dict") else {}
    return any((key.endswith("dropout") or key.endswith("pdrop")) and isinstance(v, (int, float)) and v > 0
               for key, v in settings.items())


def fused_old_logprobs(algo: Any, spec: Any, plan: BatchPlan, policy_module: torch.nn.Module) -> bool:
    """Whether the update's forward can supply log pi_old (the fused path of the module docstring)."""
    one_pass = not algo.multi_epoch or spec.ppo_epochs == 1
    local_targets = plan.grad_accum == 1 or (algo.group_targets and plan.micro_batch % spec.samples_per_prompt == 0)
    return one_pass and local_targets and not has_dropout(policy_module)


def fused_loss(algo: Any, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, scores: torch.Tensor,
               values_old: torch.Tensor | None, mask: torch.Tensor, kl_coef: float, clip_range: float,
               group: int) -> tuple[torch.Tensor, dict[str, float], dict[str, torch.Tensor | None]]:
    """The policy loss of one micro-batch whose old log-probs are its own forward's, detached.

    Inputs: ``logprobs`` [B, T] with a graph (this forward), the reference's [B, T], scores [B],
    V_old [B, T] or None, the response mask. Output: (loss, the algorithm's stats, {"old": log pi_old,
    "kl": per-token KL, "advantages", "returns"}), the last all detached.
    """
    old = logprobs.detach()
    kl = kl_per_token(old, ref_logprobs, mask)
    adv, returns = algo.targets(scores, kl, mask, values_old, kl_coef, group)
    loss, stats = algo.policy_loss(logprobs, old, adv, mask, clip_range)
    return loss, stats, {"old": old, "kl": kl, "advantages": adv, "returns": returns}


def _chunks(n: int, m: int) -> list[slice]:
    return [slice(lo, lo + m) for lo in range(0, n, m)]


def reference_logprobs(reference: Any, batch: SequenceBatch, micro_batch: int, temperature: float) -> torch.Tensor:
    """log pi_SFT of the batch's responses [B, T], one micro-batch per forward, in inference mode."""
    with torch.inference_mode():
        out = torch.cat([policy_forward(reference, batch.slice(rows), temperature)[0]
                         for rows in _chunks(batch.mask.shape[0], micro_batch)])
    return out.clone()  # an ordinary tensor again: inference tensors may not meet autograd later


PHASES = ("rollout", "reward", "prepare", "update", "sync")  # the seconds a run accumulates, by phase


@dataclass
class StepContext:
    """What every step of a run uses: the config, the algorithm, this rank, the engines, the batch plan.

    ``fused``: take log pi_old from the update's forward (``fused_old_logprobs`` says when that is
    exact). ``times`` accumulates the seconds of each phase; ``doing(phase)`` is told each phase as it
    starts (the console's progress line shows it).
    """

    config: Any
    algo: Any
    env: DistEnv
    rollout: RolloutEngine
    reward: RewardSource
    policy: Any
    value: Any
    reference: Any
    tokenizer: Any
    plan: BatchPlan
    fused: bool
    times: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PHASES, 0.0))
    doing: Callable[[str], Any] = lambda phase: None


@dataclass
class _Targets:
    """The prepare phase's output: what the update needs besides the batch and the scores."""

    ref_lp: torch.Tensor
    values_old: torch.Tensor | None
    old_lp: torch.Tensor | None = None  # the separate path only (the fused one takes it from the update)
    kl_tokens: torch.Tensor | None = None
    adv: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    entropy: torch.Tensor | None = None


def train_step(ctx: StepContext, step: int, mine: list[Prompt]) -> dict[str, float]:
    """One RL step on this rank's prompts (the module docstring's four phases); returns the step's
    metrics, averaged over all ranks."""
    t0 = time.perf_counter()
    flat, scores, unscored, t1 = _rollout_and_score(ctx, step, mine)
    sleep = getattr(ctx.rollout, "sleep", None)  # vLLM sleep mode: its GPU memory to the update until the sync
    if sleep is not None:
        sleep()
    t2 = time.perf_counter()
    batch = make_batch([p.ids for p, _ in flat], [g.token_ids for _, g in flat],
                       ctx.tokenizer.pad_token_id).to(ctx.env.device)
    ctx.doing("log-probs")
    targets = _prepare(ctx, batch, scores)
    ctx.times["prepare"] += (t3 := time.perf_counter()) - t2
    ctx.doing("update")
    losses = _update(ctx, batch, scores, targets)
    ctx.times["update"] += time.perf_counter() - t3
    row = _metrics(ctx, flat, scores, unscored, batch.mask, targets, losses)
    row.update(rolloutSeconds=t1 - t0, rewardSeconds=t2 - t1, prepareSeconds=t3 - t2,
               updateSeconds=time.perf_counter() - t3)
    norm = ctx.policy.get_global_grad_norm()  # the policy's last optimizer step, before clipping
    if norm is not None:  # None where DeepSpeed computes none (ZeRO 1/2 with it disabled)
        row["gradNorm"] = float(norm)
    return row


def _rollout_and_score(ctx: StepContext, step: int, mine: list[Prompt]
                       ) -> tuple[list[tuple[Prompt, Any]], torch.Tensor, torch.Tensor, float]:
    """Phases 1-2: (prompt, generation) pairs prompt-major (RLOO's groups), their scores on the
    device (unscored ones set to the batch mean, so their advantage is about zero), the unscored mask,
    and when the rollout ended. RewardError when nothing could be scored."""
    spec = ctx.config.rl
    t = time.perf_counter()
    ctx.doing("rollout")
    gens = ctx.rollout.generate([p.ids for p in mine], spec.samples_per_prompt, spec.max_new_tokens,
                                spec.temperature, spec.top_p, rollout_seed(spec.seed, step, ctx.env.rank))
    ctx.times["rollout"] += (t1 := time.perf_counter()) - t
    flat = [(p, g) for p, group in zip(mine, gens, strict=True) for g in group]
    ctx.doing("reward")
    raw = ctx.reward.score([p.text for p, _ in flat], [g.text for _, g in flat], [p.task for p, _ in flat])
    ctx.times["reward"] += time.perf_counter() - t1
    scores = torch.tensor(raw, dtype=torch.float32)
    unscored = torch.isnan(scores)
    if bool(unscored.all()):
        raise RewardError(f"step {step}: the reward source could not score any of {len(raw)} responses")
    if bool(unscored.any()):
        scores[unscored] = scores[~unscored].mean()
    return flat, scores.to(ctx.env.device), unscored, t1


def _prepare(ctx: StepContext, batch: SequenceBatch, scores: torch.Tensor) -> _Targets:
    """Phase 3: log pi_SFT, V_old and, on the separate path, log pi_old, entropy and the targets."""
    spec, micro = ctx.config.rl, _chunks(len(scores), ctx.plan.micro_batch)
    targets = _Targets(reference_logprobs(ctx.reference, batch, ctx.plan.micro_batch, spec.temperature), None)
    if ctx.value is not None:
        with torch.no_grad():
            targets.values_old = torch.cat([value_forward(ctx.value, batch.slice(rows)) for rows in micro])
    if not ctx.fused:  # the separate path: log pi_old of the whole batch before any update
        ctx.policy.eval()
        with torch.no_grad():
            parts = [policy_forward(ctx.policy, batch.slice(rows), spec.temperature, with_entropy=True)
                     for rows in micro]
        ctx.policy.train()
        targets.old_lp = torch.cat([lp for lp, _ in parts])
        targets.entropy = torch.cat([ent for _, ent in parts if ent is not None])  # asked for: never None
        targets.kl_tokens = kl_per_token(targets.old_lp, targets.ref_lp, batch.mask)
        targets.adv, targets.returns = ctx.algo.targets(scores, targets.kl_tokens, batch.mask, targets.values_old,
                                                        spec.kl_coef, spec.samples_per_prompt)
    return targets


def _update(ctx: StepContext, batch: SequenceBatch, scores: torch.Tensor, t: _Targets
            ) -> tuple[list[float], list[float], dict[str, list[float]]]:
    """Phase 4: the policy (and value) loss per micro-batch, backward, step. Returns (policy losses,
    value losses, the algorithm's stats); on the fused path it also fills ``t``'s KL, advantages and
    entropy from the update's own forwards."""
    spec, algo = ctx.config.rl, ctx.algo
    policy_losses: list[float] = []
    value_losses: list[float] = []
    extra: dict[str, list[float]] = {}
    got: dict[str, list[torch.Tensor]] = {"old": [], "kl": [], "advantages": [], "returns": [], "entropy": []}
    for _ in range(spec.ppo_epochs if algo.multi_epoch else 1):
        for rows in _chunks(len(scores), ctx.plan.micro_batch):
            mb = batch.slice(rows)
            values_mb = None if t.values_old is None else t.values_old[rows]
            if ctx.fused:
                lp, ent = policy_forward(ctx.policy, mb, spec.temperature, with_entropy=True)
                loss, stats, parts_mb = fused_loss(algo, lp, t.ref_lp[rows], scores[rows], values_mb, mb.mask,
                                                   spec.kl_coef, spec.clip_range, spec.samples_per_prompt)
                for key, part in (*parts_mb.items(), ("entropy", ent)):
                    if part is not None:
                        got[key].append(part)
                returns_mb = parts_mb["returns"]
            else:
                assert t.old_lp is not None and t.adv is not None
                lp, _ = policy_forward(ctx.policy, mb, spec.temperature)
                loss, stats = algo.policy_loss(lp, t.old_lp[rows], t.adv[rows], mb.mask, spec.clip_range)
                returns_mb = None if t.returns is None else t.returns[rows]
            backward(ctx.policy, loss)
            ctx.policy.step()
            policy_losses.append(loss.item())
            for key, stat in stats.items():
                extra.setdefault(key, []).append(stat)
            if ctx.value is not None:
                predicted = value_forward(ctx.value, mb)
                vloss = algo.value_loss(predicted, values_mb, returns_mb, mb.mask, spec.clip_range)
                backward(ctx.value, vloss)
                ctx.value.step()
                value_losses.append(vloss.item())
    if ctx.fused:
        t.kl_tokens, t.adv, t.entropy = (torch.cat(got[key]) for key in ("kl", "advantages", "entropy"))
    return policy_losses, value_losses, extra


def _metrics(ctx: StepContext, flat: list[tuple[Prompt, Any]], scores: torch.Tensor, unscored: torch.Tensor,
             mask: torch.Tensor, t: _Targets, losses: tuple[list[float], list[float], dict[str, list[float]]]
             ) -> dict[str, float]:
    """The step's metrics, summed over all ranks and averaged."""
    spec, env = ctx.config.rl, ctx.env
    policy_losses, value_losses, extra = losses
    assert t.kl_tokens is not None and t.adv is not None and t.entropy is not None
    n = len(flat)
    seq_kl = sequence_kl(t.kl_tokens, mask)
    lengths = mask.sum(-1)
    local = [
        float(scores.sum()), float(n), float(seq_kl.sum()), float((t.entropy * mask).sum()),
        float(mask.sum()), float(sum(g.finished for _, g in flat)), float(unscored.sum()),
        float(((1 - spec.kl_coef) * scores - spec.kl_coef * seq_kl).sum()),
        sum(policy_losses) / len(policy_losses), sum(value_losses) / len(value_losses) if value_losses else 0.0,
        float((t.adv.sum(-1) / lengths.clamp(min=1)).abs().mean()),
    ]
    s = all_reduce_sum(local, env)
    w = env.world_size
    row = {
        "meanReward": s[0] / s[1], "kl": s[2] / s[1], "entropy": s[3] / max(s[4], 1.0),
        "responseLength": s[4] / s[1], "finishedShare": s[5] / s[1], "unscored": s[6],
        "objective": s[7] / s[1], "policyLoss": s[8] / w, "meanAbsAdvantage": s[10] / w,
        "rewardStd": float(scores.std()) if n > 1 else 0.0,
    }
    if ctx.value is not None:
        row["valueLoss"] = s[9] / w
    for key, vals in extra.items():
        row[key] = sum(vals) / len(vals)
    row["tokenKl"] = float(masked_mean(t.kl_tokens, mask))
    return row
