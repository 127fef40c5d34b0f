"""Gradient clipping at ZeRO 0 in fp32 (rlaif_jobs.train.clip) on real DeepSpeed engines (one gloo rank).

build_engine swaps DeepSpeed's per-parameter clip for a fused one. A step with a huge gradient must
reach the optimizer clipped to maxGradNorm, once per optimizer step, on the gradients accumulated over
the micro-batches; the norm before clipping is reported by ``engine.get_global_grad_norm()``; and the
weights after several steps must be DeepSpeed's own clipping's. Other set-ups keep DeepSpeed's clip.
"""

from __future__ import annotations

import pytest
import torch

from rlaif_jobs.config.training import TrainerSpec
from rlaif_jobs.train import build_ds_config, build_engine, plan_batches
from rlaif_jobs.train.clip import fused_clip_, install_fused_clipping
from rlaif_jobs.train.engine import backward

MAX_NORM = 0.5


def test_fused_clip_scales_to_max_norm_and_leaves_small_gradients_alone():
    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(s, generator=g) * 100 for s in ((16, 8), (16,), (1, 16), (3,))]
    norm_before = torch.linalg.vector_norm(torch.cat([x.flatten() for x in grads]))
    expected = [x * (MAX_NORM / (norm_before + 1e-6)) for x in grads]
    norm = fused_clip_(grads, MAX_NORM)
    torch.testing.assert_close(norm, norm_before)
    for a, b in zip(grads, expected, strict=True):
        torch.testing.assert_close(a, b)
    assert float(torch.linalg.vector_norm(torch.cat([x.flatten() for x in grads]))) == pytest.approx(MAX_NORM, rel=1e-5)
    small = [torch.full((4,), 0.01), torch.full((2, 2), -0.02)]
    kept = [x.clone() for x in small]
    fused_clip_(small, MAX_NORM)
    for a, b in zip(small, kept, strict=True):
        assert torch.equal(a, b)  # coefficient >= 1: untouched, bit for bit


def make_engine(stage: int = 0, precision: str = "fp32"):
    spec = TrainerSpec.model_validate({"batchSize": 8, "microBatchSize": 4, "learningRate": 0.01,
                                       "warmupRatio": 0.0, "precision": precision, "maxGradNorm": MAX_NORM,
                                       "deepspeed": {"zeroStage": stage}})
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    return build_engine(model, spec, build_ds_config(spec, plan_batches(spec, 1)), total_steps=3)


def run(engine, record: list[float]) -> list[torch.Tensor]:
    """3 optimizer steps of 2 micro-batches with a huge loss; ``record`` gets the gradients' global norm
    as the optimizer sees them at each step. Returns the weights after."""
    step = engine.optimizer.step

    def recorded(*args, **kwargs):
        grads = [p.grad.flatten() for p in engine.module.parameters() if p.grad is not None]
        record.append(float(torch.linalg.vector_norm(torch.cat(grads))))
        return step(*args, **kwargs)

    engine.optimizer.step = recorded
    data = torch.Generator().manual_seed(1)
    x, y = torch.randn(24, 8, generator=data), torch.randn(24, 1, generator=data)
    for lo in range(0, 24, 4):
        loss = 1e4 * torch.nn.functional.mse_loss(engine(x[lo:lo + 4]), y[lo:lo + 4] + 100.0)
        backward(engine, loss)
        engine.step()
    assert engine.global_steps == 3
    return [p.detach().clone() for p in engine.module.parameters()]


def test_a_huge_gradient_is_clipped_once_per_step_like_deepspeeds_own_clip(one_rank):
    ours = make_engine()
    calls = 0
    fused = ours.clip_fp32_gradients

    def counted():
        nonlocal calls
        calls += 1
        fused()

    ours.clip_fp32_gradients = counted
    seen: list[float] = []
    after = run(ours, seen)
    assert calls == 3  # once per optimizer step, not per micro-batch
    assert seen == pytest.approx([MAX_NORM] * 3, rel=1e-4)  # the accumulated gradients, clipped
    assert float(ours.get_global_grad_norm()) > 1000 * MAX_NORM  # the norm before clipping is reported

    theirs = make_engine()
    theirs.__dict__.pop("clip_fp32_gradients")  # DeepSpeed's own per-parameter clip
    seen_theirs: list[float] = []
    reference = run(theirs, seen_theirs)
    assert seen_theirs == pytest.approx(seen, rel=1e-5)
    for a, b in zip(after, reference, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("stage", "precision"), [(2, "fp32"), (0, "bf16")])
def test_deepspeeds_own_clip_elsewhere(one_rank, stage, precision):
    engine = make_engine(stage, precision)
    assert "clip_fp32_gradients" not in engine.__dict__
    assert install_fused_clipping(engine) is False
