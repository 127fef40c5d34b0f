"""Gradient clipping by the global L2 norm in two fused passes, for DeepSpeed's unpartitioned fp32 path.

At ZeRO 0 in fp32, DeepSpeed 0.19's engine clips with ``deepspeed.runtime.utils.clip_grad_norm_`` once
per optimizer step (after the accumulation and the all-reduce, before ``optimizer.step``): a norm and a
multiply per parameter, dispatched from Python, and the multiply runs even when the coefficient is
1. ``fused_clip_`` computes the same norm with ``torch._foreach_norm`` and scales with
``torch._foreach_mul_``, only when it must; ``install_fused_clipping(engine)`` swaps it in for the
engine's ``clip_fp32_gradients`` (the one hook DeepSpeed calls there), so clipping still happens at
the same point, once per step, on the accumulated gradients. It also keeps the norm, so
``engine.get_global_grad_norm()`` answers at ZeRO 0 fp32 as it does elsewhere. bf16, fp16 and ZeRO 1-3
clip inside DeepSpeed's optimizer wrappers over flat buffers and are left alone.
Measured on the 135M policy (bench/bench_policy.py's shapes, 2 CPU cores): DeepSpeed's clip took
~0.05 s of a ~5.5 s update; the update is its forward and backward matmuls, not Python loops.
"""

from __future__ import annotations

from typing import Any

import torch


def fused_clip_(grads: list[torch.Tensor], max_norm: float, group: Any = None) -> torch.Tensor:
    """Scales ``grads`` in place so that their global L2 norm is at most ``max_norm``; returns the norm
    before clipping (a 0-d float32 tensor on the gradients' device).

    Inputs: the gradients, the norm to clip to, and the data-parallel process group when there is one
    (None: this process only). As DeepSpeed does, the norm is averaged over the group (gradients are
    already all-reduced there, so every rank holds the same norm; the average keeps them in lockstep)
    and the coefficient is ``max_norm / (norm + 1e-6)``, capped at 1.
    """
    if not grads:
        return torch.zeros(())
    norms = torch._foreach_norm(grads, 2.0)
    total = torch.linalg.vector_norm(torch.stack([n.float() for n in norms]), 2.0)
    if group is not None:
        import torch.distributed as tdist

        world = tdist.get_world_size(group=group)
        if world > 1:
            total = total / world
            tdist.all_reduce(total, group=group)
    coef = max_norm / (total + 1e-6)
    if total.device.type == "cpu":
        # Reading the coefficient costs no device sync here, and skipping the multiply when it is >= 1
        # spares a full read-and-write pass over the gradients (the common case once training settles).
        if float(coef) < 1.0:
            torch._foreach_mul_(grads, coef.to(grads[0].dtype))
    else:  # no host sync on an accelerator: multiply by the capped coefficient, as DeepSpeed does
        torch._foreach_mul_(grads, torch.clamp(coef, max=1.0).to(grads[0].dtype))
    return total


def install_fused_clipping(engine: Any) -> bool:
    """Replaces ``engine.clip_fp32_gradients`` with ``fused_clip_`` over the module's gradients, keeping
    the norm in ``engine._global_grad_norm`` (read by ``engine.get_global_grad_norm()``).

    Input: a DeepSpeedEngine. Returns whether it was installed: only where DeepSpeed would call that
    method (clipping on, no fp16/bf16, ZeRO 0) and without model parallelism (``mpu``, whose
    per-parameter rules this does not know); other set-ups keep DeepSpeed's clipping untouched.
    """
    if engine.gradient_clipping() <= 0.0 or engine.fp16_enabled() or engine.bfloat16_enabled() \
            or engine.zero_optimization() or getattr(engine, "mpu", None) is not None \
            or not hasattr(engine, "clip_fp32_gradients"):
        return False
    from deepspeed.utils import groups

    def clip_fp32_gradients() -> None:
        grads = [p.grad for p in engine.module.parameters() if p.grad is not None]
        norm = fused_clip_(grads, engine.gradient_clipping(), _dp_group(groups))
        engine._global_grad_norm = norm  # a tensor: float() here would sync an accelerator every step

    engine.clip_fp32_gradients = clip_fp32_gradients
    return True


def _dp_group(groups: Any) -> Any:
    """DeepSpeed's data-parallel group, or None without a process group (a bare single process)."""
    import torch.distributed as tdist

    return groups._get_data_parallel_group() if tdist.is_initialized() else None
