"""The learning-rate multiplier: linear warm-up, then linear decay to zero at the last step."""

from __future__ import annotations

import pytest

from rlaif_jobs.train.engine import param_groups, warmup_linear_decay


def test_warmup_then_linear_decay():
    f = warmup_linear_decay(warmup_steps=4, total_steps=14)
    assert [f(s) for s in range(4)] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert f(4) == pytest.approx(1.0)
    assert f(9) == pytest.approx(0.5)
    assert f(14) == 0.0 and f(20) == 0.0


def test_no_warmup_starts_at_the_peak():
    f = warmup_linear_decay(0, 10)
    assert f(0) == 1.0 and f(5) == pytest.approx(0.5)


def test_no_weight_decay_on_biases_and_norms():
    import torch

    m = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    decay, plain = param_groups(m, 0.1)
    assert decay["weight_decay"] == 0.1 and [p.shape for p in decay["params"]] == [torch.Size([4, 4])]
    assert plain["weight_decay"] == 0.0 and len(plain["params"]) == 3  # linear bias, norm weight and bias
