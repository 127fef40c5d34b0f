"""The sharded sampler: disjoint rank slices that make up each global batch, reproducible positions."""

from __future__ import annotations

from rlaif_jobs.config.training import TrainerSpec
from rlaif_jobs.train.dsconfig import plan_batches
from rlaif_jobs.train.sampler import ShardedSampler, eval_shards


def plan(batch: int, micro: int, world: int):
    return plan_batches(TrainerSpec(batch_size=batch, micro_batch_size=micro), world)


def test_ranks_split_each_global_batch_disjointly():
    p = plan(batch=8, micro=2, world=2)
    samplers = [ShardedSampler(37, p, rank, seed=3) for rank in range(2)]
    assert samplers[0].steps_per_epoch == 4  # 37 // 8: the 5-example tail is left out
    per_rank = [list(s.steps(0, 8)) for s in samplers]  # two epochs
    for s0, s1 in zip(*per_rank, strict=True):
        assert s0.global_step == s1.global_step and s0.epoch == s1.epoch
        assert len(s0.micro_batches) == p.grad_accum == 2
        assert all(len(mb) == 2 for mb in s0.micro_batches + s1.micro_batches)
        a = {i for mb in s0.micro_batches for i in mb}
        b = {i for mb in s1.micro_batches for i in mb}
        assert not a & b and len(a | b) == 8
    # within an epoch no example repeats; epochs differ in order
    for epoch in (0, 1):
        seen = [i for r in per_rank for sb in r if sb.epoch == epoch for mb in sb.micro_batches for i in mb]
        assert len(seen) == len(set(seen)) == 32
    assert samplers[0].order(0) != samplers[0].order(1)


def test_resuming_at_a_step_gives_the_same_batches():
    p = plan(batch=4, micro=1, world=1)
    s = ShardedSampler(50, p, 0, seed=7)
    full = list(s.steps(0, 30))  # crosses two epoch boundaries (12 steps per epoch)
    resumed = list(ShardedSampler(50, p, 0, seed=7).steps(17, 30))
    assert [b.global_step for b in resumed] == list(range(18, 31))
    assert resumed == full[17:]


def test_seed_changes_the_order_and_no_shuffle_keeps_it():
    p = plan(batch=4, micro=4, world=1)
    assert ShardedSampler(20, p, 0, seed=1).order(0) != ShardedSampler(20, p, 0, seed=2).order(0)
    assert ShardedSampler(20, p, 0, shuffle=False).order(5) == list(range(20))


def test_eval_shards_cover_everything_once_with_equal_batch_counts():
    n, world, micro = 11, 4, 2
    shards = [eval_shards(n, world, r, micro) for r in range(world)]
    assert len({len(s) for s in shards}) == 1  # every rank runs the same number of forwards
    weighted = [i for s in shards for batch in s for i, w in batch if w > 0]
    assert sorted(weighted) == list(range(n))
    # a rank with nothing left still runs a (weight-0) batch
    tiny = [eval_shards(3, 4, r, 8) for r in range(4)]
    assert tiny[3] == [[(0, 0.0)]] and all(len(s) == 1 for s in tiny)


def test_regroup_by_length_keeps_the_step_and_the_sizes():
    from rlaif_jobs.train.sampler import regroup_by_length

    lengths = {0: 50, 1: 10, 2: 90, 3: 12, 4: 48, 5: 95}
    micro = [[0, 1, 2], [3, 4, 5]]
    got = regroup_by_length(micro, lengths.__getitem__)
    assert got == [[1, 3, 4], [0, 2, 5]]
    assert sorted(i for mb in got for i in mb) == list(range(6))  # the same examples, so the same gradient
    assert [len(mb) for mb in got] == [3, 3]
    padded = lambda groups: sum(len(g) * max(lengths[i] for i in g) for g in groups)  # noqa: E731
    assert padded(got) < padded(micro)
