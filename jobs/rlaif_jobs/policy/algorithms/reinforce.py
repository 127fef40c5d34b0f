"""REINFORCE with a learned value baseline, exactly as the paper states it (an A2C-like scheme).

Reward at the last token, gamma = 1, objective (1 - beta) * r - beta * KL(pi || pi_SFT):

    Z_t = the return-to-go of advantages.token_rewards (advantages.returns_to_go)
    A_t = Z_t - V(x_t)                           no gradient flows through A_t
    policy loss = -sum_t log pi(a_t | x_t) * A_t
    value loss  =  sum_t (Z_t - V(x_t))^2

Sums run over a response's tokens; the batch mean is over responses. No advantage whitening, no
ratio clipping: that would be PPO, which the paper chose not to use.
"""

from __future__ import annotations

import torch

from rlaif_jobs.policy.advantages import returns_to_go, token_rewards

NAME = "reinforce"
USES_VALUE = True


def targets(scores: torch.Tensor, kl_tokens: torch.Tensor, mask: torch.Tensor, values: torch.Tensor | None,
            beta: float, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages A_t, returns Z_t), both [B, T] and detached. ``values`` are V(x_t) before the update."""
    assert values is not None, "REINFORCE's baseline is the value model"
    returns = returns_to_go(token_rewards(scores, kl_tokens, mask, beta), mask)
    return ((returns - values) * mask).detach(), returns.detach()


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                mask: torch.Tensor, clip_range: float) -> tuple[torch.Tensor, dict[str, float]]:
    """-sum_t log pi(a_t|x_t) * A_t per response, averaged over responses (old_logprobs, clip unused)."""
    per_response = -(logprobs * advantages * mask).sum(-1)
    return per_response.mean(), {}


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
               clip_range: float) -> torch.Tensor:
    """sum_t (Z_t - V(x_t))^2 per response, averaged over responses."""
    return (((values - returns) ** 2) * mask).sum(-1).mean()
