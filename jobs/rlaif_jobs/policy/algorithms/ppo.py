"""PPO (Schulman et al. 2017) with the paper's reward shaping and gamma = 1, for comparison.

Returns are the same Z_t as REINFORCE's (gamma = 1, lambda = 1: Monte-Carlo returns, the choice the
paper's gamma = 1 implies); advantages A_t = Z_t - V_old(x_t) are whitened over the batch. The update
runs ``ppoEpochs`` passes over each rollout batch with the clipped surrogate

    ratio = pi(a_t|x_t) / pi_old(a_t|x_t)
    policy loss = mean_t max(-A_t * ratio, -A_t * clip(ratio, 1 - eps, 1 + eps))
    value loss  = 0.5 * mean_t max((V - Z)^2, (V_old + clip(V - V_old, -eps, eps) - Z)^2)

with token means over the batch (as TRL's and OpenRLHF's PPO do).
"""

from __future__ import annotations

import torch

from rlaif_jobs.policy.advantages import returns_to_go, token_rewards, whiten
from rlaif_jobs.policy.kl import masked_mean

NAME = "ppo"
USES_VALUE = True


def targets(scores: torch.Tensor, kl_tokens: torch.Tensor, mask: torch.Tensor, values: torch.Tensor | None,
            beta: float, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(whitened advantages, returns Z_t), both [B, T] and detached."""
    assert values is not None, "PPO's baseline is the value model"
    returns = returns_to_go(token_rewards(scores, kl_tokens, mask, beta), mask)
    return whiten((returns - values) * mask, mask).detach(), returns.detach()


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                mask: torch.Tensor, clip_range: float) -> tuple[torch.Tensor, dict[str, float]]:
    """The clipped surrogate, token-averaged; stats: clipFraction, approxKl (to the rollout policy)."""
    log_ratio = (logprobs - old_logprobs) * mask
    ratio = log_ratio.exp()
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_range, 1.0 + clip_range)
    loss = masked_mean(torch.maximum(unclipped, clipped), mask)
    with torch.no_grad():
        clip_frac = masked_mean((clipped > unclipped).float(), mask).item()
        approx_kl = masked_mean(0.5 * log_ratio**2, mask).item()
    return loss, {"clipFraction": clip_frac, "approxKl": approx_kl}


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip_range: float) -> torch.Tensor:
    """The clipped value loss, token-averaged."""
    clipped = old_values + (values - old_values).clamp(-clip_range, clip_range)
    return 0.5 * masked_mean(torch.maximum((values - returns) ** 2, (clipped - returns) ** 2), mask)
