"""ZeRO buckets sized to the model (DeepSpeed's 5e8-element default costs GBs for a 135M model on CPU)."""

from rlaif_jobs.train.engine import DEEPSPEED_BUCKET, size_buckets


def test_a_small_model_gets_buckets_a_quarter_of_its_size() -> None:
    cfg = size_buckets({"zero_optimization": {"stage": 2}, "train_batch_size": 8}, 135_000_000)
    assert cfg["zero_optimization"] == {"stage": 2, "reduce_bucket_size": 33_750_000,
                                        "allgather_bucket_size": 33_750_000}
    assert cfg["train_batch_size"] == 8


def test_bounds_and_the_users_setting_win() -> None:
    assert size_buckets({"zero_optimization": {"stage": 1}}, 1000)["zero_optimization"]["reduce_bucket_size"] \
        == 10_000_000
    big = size_buckets({"zero_optimization": {"stage": 2}}, 70_000_000_000)["zero_optimization"]
    assert big["allgather_bucket_size"] == DEEPSPEED_BUCKET
    user = size_buckets({"zero_optimization": {"stage": 2, "reduce_bucket_size": 123}}, 135_000_000)
    assert user["zero_optimization"]["reduce_bucket_size"] == 123


def test_stage_0_and_3_are_left_alone() -> None:
    for stage in (0, 3):
        cfg = {"zero_optimization": {"stage": stage}}
        assert size_buckets(cfg, 135_000_000) == cfg
