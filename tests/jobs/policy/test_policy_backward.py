"""``rlaif_jobs.train.engine.backward`` against ``engine.backward`` on real DeepSpeed engines (one gloo rank).

On one process at ZeRO 0 the helper skips DeepSpeed's gradient all-reduce (``no_sync``); the policy
trainer uses it for every backward. The weights after several optimizer steps with gradient
accumulation must be those of DeepSpeed's own path, in fp32 and bf16; at ZeRO 2 it leaves
DeepSpeed's reduction alone, with the same result.
"""

from __future__ import annotations

import pytest
import torch

from rlaif_jobs.config.training import TrainerSpec
from rlaif_jobs.train import build_ds_config, build_engine, plan_batches
from rlaif_jobs.train.engine import backward


def trained(stage: int, precision: str, use_helper: bool) -> tuple[list[torch.Tensor], list[torch.Tensor], int]:
    """(weights before, weights after 3 optimizer steps of 2 micro-batches, DeepSpeed all-reduce calls)."""
    spec = TrainerSpec.model_validate({"batchSize": 8, "microBatchSize": 4, "learningRate": 0.05,
                                       "warmupRatio": 0.0, "precision": precision,
                                       "deepspeed": {"zeroStage": stage}})
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    engine = build_engine(model, spec, build_ds_config(spec, plan_batches(spec, 1)), total_steps=3)
    before = [p.detach().float().clone() for p in engine.module.parameters()]
    calls = 0
    reduce = engine.allreduce_gradients

    def counted(*args, **kwargs):  # still DeepSpeed's own reduction, only counted
        nonlocal calls
        calls += 1
        return reduce(*args, **kwargs)

    engine.allreduce_gradients = counted
    data = torch.Generator().manual_seed(1)
    x, y = torch.randn(24, 8, generator=data), torch.randn(24, 1, generator=data)
    dtype = next(engine.module.parameters()).dtype
    for lo in range(0, 24, 4):
        loss = torch.nn.functional.mse_loss(engine(x[lo:lo + 4].to(dtype)).float(), y[lo:lo + 4])
        if use_helper:
            backward(engine, loss)
        else:
            engine.backward(loss)
        engine.step()
    assert engine.global_steps == 3
    return before, [p.detach().float().clone() for p in engine.module.parameters()], calls


@pytest.mark.parametrize(("stage", "precision"), [(0, "fp32"), (0, "bf16"), (2, "fp32")])
def test_backward_helper_trains_exactly_like_deepspeeds_backward(one_rank, stage, precision):
    start, ours, our_calls = trained(stage, precision, True)
    _, theirs, their_calls = trained(stage, precision, False)
    assert not torch.allclose(ours[0], start[0])  # the steps did move the weights
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    assert their_calls > 0
    assert (our_calls == 0) == (stage == 0)  # skipped on one rank at ZeRO 0 only
