"""Packed reward rows (reward.packing) against layouts, positions and masks worked out by hand."""

from __future__ import annotations

import pytest
import torch

from rlaif_jobs.reward.packing import (
    BRANCH_A,
    BRANCH_B,
    PREFIX,
    attention_allowed,
    pack_pairs,
    read_index,
    shared_prefix_len,
)


@pytest.mark.parametrize(
    ("a", "b", "n"),
    [
        ([1, 2, 3, 4], [1, 2, 5], 2),  # share 1, 2
        ([1, 2, 3], [1, 2, 3], 2),  # identical: each keeps its last token
        ([1, 2], [1, 2, 3, 4], 1),  # a is a prefix of b: a keeps one token of its own
        ([7, 2], [1, 2], 0),  # nothing shared
        ([5], [5], 0),  # one token each: nothing can be shared
    ],
)
def test_shared_prefix_len(a, b, n):
    assert shared_prefix_len(a, b) == n


def test_read_index_skips_trailing_pad_like_the_classifier_pooling():
    assert read_index([4, 5, 6], pad_id=0) == 2
    assert read_index([4, 5, 0, 0], pad_id=0) == 1  # a text that ends in the pad id (EOS = pad)
    assert read_index([0, 0], pad_id=0) == 1  # all pad: the last token
    assert read_index([4, 5], pad_id=None) == 1


def test_pack_two_pairs_by_hand():
    # pair 0: a = [1 2 3 4], b = [1 2 5]   -> prefix [1 2], a-rest [3 4], b-rest [5]
    # pair 1: a = [8 9],     b = [7 9 9]   -> prefix [],    a-rest [8 9], b-rest [7 9 9]
    p = pack_pairs([([1, 2, 3, 4], [1, 2, 5]), ([8, 9], [7, 9, 9])], pad_id=0)
    assert p.input_ids == [1, 2, 3, 4, 5, 8, 9, 7, 9, 9]
    assert p.position_ids == [0, 1, 2, 3, 2, 0, 1, 0, 1, 2]
    assert p.pair == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    assert p.branch == [PREFIX, PREFIX, BRANCH_A, BRANCH_A, BRANCH_B, BRANCH_A, BRANCH_A, BRANCH_B, BRANCH_B,
                        BRANCH_B]
    assert p.read_a == [3, 6] and p.read_b == [4, 9]


def test_pack_reads_in_the_prefix_when_a_text_ends_in_pad_tokens():
    # a = [1 2 0]: pad id 0 at the end, so the score is read at token 2 (row index 1, in the prefix)
    p = pack_pairs([([1, 2, 0], [1, 2, 3])], pad_id=0)
    assert p.input_ids == [1, 2, 0, 3]
    assert p.read_a == [1] and p.read_b == [3]


def test_pack_refuses_an_empty_text():
    with pytest.raises(ValueError, match="pair 1"):
        pack_pairs([([1], [2]), ([], [3])], pad_id=0)


def test_attention_mask_by_hand():
    # one pair: prefix P0 P1, a-rest A2 A3, b-rest B2; then a pair with no prefix: a-rest C0, b-rest D0
    pair = torch.tensor([0, 0, 0, 0, 0, 1, 1])
    branch = torch.tensor([PREFIX, PREFIX, BRANCH_A, BRANCH_A, BRANCH_B, BRANCH_A, BRANCH_B])
    expected = torch.tensor([
        # P0 P1 A2 A3 B2 C0 D0
        [1, 0, 0, 0, 0, 0, 0],  # P0
        [1, 1, 0, 0, 0, 0, 0],  # P1
        [1, 1, 1, 0, 0, 0, 0],  # A2
        [1, 1, 1, 1, 0, 0, 0],  # A3
        [1, 1, 0, 0, 1, 0, 0],  # B2 sees the prefix and itself, not a's tokens
        [0, 0, 0, 0, 0, 1, 0],  # C0 sees only its own pair
        [0, 0, 0, 0, 0, 0, 1],  # D0 does not see C0
    ], dtype=torch.bool)
    assert torch.equal(attention_allowed(pair, branch), expected)


def test_tensors_are_an_additive_mask_and_row_inputs():
    p = pack_pairs([([1, 2, 3], [1, 2, 4])], pad_id=0)
    t = p.tensors(torch.float32)
    assert t["input_ids"].tolist() == [[1, 2, 3, 4]] and t["position_ids"].tolist() == [[0, 1, 2, 2]]
    m = t["attention_mask"]
    assert m.shape == (1, 1, 4, 4)
    assert m[0, 0, 3, 2] == torch.finfo(torch.float32).min and m[0, 0, 3, 1] == 0  # b's token: not a's, the prefix
