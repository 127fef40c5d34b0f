"""prefix_tree.plan: every sequence's read positions see exactly that sequence's tokens, each shared token
is computed once, and rows respect their token budget."""

from __future__ import annotations

import random

import pytest

from rlaif_jobs.feedback.engines.prefix_tree import Pop, Row, common_prefix, plan


def simulate(ops, n_seqs: int, last: int) -> dict[int, list[list[tuple[int, int]]]]:
    """For each sequence, per read slot: the (position, token) pairs the read token may attend to,
    replaying the ops over a cache of (position, token) as the engine does."""
    cache: list[tuple[int, int]] = []
    seen: dict[int, list] = {i: [None] * last for i in range(n_seqs)}
    for op in ops:
        if isinstance(op, Pop):
            del cache[len(cache) - op.n:]
            continue
        toks = list(zip(op.position_ids, op.input_ids, strict=True))
        allowed = op.allowed()
        for i, slot, idx in op.reads:
            seen[i][slot] = cache + [toks[j] for j in range(len(toks)) if allowed[idx, j]]
        assert all(n == 0 for n in op.node[:op.keep]) and op.parent[0] == -1  # kept: node 0, on the cache
        cache += toks[:op.keep]
    return seen


def label_like_prompts(rng: random.Random, n_pairs: int) -> list[list[int]]:
    """Token sequences shaped like a labeler's: a preamble, per pair a context, two orders, two answers."""
    preamble = [rng.randrange(50) for _ in range(20)]
    seqs = []
    for _ in range(n_pairs):
        ctx = [rng.randrange(50) for _ in range(rng.randrange(3, 30))]
        a = [rng.randrange(50) for _ in range(rng.randrange(1, 12))]
        b = [rng.randrange(50) for _ in range(rng.randrange(1, 12))]
        for first, second in ((a, b), (b, a)):
            for answer in (7, 8):
                seqs.append([*preamble, *ctx, 90, *first, 91, *second, 92, answer])
    return seqs


@pytest.mark.parametrize("row_tokens", [1, 16, 64, 10_000])
@pytest.mark.parametrize("last", [1, 2])
def test_every_read_sees_exactly_its_own_sequence(row_tokens, last):
    rng = random.Random(row_tokens * 10 + last)
    seqs = label_like_prompts(rng, 6) + [[1, 2, 3], [1, 2, 3], [1, 2], [1, 2, 3, 4, 5]]  # duplicates, prefixes
    ops = plan(seqs, last, row_tokens)
    seen = simulate(ops, len(seqs), last)
    for i, s in enumerate(seqs):
        for slot in range(last):
            end = len(s) - last + slot  # the position whose logits this slot reads
            assert sorted(seen[i][slot]) == list(enumerate(s[:end + 1])), (i, slot)


def test_shared_tokens_are_computed_once_and_rows_keep_their_budget():
    seqs = label_like_prompts(random.Random(0), 8)
    ops = plan(seqs, 1, 64)
    computed = sum(len(op.input_ids) for op in ops if not isinstance(op, Pop))
    distinct = len({tuple(s[:k]) for s in seqs for k in range(1, len(s) + 1)})  # trie nodes = distinct prefixes
    assert computed == distinct < sum(len(s) for s in seqs) / 2
    assert isinstance(ops[0], Row) and ops[0].keep == common_prefix(seqs) == 20
    one = plan(seqs, 1, 10_000)  # the trunk's row also holds the subtrees: no short pass for it alone
    assert [type(op) for op in one] == [Row, Pop] and one[0].keep == 20 and len(one[0].input_ids) == computed
    rows = [op for op in ops if isinstance(op, Row)]
    assert rows and all(len(r.input_ids) <= max(64, r.keep) for r in rows)
    popped = sum(op.n for op in ops if isinstance(op, Pop))
    assert popped == sum(op.keep for op in rows)


def test_spans_are_each_nodes_contiguous_tokens():
    seqs = label_like_prompts(random.Random(1), 4)
    for op in plan(seqs, 1, 10_000):
        if isinstance(op, Row):
            spans = op.spans()
            assert len(spans) == len(op.parent)
            for n, (start, end) in enumerate(spans):
                assert op.node[start:end] == [n] * (end - start)


def test_too_short_sequences_are_refused():
    with pytest.raises(ValueError, match="at least 2 tokens"):
        plan([[1, 2, 3], [4]], 2, 16)
    assert plan([], 1, 16) == []
