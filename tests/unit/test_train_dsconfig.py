"""TrainerSpec -> DeepSpeed config: batch arithmetic, precision, ZeRO, user overrides, errors naming fields."""

from __future__ import annotations

import pytest

from rlaif_jobs.config.training import TrainerSpec
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.train.dsconfig import (
    TrainingConfigError,
    build_ds_config,
    deep_merge,
    plan_batches,
    precision_dtype,
    zero_stage_note,
)


def spec(**kw) -> TrainerSpec:
    return TrainerSpec.model_validate(kw)


@pytest.mark.parametrize(
    ("batch", "micro", "world", "expect"),
    [
        (32, 4, 1, (32, 4, 8)),
        (32, 4, 2, (32, 4, 4)),
        (32, 4, 8, (32, 4, 1)),
        (8, 4, 4, (8, 2, 1)),  # micro-batch shrinks to the per-rank batch
        (128, 8, 16, (128, 8, 1)),
    ],
)
def test_plan_batches(batch, micro, world, expect):
    plan = plan_batches(spec(batchSize=batch, microBatchSize=micro), world)
    assert (plan.global_batch, plan.micro_batch, plan.grad_accum) == expect
    assert plan.per_rank_batch * world == batch


def test_batch_the_world_cannot_divide_names_the_field():
    with pytest.raises(TrainingConfigError, match=r"^training\.batchSize: 30 is not divisible by the world size 4"):
        plan_batches(spec(batchSize=30), 4)
    with pytest.raises(TrainingConfigError, match=r"^rl\.batchSize"):
        plan_batches(spec(batchSize=3), 2, field_prefix="rl")
    assert issubclass(TrainingConfigError, ConfigError)  # -> exit code 3 in run_main


def test_micro_batch_must_divide_the_per_rank_batch():
    with pytest.raises(TrainingConfigError, match=r"training\.microBatchSize: 4 does not divide the per-rank batch 6"):
        plan_batches(spec(batchSize=12, microBatchSize=4), 2)


def test_derived_config():
    s = spec(batchSize=32, microBatchSize=4, maxGradNorm=0.5, precision="bf16",
             deepspeed={"zeroStage": 2})
    cfg = build_ds_config(s, plan_batches(s, 2))
    assert cfg["train_batch_size"] == 32
    assert cfg["train_micro_batch_size_per_gpu"] == 4
    assert cfg["gradient_accumulation_steps"] == 4
    assert cfg["gradient_clipping"] == 0.5
    assert cfg["bf16"]["enabled"] is True and cfg["fp16"]["enabled"] is False
    assert cfg["zero_optimization"] == {"stage": 2}
    assert "optimizer" not in cfg and "scheduler" not in cfg  # built by build_engine
    assert precision_dtype(cfg) == "bfloat16"


def test_stage3_and_offload():
    s = spec(precision="fp32", deepspeed={"zeroStage": 3, "offloadOptimizer": True})
    cfg = build_ds_config(s, plan_batches(s, 1))
    z = cfg["zero_optimization"]
    assert z["stage"] == 3 and z["offload_optimizer"]["device"] == "cpu"
    assert z["stage3_gather_16bit_weights_on_model_save"] is True
    assert precision_dtype(cfg) == "float32"
    bad = spec(deepspeed={"zeroStage": 0, "offloadOptimizer": True})
    with pytest.raises(TrainingConfigError, match=r"training\.deepspeed\.offloadOptimizer: needs zeroStage"):
        build_ds_config(bad, plan_batches(bad, 1))


def test_fp16_needs_a_gpu():
    s = spec(precision="fp16")
    with pytest.raises(TrainingConfigError, match=r"training\.precision: fp16 needs a GPU"):
        build_ds_config(s, plan_batches(s, 1), device_type="cpu")
    assert build_ds_config(s, plan_batches(s, 1), device_type="cuda")["fp16"]["enabled"] is True


def test_user_config_is_merged_over_the_defaults():
    s = spec(batchSize=8, microBatchSize=2, deepspeed={"zeroStage": 2, "config": {
        "zero_optimization": {"reduce_bucket_size": 1000, "overlap_comm": True},
        "gradient_clipping": 2.0,
        "optimizer": {"type": "AdamW", "params": {"lr": 3e-5}},
        "bf16": {"enabled": False},
    }})
    cfg = build_ds_config(s, plan_batches(s, 1))
    assert cfg["zero_optimization"] == {"stage": 2, "reduce_bucket_size": 1000, "overlap_comm": True}
    assert cfg["gradient_clipping"] == 2.0
    assert cfg["optimizer"]["params"]["lr"] == 3e-5
    assert precision_dtype(cfg) == "float32"
    assert s.deepspeed.config["zero_optimization"] == {"reduce_bucket_size": 1000, "overlap_comm": True}  # not mutated


def test_user_config_cannot_contradict_the_batch_fields():
    s = spec(batchSize=8, microBatchSize=2, deepspeed={"config": {"train_micro_batch_size_per_gpu": 4}})
    with pytest.raises(TrainingConfigError, match=r"training\.deepspeed\.config: .*set them instead"):
        build_ds_config(s, plan_batches(s, 1))
    same = spec(batchSize=8, microBatchSize=2, deepspeed={"config": {"train_batch_size": 8}})
    assert build_ds_config(same, plan_batches(same, 1))["train_batch_size"] == 8
    both = spec(precision="bf16", deepspeed={"config": {"fp16": {"enabled": True}}})
    with pytest.raises(TrainingConfigError, match="bf16 and fp16 cannot both be enabled"):
        build_ds_config(both, plan_batches(both, 1), device_type="cuda")


def test_deep_merge():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert deep_merge(base, {"a": {"c": [3]}, "e": {"f": 1}}) == {"a": {"b": 1, "c": [3]}, "d": 1, "e": {"f": 1}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


@pytest.mark.parametrize(("deepspeed", "world", "stage", "chosen"), [
    ({}, 1, 0, "auto"),                         # one process: nothing to partition
    ({}, 2, 2, "auto"),
    ({"offloadOptimizer": True}, 1, 2, "auto"),  # offload needs ZeRO
    ({"zeroStage": 2}, 1, 2, "spec"),           # an explicit stage is kept
    ({"zeroStage": 0}, 4, 0, "spec"),
    ({"config": {"zero_optimization": {"stage": 1}}}, 1, 1, "deepspeed.config"),
])
def test_zero_stage_unset_is_0_on_one_process_else_2(deepspeed, world, stage, chosen):
    s = spec(batchSize=8, microBatchSize=2, deepspeed=deepspeed)
    cfg = build_ds_config(s, plan_batches(s, world))
    assert cfg["zero_optimization"]["stage"] == stage
    assert zero_stage_note(s, cfg) == {"zeroStage": stage, "zeroStageChosen": chosen}


def test_one_map_from_precision_to_torch_dtype_names() -> None:
    from rlaif_jobs.config.common import dtype_name

    assert [dtype_name(x) for x in ("fp32", "bf16", "fp16")] == ["float32", "bfloat16", "float16"]
    assert dtype_name("bfloat16") == "bfloat16"  # torch's own spelling passes through
    with pytest.raises(ValueError, match="unknown dtype 'int8'; use fp32, bf16 or fp16"):
        dtype_name("int8")
