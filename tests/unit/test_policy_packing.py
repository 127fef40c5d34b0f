"""Packed policy forwards (policy/packing.py): each shared prompt once, no padding; the log-probs,
entropies and gradients equal the padded batch's. A tiny random Llama built in memory (no files)."""

from __future__ import annotations

import pytest
import torch

from rlaif_jobs.packed_attention import GROUPED_SDPA, SPANS_KWARG, group_spans, grouped_attention
from rlaif_jobs.policy import models as policy_models
from rlaif_jobs.policy.models import make_batch, policy_forward
from rlaif_jobs.policy.packing import pack_rows, supports_packing


def tiny_llama(seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                         tie_word_embeddings=True, attn_implementation="sdpa")
    return LlamaForCausalLM(config).float()


def sample_batch(k: int, empty: bool = False):
    g = torch.Generator().manual_seed(k)
    prompts = [torch.randint(3, 64, (n,), generator=g).tolist() for n in (5, 9, 3)]
    lengths = [4, 7, 1, 6, 7, 3, 5, 2, 6, 1, 2, 5][: 3 * k]
    responses = [torch.randint(3, 64, (n,), generator=g).tolist() for n in lengths]
    if empty:
        responses[1] = []  # a sample that ended at once (EOS first): no tokens, masked out
    return make_batch([p for p in prompts for _ in range(k)], responses, pad_id=0)


def padded(model, batch, temperature):
    """policy_forward with packing off: the reference result."""
    orig = policy_models.supports_packing
    policy_models.supports_packing = lambda m: False
    try:
        return policy_forward(model, batch, temperature, with_entropy=True)
    finally:
        policy_models.supports_packing = orig


@pytest.mark.parametrize(("k", "empty"), [(2, False), (4, False), (2, True)])
def test_packed_logprobs_entropy_and_gradient_equal_the_padded_batch(k, empty):
    model = tiny_llama(0)
    batch = sample_batch(k, empty)
    assert supports_packing(model) and pack_rows(batch) is not None
    want_lp, want_ent = padded(model, batch, 0.9)
    (want_lp * batch.mask).sum().backward()
    want_grad = torch.cat([p.grad.flatten() for p in model.parameters()])
    model.zero_grad(set_to_none=True)
    got_lp, got_ent = policy_forward(model, batch, 0.9, with_entropy=True)
    (got_lp * batch.mask).sum().backward()
    got_grad = torch.cat([p.grad.flatten() for p in model.parameters()])
    m = batch.mask.bool()
    assert torch.allclose(got_lp[m], want_lp[m], atol=1e-5)
    assert torch.allclose(got_ent[m], want_ent[m], atol=1e-5)
    assert torch.allclose(got_grad, want_grad, atol=1e-5)


def test_packing_computes_each_prompt_once_and_skips_distinct_prompts():
    batch = sample_batch(2)
    packed = pack_rows(batch)
    prompt_tokens = 5 + 9 + 3
    assert packed.input_ids.shape[1] == prompt_tokens + int(batch.mask.sum())  # no padding, prompts once
    assert packed.input_ids.shape[1] < batch.input_ids.numel() / 2
    distinct = make_batch([[5, 6], [7, 8, 9]], [[1, 2], [3]], pad_id=0)
    assert pack_rows(distinct) is None  # nothing shared: the padded pass


def test_models_without_a_4d_mask_use_the_padded_batch():
    model = tiny_llama(0)
    model.config._attn_implementation = "flash_attention_2"
    assert not supports_packing(model)


def test_grouped_attention_runs_each_prompt_group_alone_with_the_full_masks_result(monkeypatch):
    model = tiny_llama(0)
    packed = pack_rows(sample_batch(4))
    spans = group_spans(packed.group)
    assert spans == ((0, 23), (23, 49), (49, 66)) and spans[-1][1] == packed.input_ids.shape[1]
    args = dict(input_ids=packed.input_ids, position_ids=packed.position_ids,
                attention_mask=packed.attention_mask(torch.float32), use_cache=False)
    want = model(**args).logits
    calls = []
    sdpa = torch.nn.functional.scaled_dot_product_attention
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention",
                        lambda q, *a, **kw: calls.append(q.shape[2]) or sdpa(q, *a, **kw))
    with grouped_attention(model) as switched:
        assert switched and model.config._attn_implementation == GROUPED_SDPA
        got = model(**args, **{SPANS_KWARG: spans}).logits
    assert model.config._attn_implementation == "sdpa"  # restored
    assert calls == [23, 26, 17] * 2  # per layer, one call per group of its own length
    assert torch.allclose(got, want, atol=1e-5)
    eager = tiny_llama(0)
    eager.config._attn_implementation = "eager"
    with grouped_attention(eager) as switched:
        assert not switched and eager.config._attn_implementation == "eager"
