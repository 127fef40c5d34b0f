"""The shared training layer with real DeepSpeed engines (one gloo rank, in this process).

Every ZeRO stage: a checkpoint restores weights, optimizer moments and the LR schedule exactly (the
steps after it repeat bit for bit); incomplete checkpoints are ignored; old ones pruned; two engines
(policy and value) checkpoint together; ZeRO-3 partitions are gathered into a loadable HF folder.
"""

from __future__ import annotations

import json
import os

import pytest
import torch

from rlaif_jobs.config.training import TrainerSpec
from rlaif_jobs.train import (
    CheckpointError,
    CheckpointManager,
    build_ds_config,
    build_engine,
    current_lr,
    export_hf_model,
    init_distributed,
    plan_batches,
)

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@pytest.fixture(scope="module")
def dist_env():
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    for k in ENV_KEYS:
        os.environ.pop(k, None)
    env = init_distributed()
    yield env
    import torch.distributed as tdist

    tdist.destroy_process_group()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def spec(stage: int, precision: str = "fp32", **kw) -> TrainerSpec:
    return TrainerSpec.model_validate({"batchSize": 8, "microBatchSize": 4, "learningRate": 0.05,
                                       "warmupRatio": 0.2, "precision": precision,
                                       "deepspeed": {"zeroStage": stage}, **kw})


def mlp(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))


DATA = torch.Generator().manual_seed(0)
X = torch.randn(80, 8, generator=DATA)
Y = X @ torch.randn(8, 1, generator=DATA)


def engine_for(s: TrainerSpec, seed: int, total_steps: int = 10):
    plan = plan_batches(s, 1)
    return build_engine(mlp(seed), s, build_ds_config(s, plan), total_steps)


def train_steps(engine, first: int, last: int) -> list[float]:
    """Optimizer steps first..last (1-based); each uses the same two micro-batches for a given step."""
    losses = []
    dtype = next(engine.module.parameters()).dtype
    for step in range(first, last + 1):
        total = 0.0
        for micro in range(2):
            lo = ((step * 2 + micro) * 4) % 80
            x, y = X[lo:lo + 4].to(dtype), Y[lo:lo + 4]
            loss = torch.nn.functional.mse_loss(engine(x).float(), y)
            engine.backward(loss)
            engine.step()
            total += loss.item()
        losses.append(total / 2)
    return losses


def params(engine) -> list[torch.Tensor]:
    if engine.zero_optimization_partition_weights():
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(engine.module.parameters())):
            return [p.detach().float().clone() for p in engine.module.parameters()]
    return [p.detach().float().clone() for p in engine.module.parameters()]


@pytest.mark.parametrize(("stage", "precision"), [(0, "fp32"), (1, "fp32"), (2, "bf16"), (3, "bf16")])
def test_checkpoint_restores_weights_optimizer_and_schedule_exactly(dist_env, tmp_path, stage, precision):
    s = spec(stage, precision)
    a = engine_for(s, seed=1)
    train_steps(a, 1, 3)
    ckpt = CheckpointManager(tmp_path / "ckpt", keep=2, env=dist_env)
    ckpt.save({"model": a}, 3, {"epoch": 0})
    lr_at_3 = current_lr(a)
    expected = train_steps(a, 4, 6)
    expected_params = params(a)

    b = engine_for(s, seed=2)  # other initial weights: only the checkpoint can make it match
    assert not all(torch.equal(p, q) for p, q in zip(params(b), expected_params, strict=True))
    info = ckpt.load({"model": b})
    assert info is not None and info.step == 3 and info.state["epoch"] == 0 and info.state["worldSize"] == 1
    assert current_lr(b) == pytest.approx(lr_at_3)
    assert train_steps(b, 4, 6) == pytest.approx(expected, rel=1e-6)
    for p, q in zip(params(b), expected_params, strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    # and a fresh model that does not load diverges, so the comparison above could have failed
    c = engine_for(s, seed=2)
    assert train_steps(c, 4, 6) != pytest.approx(expected, rel=1e-3)


def test_loss_falls_with_accumulation(dist_env):
    e = engine_for(spec(2), seed=3, total_steps=20)
    losses = train_steps(e, 1, 20)
    assert sum(losses[-3:]) < 0.5 * sum(losses[:3])
    assert e.gradient_accumulation_steps() == 2


def test_incomplete_checkpoint_is_ignored_then_removed(dist_env, tmp_path):
    e = engine_for(spec(2), seed=1)
    ckpt = CheckpointManager(tmp_path / "ckpt", keep=3, env=dist_env)
    train_steps(e, 1, 2)
    ckpt.save({"model": e}, 2, {})
    train_steps(e, 3, 4)
    # A save killed after DeepSpeed wrote its files but before the COMPLETE marker:
    partial = tmp_path / "ckpt" / "step-00000004"
    e.save_checkpoint(str(partial), tag="model", save_latest=False)
    assert (partial / "model").is_dir()
    assert [c.step for c in ckpt.complete()] == [2]
    assert ckpt.latest().step == 2
    info = ckpt.load({"model": engine_for(spec(2), seed=5)})
    assert info.step == 2
    assert not partial.exists()  # debris removed at resume


def test_latest_pointer_to_a_missing_checkpoint_falls_back_to_a_scan(dist_env, tmp_path):
    e = engine_for(spec(1), seed=1)
    ckpt = CheckpointManager(tmp_path / "ckpt", keep=3, env=dist_env)
    ckpt.save({"model": e}, 1, {})
    ckpt.save({"model": e}, 2, {})
    (tmp_path / "ckpt" / "latest").write_text("step-00000009\n")
    assert ckpt.latest().step == 2


def test_only_the_newest_k_are_kept(dist_env, tmp_path):
    e = engine_for(spec(0), seed=1)
    ckpt = CheckpointManager(tmp_path / "ckpt", keep=2, env=dist_env)
    for step in range(1, 6):
        train_steps(e, step, step)
        ckpt.save({"model": e}, step, {})
    assert sorted(d.name for d in (tmp_path / "ckpt").iterdir()) == ["latest", "step-00000004", "step-00000005"]
    assert (tmp_path / "ckpt" / "latest").read_text().strip() == "step-00000005"


def test_two_engines_checkpoint_together(dist_env, tmp_path):
    # The policy stage's shape: a policy and a value model, each its own engine and learning rate.
    s = spec(2)
    policy, value = engine_for(s, seed=1), build_engine(mlp(7), s, build_ds_config(s, plan_batches(s, 1)), 10,
                                                        lr=0.01)
    assert current_lr(value) < current_lr(policy)
    train_steps(policy, 1, 2)
    train_steps(value, 1, 2)
    ckpt = CheckpointManager(tmp_path / "ckpt", keep=1, env=dist_env)
    ckpt.save({"policy": policy, "value": value}, 2, {"rolloutSeed": 11})
    want_p, want_v = params(policy), params(value)
    p2, v2 = engine_for(s, seed=3), engine_for(s, seed=4)
    info = ckpt.load({"policy": p2, "value": v2})
    assert info.state["engines"] == ["policy", "value"] and info.state["rolloutSeed"] == 11
    for got, want in ((params(p2), want_p), (params(v2), want_v)):
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b)
    with pytest.raises(CheckpointError, match=r"has no engine\(s\) \['critic'\]"):
        ckpt.load({"critic": engine_for(s, seed=5)})


def test_zero0_checkpoint_of_another_world_size_is_refused(dist_env, tmp_path):
    # ZeRO 1-3 checkpoints reshard (test_resume_world_size.py); ZeRO 0 has no shards the converter reads.
    e = engine_for(spec(0), seed=1)
    ckpt = CheckpointManager(tmp_path / "ckpt", keep=1, env=dist_env)
    path = ckpt.save({"model": e}, 1, {})
    state = json.loads((path / "trainer_state.json").read_text())
    (path / "trainer_state.json").write_text(json.dumps({**state, "worldSize": 4}))
    with pytest.raises(CheckpointError, match="written by 4 process.es. at ZeRO stage 0 and this run has 1"):
        ckpt.load({"model": e})


def test_zero3_export_gathers_partitions_into_a_loadable_hf_folder(dist_env, tmp_path, tiny_model):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rlaif_jobs.config.common import ModelRef
    from rlaif_jobs.reward.model import load_reward_model

    torch.manual_seed(0)
    tok, model = load_reward_model(ModelRef(uri=tiny_model))
    original = {k: v.clone() for k, v in model.state_dict().items()}
    s = spec(3, "bf16", gradientCheckpointing=True)
    engine = build_engine(model, s, build_ds_config(s, plan_batches(s, 1)), 10)
    assert engine.zero_optimization_partition_weights()
    out = export_hf_model(engine, tmp_path / "model", dist_env, tok)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder left behind
    reloaded = AutoModelForSequenceClassification.from_pretrained(out)
    assert reloaded.config.num_labels == 1 and reloaded.config.use_cache is True
    assert reloaded.dtype == torch.bfloat16
    got = reloaded.state_dict()
    for k, v in original.items():
        assert got[k].shape == v.shape, k  # full tensors, not ZeRO-3's empty placeholders
        torch.testing.assert_close(got[k].float(), v.to(torch.bfloat16).float(), msg=k)
    assert AutoTokenizer.from_pretrained(out).pad_token_id == tok.pad_token_id


def test_checkpoint_of_another_zero_stage_is_refused(dist_env, tmp_path):
    ckpt = CheckpointManager(tmp_path / "ckpt", keep=1, env=dist_env)
    ckpt.save({"model": engine_for(spec(2), seed=1)}, 1, {})
    with pytest.raises(CheckpointError, match="written at ZeRO stage 2 and this run uses stage 0"):
        ckpt.load({"model": engine_for(spec(0), seed=1)})
