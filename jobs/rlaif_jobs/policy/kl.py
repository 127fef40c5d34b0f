"""Per-token log-probabilities, the KL estimate against the frozen SFT reference, and entropy.

All tensors are laid out [batch, response_len] with a 0/1 ``mask`` marking real response tokens
(padding after a response's last token is 0). Pure torch, no model: unit-tested on hand-computed
values in tests/unit/test_policy_math.py.

KL(pi || pi_SFT) of a sampled response y is estimated, as in the paper's objective and in every RLHF
code base we know (TRL, OpenRLHF, trlx), by the sum over its tokens of
``log pi(y_t | x, y_<t) - log pi_SFT(y_t | x, y_<t)`` (the "k1" estimator): unbiased for the
sequence KL because y is drawn from pi. It enters the reward without a gradient.
"""

from __future__ import annotations

import torch


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log softmax(logits / temperature)[token] at each position: [B, T, V], [B, T] -> [B, T].

    The temperature is the sampling temperature, so the probabilities are those of the distribution
    the rollouts were drawn from (TRL does the same); float32 for a stable log-softmax.
    """
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    # The same operations as logprobs_and_entropy's, so a policy scored with entropy and its reference
    # scored without give bit-identical log-probs where the two models are the same (KL exactly 0).
    logp = torch.log_softmax(logits, dim=-1)
    return torch.gather(logp, -1, tokens.long().unsqueeze(-1)).squeeze(-1)


def entropy_from_logits(logits: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Entropy (nats) of softmax(logits / temperature) at each position: [B, T, V] -> [B, T]."""
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1)
    return -(logp.exp() * logp).sum(-1)


def logprobs_and_entropy(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``token_logprobs`` and ``entropy_from_logits`` of the same logits in one pass: [..., V], [...] ->
    (log-probs [...], entropy [...], the latter without a gradient).

    One log-softmax over the vocabulary serves both (the selected tokens' log-probs are gathered from
    it, the entropy is -sum p log p with p = exp(log p)): the two-pass version scales the logits and
    normalises them twice, and over a 49k vocabulary those passes are a visible share of a CPU update.
    """
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    logp = torch.log_softmax(logits, dim=-1)
    picked = torch.gather(logp, -1, tokens.long().unsqueeze(-1)).squeeze(-1)
    with torch.no_grad():
        plogp = logp.exp().mul_(logp)  # in place: one [..., V] temporary instead of two
        entropy = -plogp.sum(-1)
    return picked, entropy


def kl_per_token(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The k1 estimate log pi - log pi_SFT at each response token, 0 on padding: [B, T]."""
    return (logprobs - ref_logprobs) * mask


def sequence_kl(kl_tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """KL(pi || pi_SFT) estimate of each response: the sum over its tokens, [B, T] -> [B]."""
    return (kl_tokens * mask).sum(-1)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``x`` over the positions where ``mask`` is 1 (0 when there are none)."""
    return (x * mask).sum() / mask.sum().clamp(min=1)
