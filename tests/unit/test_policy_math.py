"""The policy stage's math against values computed by hand: log-probs, KL, rewards, returns,
advantages, the three algorithms' losses, d-RLAIF's expected score, and the win-rate regression."""

from __future__ import annotations

import math

import pytest
import torch

from rlaif_jobs.feedback import expected_score, rescale, score_variants
from rlaif_jobs.policy.advantages import (
    last_index,
    leave_one_out,
    returns_to_go,
    sequence_returns,
    token_rewards,
    whiten,
)
from rlaif_jobs.policy.algorithms import get_algorithm, ppo, reinforce, rloo
from rlaif_jobs.policy.kl import (
    ROWS_PER_CHUNK,
    kl_per_token,
    logprobs_and_entropy,
    masked_mean,
    sequence_kl,
    token_logprobs,
)

T = torch.tensor
approx = pytest.approx


def test_token_logprobs_and_temperature():
    logits = T([[[0.0, math.log(3.0)]]])  # softmax = [1/4, 3/4]
    assert token_logprobs(logits, T([[1]])).item() == approx(math.log(0.75))
    assert token_logprobs(logits, T([[0]])).item() == approx(math.log(0.25))
    # temperature 2: logits [0, ln3 / 2] -> P(1) = sqrt(3) / (1 + sqrt(3))
    assert token_logprobs(logits, T([[1]]), temperature=2.0).item() == approx(math.log(3**0.5 / (1 + 3**0.5)))


def test_entropy():
    _, h = logprobs_and_entropy(torch.zeros(1, 1, 4), T([[0]]))
    assert h.item() == approx(math.log(4))
    # p = [1/4, 3/4]: H = -(1/4 ln 1/4 + 3/4 ln 3/4)
    _, h = logprobs_and_entropy(T([[[0.0, math.log(3.0)]]]), T([[0]]))
    assert h.item() == approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


def _autograd_composite(logits, tokens, temperature):
    """What the fused function replaces: log_softmax, gather, and -sum p log p, through autograd."""
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1), -(logp.exp() * logp).sum(-1).detach()


@pytest.mark.parametrize("temperature", [1.0, 0.9])
@pytest.mark.parametrize("shape", [(3, 5, 1000), (2 * ROWS_PER_CHUNK + 3, 1000)])  # [B, T, V]; [N, V] over chunks
def test_fused_logprobs_and_entropy_equal_autograds_composite(temperature, shape):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(*shape, generator=g) * 4
    tokens = torch.randint(0, shape[-1], shape[:-1], generator=g)
    weights = torch.randn(shape[:-1], generator=g)
    want = logits.clone().requires_grad_()
    want_lp, want_ent = _autograd_composite(want, tokens, temperature)
    (want_lp * weights).sum().backward()
    got = logits.clone().requires_grad_()
    got_lp, got_ent = logprobs_and_entropy(got, tokens, temperature)
    (got_lp * weights).sum().backward()
    assert not got_ent.requires_grad  # a metric: no graph through it
    assert torch.allclose(got_lp, want_lp, atol=1e-5, rtol=0)
    assert torch.allclose(got_ent, want_ent, atol=1e-5, rtol=0)
    assert torch.allclose(got.grad, want.grad, atol=1e-6, rtol=0)
    # the reference's path (no entropy, no graph) gives bit-identical log-probs: KL exactly 0 between equal models
    with torch.inference_mode():
        assert torch.equal(token_logprobs(logits, tokens, temperature), got_lp.detach())


def test_fused_logprobs_of_a_strided_slice_and_of_bfloat16_logits():
    g = torch.Generator().manual_seed(1)
    full = torch.randn(2, 7, 300, generator=g)
    tokens = torch.randint(0, 300, (2, 6), generator=g)
    sliced = full[:, :-1, :]  # the padded path's logits[:, :-1, :]: not contiguous
    assert torch.allclose(token_logprobs(sliced, tokens, 0.7), _autograd_composite(sliced, tokens, 0.7)[0], atol=1e-5)
    half = full.bfloat16().requires_grad_()
    lp, _ = logprobs_and_entropy(half[:, :-1, :], tokens)
    lp.sum().backward()
    assert lp.dtype == torch.float32 and half.grad is not None and half.grad.dtype == torch.bfloat16


def test_kl_estimate_per_token_and_per_sequence():
    logp = T([[-1.0, -2.0, -3.0]])
    ref = T([[-1.5, -1.0, -9.0]])
    mask = T([[1.0, 1.0, 0.0]])
    kl = kl_per_token(logp, ref, mask)
    assert kl.tolist() == [[0.5, -1.0, 0.0]]  # padding contributes nothing
    assert sequence_kl(kl, mask).tolist() == [-0.5]
    assert masked_mean(kl, mask).item() == approx(-0.25)


def test_last_index():
    mask = T([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    assert last_index(mask).tolist() == [2, 0, 3]


def test_token_rewards_put_the_score_on_the_last_token():
    # beta 0.1, r = 2: rewards = -0.1 * kl_t, plus 0.9 * 2 = 1.8 on the last real token (index 2)
    scores = T([2.0])
    kl = T([[0.5, -1.0, 0.2, 0.7]])
    mask = T([[1.0, 1.0, 1.0, 0.0]])
    r = token_rewards(scores, kl, mask, beta=0.1)
    assert r[0].tolist() == approx([-0.05, 0.1, -0.02 + 1.8, 0.0])
    z = returns_to_go(r, mask)
    assert z[0].tolist() == approx([1.83, 1.88, 1.78, 0.0])
    # the return from the first token is exactly the paper's objective (1 - beta) r - beta KL
    assert z[0, 0].item() == approx(sequence_returns(scores, sequence_kl(kl, mask), 0.1).item())


def test_reinforce_with_value_baseline():
    scores = T([2.0])
    kl = T([[0.5, -1.0, 0.2, 0.0]])
    mask = T([[1.0, 1.0, 1.0, 0.0]])
    values = T([[0.5, 1.0, 2.0, 9.0]])
    adv, returns = reinforce.targets(scores, kl, mask, values, beta=0.1, group=1)
    assert returns[0].tolist() == approx([1.83, 1.88, 1.78, 0.0])
    assert adv[0].tolist() == approx([1.33, 0.88, -0.22, 0.0])
    logp = T([[-1.0, -2.0, -0.5, -7.0]], requires_grad=True)
    loss, _ = reinforce.policy_loss(logp, logp.detach(), adv, mask, 0.2)
    # -(-1 * 1.33 + -2 * 0.88 + -0.5 * -0.22) = 2.98
    assert loss.item() == approx(2.98)
    loss.backward()
    assert logp.grad[0].tolist() == approx([-1.33, -0.88, 0.22, 0.0])  # d/dlogp = -A_t, none through A
    v = values.clone().requires_grad_(True)
    vloss = reinforce.value_loss(v, values, returns, mask, 0.2)
    assert vloss.item() == approx((0.5 - 1.83) ** 2 + (1.0 - 1.88) ** 2 + (2.0 - 1.78) ** 2)
    # two responses: the loss is the mean over responses of per-response sums
    two = reinforce.policy_loss(T([[-1.0], [-3.0]]), None, T([[1.0], [2.0]]), T([[1.0], [1.0]]), 0.2)[0]
    assert two.item() == approx((1.0 + 6.0) / 2)


def test_leave_one_out_baseline():
    # one group of 4: R = [1, 0, 0.5, 0.5]; baseline_i = (2 - R_i) / 3
    adv = leave_one_out(T([1.0, 0.0, 0.5, 0.5]), group=4)
    assert adv.tolist() == approx([2 / 3, -2 / 3, 0.0, 0.0])
    # two groups of 2: A = R_i - R_other
    assert leave_one_out(T([1.0, 3.0, 5.0, 5.0]), group=2).tolist() == approx([-2.0, 2.0, 0.0, 0.0])
    with pytest.raises(ValueError):
        leave_one_out(T([1.0, 2.0, 3.0]), group=2)


def test_rloo_targets_and_loss():
    scores = T([1.0, 0.0])
    kl = T([[0.2, 0.0], [-0.2, 0.0]])
    mask = T([[1.0, 0.0], [1.0, 0.0]])
    # R = 0.9 * r - 0.1 * KL = [0.88, 0.02]; A = [0.86, -0.86] spread over each response's tokens
    adv, returns = rloo.targets(scores, kl, mask, None, beta=0.1, group=2)
    assert returns is None
    assert adv.flatten().tolist() == approx([0.86, 0.0, -0.86, 0.0])
    logp = T([[-1.0, -5.0], [-2.0, -5.0]])
    loss, _ = rloo.policy_loss(logp, logp, adv, mask, 0.2)
    assert loss.item() == approx(-(-1.0 * 0.86 + -2.0 * -0.86) / 2)
    assert get_algorithm("rloo").uses_value is False and get_algorithm("rloo").value_loss is None


def test_ppo_clipped_surrogate_and_value_loss():
    old = T([[-1.0, -1.0]])
    logp = old + T([[math.log(1.5), math.log(0.5)]])  # ratios 1.5 and 0.5
    adv = T([[1.0, -1.0]])
    mask = T([[1.0, 1.0]])
    loss, stats = ppo.policy_loss(logp, old, adv, mask, clip_range=0.2)
    # token 1: max(-1.5, -1.2) = -1.2; token 2: max(0.5, 0.8) = 0.8; mean -0.2; both clipped
    assert loss.item() == approx(-0.2)
    assert stats["clipFraction"] == approx(1.0)
    v = ppo.value_loss(T([[2.0]]), T([[1.0]]), T([[1.5]]), T([[1.0]]), clip_range=0.2)
    assert v.item() == approx(0.5 * 0.25)  # max((2 - 1.5)^2, (1.2 - 1.5)^2) / 2
    adv_w, returns = ppo.targets(T([1.0, 0.0]), torch.zeros(2, 2), torch.ones(2, 2), torch.zeros(2, 2), 0.0, 1)
    assert returns.tolist() == [[1.0, 1.0], [0.0, 0.0]]
    assert adv_w.mean().item() == approx(0.0, abs=1e-6) and adv_w.std(unbiased=False).item() == approx(1.0, rel=1e-4)


def test_whiten():
    x = whiten(T([[1.0, 2.0, 3.0, 100.0]]), T([[1.0, 1.0, 1.0, 0.0]]))
    s = math.sqrt(2 / 3)
    assert x[0].tolist() == approx([-1 / s, 0.0, 1 / s, 0.0], rel=1e-5)


def test_expected_score_and_rescale():
    variants = score_variants(None)  # no tokenizer: "10" assumed to be "1" + "0"
    texts = [text for _, text, _ in variants]
    assert texts[:10] == [str(i) for i in range(1, 11)] and texts[10:] == [f" {i}" for i in range(1, 11)]
    uniform = [math.log(0.01)] * 10 + [None] * 10
    # "10" overlaps "1": P(1) = 0.01 - 0.01 = 0, P(2..10) = 0.01 each -> E = (2 + ... + 10) / 9 = 6
    assert expected_score(uniform, variants) == approx(6.0)
    lp: list[float | None] = [None] * 20
    lp[0] = math.log(0.5)  # "1" (includes every answer that goes on as "10")
    lp[9] = math.log(0.3)  # "10"
    lp[16] = math.log(0.2)  # " 7"
    # P(1) = 0.5 - 0.3 = 0.2, P(10) = 0.3, P(7) = 0.2 -> E = (0.2 + 3 + 1.4) / 0.7
    assert expected_score(lp, variants) == approx((0.2 * 1 + 0.3 * 10 + 0.2 * 7) / 0.7)
    assert math.isnan(expected_score([None] * 20, variants))
    assert rescale(10.0) == approx(1.0) and rescale(1.0) == approx(-1.0) and rescale(5.5) == 0.0


def test_expected_score_without_overlap():
    """A tokenizer where "10" is one token: P("1") does not contain it and nothing is subtracted."""

    class OneTokenTen:  # the smallest object with a tokenizer's __call__: "10" is a single id
        def __call__(self, text, add_special_tokens=False):
            return {"input_ids": [len(text) * 100 + hash(text) % 97]}

    variants = score_variants(OneTokenTen())
    assert all(over is None for _, _, over in variants)
    lp: list[float | None] = [None] * 20
    lp[0], lp[9] = math.log(0.5), math.log(0.3)
    assert expected_score(lp, variants) == approx((0.5 + 3.0) / 0.8)
