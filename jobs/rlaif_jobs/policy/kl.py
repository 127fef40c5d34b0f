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

from typing import Any

import torch

ROWS_PER_CHUNK = 16  # [16, 49152] float32 = 3 MB: a chunk's temporaries stay in the CPU's cache


class _PickedLogprobs(torch.autograd.Function):
    """log softmax(z / T)[token] per row of [N, V] logits, and optionally the entropy of softmax(z / T),
    reading the logits from memory once (each chunk's second read, for the shift, hits cache) and writing
    one [N, V] tensor (the probabilities, kept for the backward).

    Rows go in chunks of ``ROWS_PER_CHUNK``, so the per-chunk temporaries (the shifted logits
    (z - max z) / T and their exp) live in cache rather than in fresh [N, V] allocations. Per row: the
    picked log-prob is the token's shifted logit minus log(sum exp); the entropy (a metric, no gradient)
    is log(sum exp) - sum(p * shifted), so no log-probability tensor is written. Backward:
    d/dz = (onehot(token) - p) / T from the saved p, one pass and a scatter; autograd's composite (the
    division, log_softmax, a zero-filled gather gradient, log_softmax's backward recomputing exp) made
    about ten [N, V] passes, and over a 49k vocabulary those were a visible share of a CPU update.
    """

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, tokens: torch.Tensor, inv_t: float, entropy: bool
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        needs_grad = ctx.needs_input_grad[0]
        index = tokens.long().unsqueeze(-1)
        picked = logits.new_empty(logits.shape[0])
        ent = logits.new_empty(logits.shape[0]) if entropy else None
        probs = torch.empty_like(logits) if needs_grad else None
        for lo in range(0, logits.shape[0], ROWS_PER_CHUNK):
            rows = slice(lo, lo + ROWS_PER_CHUNK)
            z = logits[rows]
            shifted = z - z.amax(-1, keepdim=True)
            if inv_t != 1.0:
                shifted.mul_(inv_t)  # (z - max z) / T: the max of z / T is max z / T
            exp = torch.exp(shifted, out=probs[rows]) if probs is not None else shifted.exp()
            total = exp.sum(-1, keepdim=True)
            log_total = total.log().squeeze(-1)
            picked[rows] = shifted.gather(-1, index[rows]).squeeze(-1) - log_total
            if probs is not None or ent is not None:
                exp.div_(total)
            if ent is not None:
                ent[rows] = log_total - torch.linalg.vecdot(exp, shifted)
        if ent is not None:
            ctx.mark_non_differentiable(ent)
        if probs is not None:
            ctx.save_for_backward(probs, index)
        ctx.inv_t = inv_t
        return picked, ent

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor, _: Any) -> tuple[torch.Tensor, None, None, None]:
        probs, index = ctx.saved_tensors
        scaled = (grad * ctx.inv_t).unsqueeze(-1)
        grad_logits = probs * -scaled
        grad_logits.scatter_add_(-1, index, scaled)
        return grad_logits, None, None, None


def _picked(logits: torch.Tensor, tokens: torch.Tensor, temperature: float, entropy: bool
            ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """_PickedLogprobs on [..., V] logits (flattened to rows, results shaped back to [...])."""
    z = logits.float()
    lead = z.shape[:-1]
    picked, ent = _PickedLogprobs.apply(z.reshape(-1, z.shape[-1]), tokens.reshape(-1), 1.0 / temperature, entropy)
    return picked.view(lead), None if ent is None else ent.view(lead)


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log softmax(logits / temperature)[token] at each position: [..., V], [...] -> [...].

    The temperature is the sampling temperature, so the probabilities are those of the distribution
    the rollouts were drawn from (TRL does the same); float32 for a stable softmax. The same
    operations as ``logprobs_and_entropy``'s, so a policy scored with entropy and its reference scored
    without give bit-identical log-probs where the two models are the same (KL exactly 0).
    """
    return _picked(logits, tokens, temperature, False)[0]


def logprobs_and_entropy(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """``token_logprobs`` and the entropy (nats) of softmax(logits / temperature) of the same logits in
    one pass: [..., V], [...] -> (log-probs [...], entropy [...], the latter without a gradient)."""
    picked, entropy = _picked(logits, tokens, temperature, True)
    assert entropy is not None
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
