"""Packed rows score like padded batches on a real model (tiny-random-llama), gradients included."""

from __future__ import annotations

import pytest
import torch
from reward_helpers import learnable_pairs

from rlaif_jobs.config.common import ModelRef
from rlaif_jobs.reward.format import encode_reward_inputs, reward_input, tokenize_reward_inputs
from rlaif_jobs.reward.model import load_reward_model
from rlaif_jobs.reward.packing import pack_pairs, packed_scores, supports_packing


@pytest.fixture(scope="module")
def model_and_pairs(tiny_model):
    torch.manual_seed(0)
    tok, model = load_reward_model(ModelRef(uri=tiny_model))
    # An untrained score head outputs ~0 for every token: give it weights so that scores differ.
    with torch.no_grad():
        model.score.weight.normal_(0, 1.0)
    recs = learnable_pairs(5, seed=3)
    recs[1]["responseB"] = recs[1]["responseA"]  # identical texts: everything but the last token shared
    texts = [(reward_input(tok, r["context"], r["responseA"]), reward_input(tok, r["context"], r["responseB"]))
             for r in recs]
    return tok, model, texts


def padded(model, tok, texts, max_length):
    enc = tokenize_reward_inputs(tok, [a for a, _ in texts] + [b for _, b in texts], max_length)
    r = model(**enc).logits[:, 0].float()
    return r[: len(texts)], r[len(texts):]


def packed(model, tok, texts, max_length):
    ids = [tuple(encode_reward_inputs(tok, [a, b], max_length)) for a, b in texts]
    return packed_scores(model, pack_pairs(ids, model.config.pad_token_id))


@pytest.mark.parametrize("max_length", [512, 24])  # 24: left-truncated texts share less of a prefix
def test_packed_scores_equal_padded_scores(model_and_pairs, max_length):
    tok, model, texts = model_and_pairs
    assert supports_packing(model) is None
    model.eval()
    with torch.no_grad():
        want_a, want_b = padded(model, tok, texts, max_length)
        got_a, got_b = packed(model, tok, texts, max_length)
    assert want_a.abs().max() > 1e-3  # scores that actually differ from zero
    torch.testing.assert_close(got_a, want_a, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_b, want_b, atol=1e-4, rtol=1e-4)


def test_packed_gradients_equal_padded_gradients(model_and_pairs):
    tok, model, texts = model_and_pairs
    model.train()
    grads = []
    for run in (padded, packed):
        model.zero_grad()
        r_a, r_b = run(model, tok, texts, 512)
        (r_a - 2 * r_b).sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert grads[0].abs().max() > 0
    torch.testing.assert_close(grads[1], grads[0], atol=1e-4, rtol=1e-3)
