"""training.scoreHeadInit: a zero head makes every reward 0 before training; normal keeps transformers'
random head; a model with no linear one-output head is refused naming the field."""

from __future__ import annotations

import pytest
import torch

from rlaif_jobs.config.common import ModelRef
from rlaif_jobs.reward.model import BaseModelError, load_reward_model, zero_score_head


def _rewards(model, tokenizer) -> list[float]:
    enc = tokenizer(["a short answer", "a much longer answer that goes on and on"], return_tensors="pt",
                    padding=True)
    with torch.no_grad():
        return model(**enc).logits[:, 0].tolist()


def test_zero_head_scores_everything_zero_and_normal_does_not(tiny_model):
    torch.manual_seed(0)
    tok, model = load_reward_model(ModelRef(uri=tiny_model), "zero")
    assert _rewards(model, tok) == [0.0, 0.0]
    assert any(p.abs().sum() > 0 for p in model.model.parameters())  # only the head is zeroed
    torch.manual_seed(0)
    tok, model = load_reward_model(ModelRef(uri=tiny_model), "normal")
    assert any(abs(r) > 0 for r in _rewards(model, tok))


def test_a_model_without_a_linear_score_head_is_refused_by_field():
    with pytest.raises(BaseModelError, match=r"training\.scoreHeadInit: zero needs a linear score head"):
        zero_score_head(torch.nn.Sequential(torch.nn.Linear(4, 4)), "hf://some/encoder")
