"""Run under torchrun by test_resume_world_size.py: trains the tiny Llama reward model for two optimizer
steps at the world size torchrun gives (ZeRO 2 with zeroStage unset on several processes), checkpoints
step 2 into ``<out>/checkpoints``, then trains step 3 as a run that never stopped.

Rank 0 writes ``<out>/reference.pt``: the full fp32 master weights and Adam moments right after the
step-2 checkpoint, the learning rate, and the fp32 master weights after step 3.
Usage: torchrun --nproc-per-node N resume_world_helper.py OUT PRECISION
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from rlaif_jobs.config.common import ModelRef
from rlaif_jobs.config.training import TrainerSpec
from rlaif_jobs.reward.model import load_reward_model
from rlaif_jobs.train import (
    CheckpointManager,
    build_ds_config,
    build_engine,
    current_lr,
    init_distributed,
    plan_batches,
    shutdown,
)

SPEC = {"batchSize": 4, "microBatchSize": 2, "learningRate": 0.01, "warmupRatio": 0.0}
TOTAL_STEPS = 6
SEQ, N = 12, 64


def data(vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(3, vocab, (N, SEQ), generator=g), torch.randn(N, generator=g)


def make_engine(world_size: int, precision: str, seed: int, zero_stage: int | None = None):
    spec = TrainerSpec.model_validate({**SPEC, "precision": precision,
                                       "deepspeed": {} if zero_stage is None else {"zeroStage": zero_stage}})
    torch.manual_seed(seed)
    _, model = load_reward_model(ModelRef(uri="builtin://tiny-random-llama"))
    plan = plan_batches(spec, world_size)
    return build_engine(model, spec, build_ds_config(spec, plan), TOTAL_STEPS)


def train_step(engine, step: int, rank: int, world_size: int) -> None:
    """Optimizer step ``step`` (1-based) over examples [4(step-1), 4 step): this rank's contiguous share,
    in micro-batches of 2, as ShardedSampler cuts a global batch."""
    x, y = data(engine.module.config.vocab_size)
    per_rank = 4 // world_size
    lo = 4 * (step - 1) + rank * per_rank
    for m in range(lo, lo + per_rank, 2):
        out = engine(input_ids=x[m:m + 2], attention_mask=torch.ones_like(x[m:m + 2])).logits.float().squeeze(-1)
        engine.backward(torch.nn.functional.mse_loss(out, y[m:m + 2]))
        engine.step()


def full_state(engine) -> dict[str, dict[str, torch.Tensor]]:
    """fp32 master weight and Adam moments per parameter name, whole (collective at ZeRO 1-3)."""
    from deepspeed.utils import safe_get_full_fp32_param, safe_get_full_optimizer_state

    out: dict[str, dict[str, torch.Tensor]] = {}
    opt = engine.optimizer
    inner = getattr(opt, "optimizer", opt)
    masters = {id(lp): hp
               for g16, g32 in zip(getattr(opt, "fp16_groups", []), getattr(opt, "fp32_groups", []), strict=True)
               for lp, hp in zip(g16, g32, strict=True)}
    if engine.zero_optimization_stage() in (1, 2):
        # DeepSpeed 0.19.8 links the parameters' optimizer-state views after the first param group's first
        # step, before the second group has any state: link them again now that every group has some.
        opt._hp_optimizer_states_linked = False
        opt._lazy_init_hp_params_optimizer_state()
    for name, p in engine.module.named_parameters():
        if engine.zero_optimization_stage() > 0:
            out[name] = {"fp32": safe_get_full_fp32_param(p).detach().clone(),
                         "exp_avg": safe_get_full_optimizer_state(p, "exp_avg").clone(),
                         "exp_avg_sq": safe_get_full_optimizer_state(p, "exp_avg_sq").clone()}
        else:
            master = masters.get(id(p), p)
            st = inner.state[master]
            out[name] = {"fp32": master.detach().float().clone(), "exp_avg": st["exp_avg"].clone(),
                         "exp_avg_sq": st["exp_avg_sq"].clone()}
    return out


def main() -> None:
    out, precision = Path(sys.argv[1]), sys.argv[2]
    env = init_distributed()
    engine = make_engine(env.world_size, precision, seed=1)
    for step in (1, 2):
        train_step(engine, step, env.rank, env.world_size)
    CheckpointManager(out / "checkpoints", 2, env).save({"model": engine}, 2, {"epoch": 0})
    at_2, lr_2 = full_state(engine), current_lr(engine)
    train_step(engine, 3, env.rank, env.world_size)
    at_3 = {k: v["fp32"] for k, v in full_state(engine).items()}
    if env.is_main:
        torch.save({"at2": at_2, "lr2": lr_2, "at3": at_3}, out / "reference.pt")
    # Leave the process group as the trainers do: a rank that exits while the others still hold it lets
    # the interpreter tear gloo down with its threads running ("terminate called without an active
    # exception", SIGABRT: seen once in a clean-clone CI run).
    shutdown()


if __name__ == "__main__":
    main()
