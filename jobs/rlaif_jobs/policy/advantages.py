"""Rewards per token, returns (gamma = 1), leave-one-out baselines and whitening. Pure torch.

The paper's reward shaping: the sequence reward r arrives at the response's last token only, the KL
penalty at every token, both weighted so that the return from the first token is exactly the
objective ``(1 - beta) * r - beta * KL(pi || pi_SFT)``:

    reward_t = -beta * kl_t                      for t < last
    reward_last = -beta * kl_last + (1 - beta) * r
    Z_t = sum_{t' >= t} reward_t'                (gamma = 1: the return-to-go)

Layout: [batch, response_len] with a 0/1 ``mask``; responses of one prompt are adjacent
(prompt-major: p0s0, p0s1, ..., p1s0, ...), which ``leave_one_out`` relies on.
"""

from __future__ import annotations

import torch


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token ([B, T] -> [B]); 0 for an empty row."""
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return (positions * (mask > 0)).amax(dim=1)


def token_rewards(scores: torch.Tensor, kl_tokens: torch.Tensor, mask: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-token rewards [B, T]: -beta * kl_t everywhere, plus (1 - beta) * r at the last token."""
    rewards = -beta * kl_tokens * mask
    rows = torch.arange(mask.shape[0], device=mask.device)
    rewards[rows, last_index(mask)] += (1.0 - beta) * scores.to(rewards.dtype)
    return rewards * mask


def returns_to_go(rewards: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Z_t = sum of rewards from t to the end of the response (gamma = 1), 0 on padding: [B, T]."""
    masked = rewards * mask
    return masked.flip(-1).cumsum(-1).flip(-1) * mask


def sequence_returns(scores: torch.Tensor, seq_kl: torch.Tensor, beta: float) -> torch.Tensor:
    """The objective per response, (1 - beta) * r - beta * KL: [B] (what RLOO's baseline compares)."""
    return (1.0 - beta) * scores - beta * seq_kl


def leave_one_out(returns: torch.Tensor, group: int) -> torch.Tensor:
    """RLOO advantages: each return minus the mean of the other ``group - 1`` returns of its prompt.

    ``returns`` is [B] with B = prompts * group, prompt-major. Equivalent form used here:
    R_i - (sum_j R_j - R_i) / (k - 1) = k / (k - 1) * (R_i - mean_j R_j).
    """
    if group < 2:
        raise ValueError("leave-one-out needs at least 2 responses per prompt")
    if returns.shape[0] % group:
        raise ValueError(f"{returns.shape[0]} returns do not split into groups of {group}")
    g = returns.view(-1, group)
    baseline = (g.sum(dim=1, keepdim=True) - g) / (group - 1)
    return (g - baseline).reshape(-1)


def whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x - mean) / std over the masked positions (PPO's advantage normalisation); 0 on padding."""
    n = mask.sum().clamp(min=1)
    mean = (x * mask).sum() / n
    var = (((x - mean) * mask) ** 2).sum() / n
    return (x - mean) * torch.rsqrt(var + eps) * mask
