"""The fused old-log-prob path of the policy step against the separate pass, on a tiny random Llama.

With one update pass, the trainer takes log pi_old from the update's own forward (detached) instead
of a no-grad pass before it (rlaif_jobs.policy.step). These tests check that this gives the same
loss and the same gradient as the separate pass for each algorithm, that per-micro-batch targets
equal whole-batch targets exactly when the trainer says so, and when it chooses each path.
The model is built from a config in memory (2 layers, width 32): no files, no lock.
"""

from __future__ import annotations

import pytest
import torch

from rlaif_jobs.config.policy import RLSpec
from rlaif_jobs.policy.algorithms import get_algorithm
from rlaif_jobs.policy.kl import kl_per_token
from rlaif_jobs.policy.models import make_batch, policy_forward
from rlaif_jobs.policy.step import fused_loss, fused_old_logprobs, has_dropout, reference_logprobs
from rlaif_jobs.train import BatchPlan

TEMPERATURE, BETA, CLIP, K = 0.9, 0.1, 0.2, 4


def tiny_llama(seed: int, **overrides):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         tie_word_embeddings=True, **overrides)
    return LlamaForCausalLM(config).float()


@pytest.fixture(scope="module")
def models():
    return tiny_llama(0), tiny_llama(1).eval()  # policy, reference (another init: KL != 0)


@pytest.fixture(scope="module")
def batch():
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(3, 64, (n,), generator=g).tolist() for n in (5, 9)]  # 2 prompts x K responses
    responses = [torch.randint(3, 64, (n,), generator=g).tolist() for n in (4, 7, 1, 6, 7, 3, 5, 2)]
    return make_batch([p for p in prompts for _ in range(K)], responses, pad_id=0)


def grads(model) -> torch.Tensor:
    out = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    model.zero_grad(set_to_none=True)
    return out


@pytest.mark.parametrize("name", ["rloo", "reinforce", "ppo"])
def test_fused_path_gives_the_separate_passes_loss_and_gradient(models, batch, name):
    policy, reference = models
    algo = get_algorithm(name)
    scores = torch.tensor([1.0, 0.0, 0.5, -1.0, 0.2, 0.9, -0.3, 0.0])
    values = torch.randn(batch.mask.shape, generator=torch.Generator().manual_seed(5)) if algo.uses_value else None
    ref = reference_logprobs(reference, batch, 8, TEMPERATURE)
    assert not ref.is_inference() and not ref.requires_grad

    # separate: log pi_old from a no-grad pass in eval mode, targets, then the update's forward
    policy.eval()
    with torch.no_grad():
        old, _ = policy_forward(policy, batch, TEMPERATURE)
    policy.train()
    adv, _ = algo.targets(scores, kl_per_token(old, ref, batch.mask), batch.mask, values, BETA, K)
    lp, _ = policy_forward(policy, batch, TEMPERATURE)
    loss_sep, stats_sep = algo.policy_loss(lp, old, adv, batch.mask, CLIP)
    loss_sep.backward()
    g_sep = grads(policy)

    # fused: one forward; log pi_old is its own output, detached
    lp, _ = policy_forward(policy, batch, TEMPERATURE)
    loss_fused, stats_fused, parts = fused_loss(algo, lp, ref, scores, values, batch.mask, BETA, CLIP, K)
    loss_fused.backward()
    g_fused = grads(policy)

    assert loss_fused.item() == pytest.approx(loss_sep.item(), rel=1e-5, abs=1e-6)
    assert g_fused.abs().sum() > 0
    torch.testing.assert_close(g_fused, g_sep, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(parts["advantages"], adv, rtol=1e-5, atol=1e-6)
    assert not any(t is not None and t.requires_grad for t in parts.values())
    for key in stats_sep:  # PPO: the ratio is 1 on both paths, so nothing is clipped
        assert stats_fused[key] == pytest.approx(stats_sep[key], abs=1e-5)


@pytest.mark.parametrize("name", ["rloo", "reinforce", "ppo"])
def test_micro_batch_targets_equal_whole_batch_targets_exactly_for_group_algorithms(name):
    algo = get_algorithm(name)
    g = torch.Generator().manual_seed(7)
    scores, kl = torch.randn(8, generator=g), torch.randn(8, 5, generator=g) * 0.1
    mask = (torch.arange(5) < torch.tensor([5, 3, 1, 4, 2, 5, 5, 3])[:, None]).float()
    values = torch.randn(8, 5, generator=g)
    whole, _ = algo.targets(scores, kl, mask, values, BETA, K)
    halves = torch.cat([algo.targets(scores[r], kl[r], mask[r], values[r], BETA, K)[0]
                        for r in (slice(0, 4), slice(4, 8))])  # whole groups of K in each half
    assert torch.allclose(halves, whole, atol=1e-6) == algo.group_targets


def _spec(**rl) -> RLSpec:
    return RLSpec.model_validate({"samplesPerPrompt": K, **rl})


@pytest.mark.parametrize(("rl", "plan", "expected"), [
    ({"algorithm": "rloo"}, (16, 16, 1), True),
    ({"algorithm": "rloo"}, (16, 8, 2), True),  # whole groups in each micro-batch
    ({"algorithm": "rloo"}, (16, 2, 8), False),  # a group split over micro-batches
    ({"algorithm": "reinforce"}, (16, 8, 2), True),
    ({"algorithm": "ppo", "ppoEpochs": 1}, (16, 16, 1), True),
    ({"algorithm": "ppo", "ppoEpochs": 1}, (16, 8, 2), False),  # whitening spans the batch
    ({"algorithm": "ppo", "ppoEpochs": 2}, (16, 16, 1), False),  # the second pass needs the real pi_old
])
def test_when_the_fused_path_is_taken(models, rl, plan, expected):
    b, m, ga = plan
    assert fused_old_logprobs(get_algorithm(rl["algorithm"]), _spec(**rl),
                              BatchPlan(global_batch=b, micro_batch=m, grad_accum=ga, world_size=1),
                              models[0]) is expected


def test_a_policy_with_dropout_takes_the_separate_pass(models):
    assert not has_dropout(models[0])
    assert has_dropout(tiny_llama(0, attention_dropout=0.1))
    with_layer = tiny_llama(0)
    with_layer.lm_head = torch.nn.Sequential(torch.nn.Dropout(0.2), with_layer.lm_head)
    assert has_dropout(with_layer)
    assert not fused_old_logprobs(get_algorithm("rloo"), _spec(algorithm="rloo"),
                                  BatchPlan(global_batch=16, micro_batch=16, grad_accum=1, world_size=1),
                                  tiny_llama(0, attention_dropout=0.1))
