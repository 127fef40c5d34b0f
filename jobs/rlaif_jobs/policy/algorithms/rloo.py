"""RLOO (REINFORCE Leave-One-Out; Ahmadian et al. 2024): k responses per prompt, no value model.

Each response's sequence return R_i = (1 - beta) * r_i - beta * KL_i (the paper's objective) is
compared with the mean return of the prompt's other k - 1 responses:

    A_i = R_i - (sum_{j != i} R_j) / (k - 1)
    policy loss = -A_i * sum_t log pi(a_t | x_t)      averaged over responses

The baseline comes from the batch itself, so there is no value loss.
"""

from __future__ import annotations

import torch

from rlaif_jobs.policy.advantages import leave_one_out, sequence_returns
from rlaif_jobs.policy.kl import sequence_kl

NAME = "rloo"
USES_VALUE = False


def targets(scores: torch.Tensor, kl_tokens: torch.Tensor, mask: torch.Tensor, values: torch.Tensor | None,
            beta: float, group: int) -> tuple[torch.Tensor, None]:
    """(advantages [B, T]: A_i repeated over response i's tokens, no returns), detached."""
    seq_returns = sequence_returns(scores, sequence_kl(kl_tokens, mask), beta)
    adv = leave_one_out(seq_returns, group)
    return (adv[:, None] * mask).detach(), None


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                mask: torch.Tensor, clip_range: float) -> tuple[torch.Tensor, dict[str, float]]:
    """-A_i * sum_t log pi(a_t|x_t), averaged over responses."""
    return -(logprobs * advantages * mask).sum(-1).mean(), {}


value_loss = None
