"""Packed reward batches: each pair's shared prompt computed once, no padding, one forward per micro-batch.

The two texts of a pair (prompt + response a, prompt + response b) share their first tokens (system
turn, user turn, assistant header: ~60 of ~75 tokens on the shipped pairs). A padded batch runs that
prefix twice and pads every text to the longest. A packed batch is ONE row holding, per pair, the
shared prefix, then a's rest, then b's rest, with

- position ids that restart b's rest where a's rest started (both continue the prefix), and
- an attention mask that lets each token see the earlier tokens of its own text only: a's rest sees
  the prefix and a's rest, b's rest the prefix and b's rest, never a's, and no pair sees another.

For a causal model this gives every token exactly the inputs it has in its own padded row, so the
scores are the padded ones (up to float rounding) for about half the tokens. The reward is read, as
the sequence classifier pools it, at each text's last token that is not the pad token.

    batch = pack_pairs([(ids_a, ids_b), ...], pad_id)       # token ids as tokenize_reward_inputs makes them
    r_a, r_b = packed_scores(model, batch, forward=engine)   # float32, shapes [n_pairs]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rlaif_jobs.packed_attention import PREFIX, additive_mask, attention_allowed, mask_problem

BRANCH_A, BRANCH_B = 1, 2  # after the pair's shared PREFIX


@dataclass(frozen=True)
class PackedPairs:
    """One packed row (plain lists; ``tensors`` makes the model inputs).

    input_ids, position_ids, pair (which pair each token belongs to), branch (PREFIX / BRANCH_A /
    BRANCH_B), all of the row's length; read_a, read_b: the row index of each pair's reward token.
    """

    input_ids: list[int]
    position_ids: list[int]
    pair: list[int]
    branch: list[int]
    read_a: list[int]
    read_b: list[int]

    def tensors(self, dtype: Any, device: Any = "cpu") -> dict[str, Any]:
        """Model inputs: input_ids and position_ids [1, T], and an additive attention mask [1, 1, T, T]
        in ``dtype`` (0 where a token may attend, the dtype's minimum where not)."""
        import torch

        pair = torch.tensor(self.pair, device=device)
        branch = torch.tensor(self.branch, device=device)
        mask = additive_mask(attention_allowed(pair, branch), dtype)
        return {"input_ids": torch.tensor([self.input_ids], device=device),
                "position_ids": torch.tensor([self.position_ids], device=device),
                "attention_mask": mask}


def shared_prefix_len(a: list[int], b: list[int]) -> int:
    """How many leading tokens ``a`` and ``b`` share, capped so that each keeps at least one token of
    its own (the branch its score is read in; identical texts share all but their last token)."""
    n, cap = 0, min(len(a), len(b)) - 1
    while n < cap and a[n] == b[n]:
        n += 1
    return max(n, 0)


def read_index(ids: list[int], pad_id: int | None) -> int:
    """Where a sequence classifier reads a text's score: its last token that is not ``pad_id`` (the
    last token when every one is), as transformers pools an unpadded row."""
    for k in range(len(ids) - 1, -1, -1):
        if ids[k] != pad_id:
            return k
    return len(ids) - 1


def pack_pairs(pairs: list[tuple[list[int], list[int]]], pad_id: int | None) -> PackedPairs:
    """Packs token-id pairs (each text as tokenized alone, already truncated) into one row, pair by
    pair: shared prefix, a's rest, b's rest. Raises ValueError for an empty text."""
    ids: list[int] = []
    pos: list[int] = []
    pair_of: list[int] = []
    branch: list[int] = []
    read_a: list[int] = []
    read_b: list[int] = []
    for k, (a, b) in enumerate(pairs):
        if not a or not b:
            raise ValueError(f"pair {k}: an empty token sequence cannot be scored")
        n = shared_prefix_len(a, b)
        start = len(ids)
        starts = {}
        for which, part, first in ((PREFIX, a[:n], 0), (BRANCH_A, a[n:], n), (BRANCH_B, b[n:], n)):
            starts[which] = len(ids)
            ids += part
            pos += range(first, first + len(part))
            pair_of += [k] * len(part)
            branch += [which] * len(part)
        for seq, which, out in ((a, BRANCH_A, read_a), (b, BRANCH_B, read_b)):
            j = read_index(seq, pad_id)
            out.append(start + j if j < n else starts[which] + j - n)
    return PackedPairs(ids, pos, pair_of, branch, read_a, read_b)


def supports_packing(model: Any) -> str | None:
    """None if ``model`` (a transformers sequence classifier) can score packed rows, else why not.

    Packing needs a decoder that reads its score at the last token (a ``score`` head over a base
    model that takes position ids and a 4-D mask), i.e. the *ForSequenceClassification of a causal
    LM; an encoder (BERT-style, [CLS] pooling) cannot be packed this way.
    """
    if getattr(model.config, "is_encoder_decoder", False):
        return f"{type(model).__name__} is an encoder-decoder model"
    base = getattr(model, getattr(model, "base_model_prefix", ""), None)
    if base is None or not hasattr(model, "score"):
        return f"{type(model).__name__} does not read its score from the last token (no 'score' head)"
    return mask_problem(base)


def packed_scores(model: Any, batch: PackedPairs, forward: Any = None) -> tuple[Any, Any]:
    """(r_a, r_b), float32 tensors [n_pairs]: the model's scores of the packed pairs in one forward.

    ``model``: the sequence classifier; ``forward``: what to call with its inputs (default the model;
    the trainer passes its DeepSpeed engine, whose forward and backward must see every micro-batch).
    The score head's per-token output is taken by a hook and read at the pairs' reward tokens (the
    classifier's own pooling, one token per row, is not what a packed row needs).
    """
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    seen: list[Any] = []
    hook = model.score.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        (forward or model)(**batch.tensors(dtype, device), use_cache=False)
    finally:
        hook.remove()
    k = len(batch.read_a)
    r = seen[-1][0, batch.read_a + batch.read_b, 0].float()
    return r[:k], r[k:]
