"""DeepSpeed engines from a model and a TrainerSpec, and the export of a trained engine as an HF folder.

One call per trained model: the reward trainer builds one engine, the policy trainer two (policy and
value), each with its own learning rate::

    env = init_distributed()
    plan = plan_batches(spec, env.world_size, "rl")
    ds_config = build_ds_config(spec, plan, env.device.type, "rl")
    policy = build_engine(policy_model, spec, ds_config, total_steps=n)
    value = build_engine(value_model, spec, ds_config, total_steps=n, lr=spec.value_learning_rate)
    ...
    export_hf_model(policy, "out/model", env, tokenizer)

The optimizer is torch's fused AdamW (CUDA and CPU): it needs no compiled extension, unlike DeepSpeed's
FusedAdam/CPUAdam. With optimizer offload DeepSpeed insists on its CPUAdam, compiled on first use
(about 50 s, cached in ~/.cache/torch_extensions; bake it into the trainer image). A user config
with its own ``optimizer`` or ``scheduler`` section is handed to DeepSpeed unchanged.
``backward(engine, loss)`` is ``engine.backward(loss)`` minus the gradient all-reduce that DeepSpeed
runs even over a world of one at ZeRO 0 (the policy trainer uses it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from rlaif_jobs import io
from rlaif_jobs.config.training import TrainerSpec
from rlaif_jobs.train.clip import install_fused_clipping
from rlaif_jobs.train.dist import DistEnv, barrier

log = logging.getLogger(__name__)


def param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: weight decay on matrices, none on biases and norm weights (1-D)."""
    decay: list[Any] = []
    no_decay: list[Any] = []
    for _, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def make_optimizer(model: Any, lr: float, weight_decay: float, ds_config: dict[str, Any]) -> Any:
    """torch AdamW over param_groups(model); DeepSpeedCPUAdam when the config offloads the optimizer."""
    import torch

    groups = param_groups(model, weight_decay)
    offload = ds_config.get("zero_optimization", {}).get("offload_optimizer", {}).get("device") in ("cpu", "nvme")
    if offload:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        return DeepSpeedCPUAdam(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, adamw_mode=True)
    # The fused kernel on CUDA and on CPU alike (HF Trainer's default too): on CPU the per-tensor loop
    # took ~5x longer for a 135M model (12 s against 2 s per step, torch 2.13 on 2 busy cores).
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, fused=True)


def warmup_linear_decay(warmup_steps: int, total_steps: int):
    """LR multiplier for step s: linear warm-up from 0 over ``warmup_steps``, then linear decay to 0 at
    ``total_steps`` (the usual schedule of HF Trainer and TRL)."""

    def factor(step: int) -> float:
        if warmup_steps > 0 and step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        remaining = max(1, total_steps - warmup_steps)
        return max(0.0, (total_steps - step) / remaining)

    return factor


DEEPSPEED_BUCKET = 500_000_000  # DeepSpeed's default reduce/allgather bucket, in elements


def size_buckets(ds_config: dict[str, Any], n_params: int) -> dict[str, Any]:
    """``ds_config`` with ZeRO's reduce and all-gather buckets sized to the model, unless the user set them.

    DeepSpeed's default buckets hold 5e8 elements, and ZeRO-1/2 allocate them whole (2 GB each in fp32,
    ~3 GB for a 135M model on CPU): far more than a small model has parameters. A quarter of the
    model (at least 1e7 elements, at most the default) keeps a few buckets per step, so communication
    still overlaps with the backward pass on several ranks.
    """
    zero = ds_config.get("zero_optimization", {})
    if zero.get("stage", 0) not in (1, 2):
        return ds_config
    bucket = int(min(DEEPSPEED_BUCKET, max(10_000_000, n_params // 4)))
    sized = {**zero}
    sized.setdefault("reduce_bucket_size", bucket)
    sized.setdefault("allgather_bucket_size", bucket)
    return {**ds_config, "zero_optimization": sized}


def build_engine(model: Any, spec: TrainerSpec, ds_config: dict[str, Any], total_steps: int,
                 lr: float | None = None) -> Any:
    """Wraps ``model`` in a DeepSpeed engine configured by ``ds_config`` (from build_ds_config).

    Inputs: an nn.Module (an HF model), the spec (learning rate, weight decay, warm-up, gradient
    checkpointing), the DeepSpeed config, the number of optimizer steps of the whole run (for the LR
    schedule) and an optional learning rate overriding spec.learningRate (the value model's).
    Output: the DeepSpeedEngine. Use it as ``loss = f(engine(**batch)); engine.backward(loss);
    engine.step()`` once per micro-batch: DeepSpeed divides the loss by the accumulation steps and
    steps the optimizer and the schedule every ``gradient_accumulation_steps`` micro-batches, clipping
    the accumulated gradients to spec.maxGradNorm first (at ZeRO 0 in fp32 with train.clip's fused
    clip); ``engine.get_global_grad_norm()`` is then the last step's norm before clipping.
    Every rank must call this, in the same order for several engines.
    """
    import deepspeed
    from torch.optim.lr_scheduler import LambdaLR

    if spec.gradient_checkpointing:
        if not hasattr(model, "gradient_checkpointing_enable"):
            raise TypeError(f"{type(model).__name__} has no gradient_checkpointing_enable()")
        # Non-reentrant checkpointing works with ZeRO's hooks and with inputs that need no grad.
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if getattr(model, "config", None) is not None:
            model.config.use_cache = False
    lr = spec.learning_rate if lr is None else lr
    ds_config = size_buckets(ds_config, sum(p.numel() for p in model.parameters()))
    optimizer = None if "optimizer" in ds_config else make_optimizer(model, lr, spec.weight_decay, ds_config)
    scheduler = None
    if "scheduler" not in ds_config:
        factor = warmup_linear_decay(int(spec.warmup_ratio * total_steps), total_steps)
        scheduler = lambda opt: LambdaLR(opt, factor)  # noqa: E731  (DeepSpeed calls it with its optimizer)
    engine, _, _, _ = deepspeed.initialize(
        model=model,
        optimizer=optimizer,
        model_parameters=None if optimizer is not None else param_groups(model, spec.weight_decay),
        lr_scheduler=scheduler,
        config=ds_config,
    )
    # ZeRO 0 fp32: the same clip at the same point, in fused passes instead of DeepSpeed's per-parameter loop
    install_fused_clipping(engine)
    return engine


def backward(engine: Any, loss: Any) -> None:
    """``engine.backward(loss)``, without DeepSpeed's gradient all-reduce when there is nothing to reduce.

    With one process and ZeRO off (stage 0) DeepSpeed still flattens every gradient into a bucket,
    "all-reduces" it over the world of one and copies it back: passes over all the model's gradients
    for nothing (~1 s per step for 135M parameters on 2 cores). ``no_sync`` is DeepSpeed's switch for
    skipping it; loss scaling by the accumulation steps and the optimizer step are unchanged. ZeRO
    stages 1-3 keep their own reduction (their optimizers build their partitions from it).
    """
    if engine.world_size == 1 and engine.zero_optimization_stage() == 0:
        with engine.no_sync():
            engine.backward(loss)
    else:
        engine.backward(loss)


def current_lr(engine: Any) -> float:
    """The learning rate of the engine's first parameter group right now."""
    return float(engine.optimizer.param_groups[0]["lr"])


def gathered_state_dict(engine: Any) -> dict[str, Any] | None:
    """The full model state dict on rank 0 (None elsewhere), gathering ZeRO-3 partitions layer by layer.

    Every rank must call this. Weights come in the engine's training dtype (bf16 with bf16 training),
    as HF Trainer saves DeepSpeed models.
    """
    import torch.distributed as tdist

    if engine.zero_optimization_partition_weights():
        return engine._zero3_consolidated_16bit_state_dict()  # collective; the one DeepSpeed API for it
    if tdist.is_initialized() and tdist.get_rank() != 0:
        return None
    return {k: v.detach().cpu() for k, v in engine.module.state_dict().items()}


def export_hf_model(engine: Any, out_dir: str | Path, env: DistEnv, tokenizer: Any = None) -> Path:
    """Writes the engine's model (and tokenizer) as a standard HF folder (safetensors), atomically.

    Every rank must call this (ZeRO-3 gathers). Rank 0 saves into a temporary sibling folder and
    renames it over ``out_dir``, so a reader never sees a half-written model; all ranks wait for it.
    Returns ``out_dir``.
    """
    out = Path(out_dir)
    state = gathered_state_dict(engine)
    if env.is_main:
        module = engine.module
        was_cache = getattr(module.config, "use_cache", None)
        if was_cache is not None:
            module.config.use_cache = True  # gradient checkpointing turned it off; inference wants it
        dtypes = {v.dtype for v in (state or {}).values() if hasattr(v, "is_floating_point") and v.is_floating_point()}
        if len(dtypes) == 1:
            module.config.dtype = dtypes.pop()
        with io.atomic_dir(out) as tmp:
            module.save_pretrained(tmp, state_dict=state)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
        log.info("model written to %s", out)
    barrier()
    return out
