"""Attention masks for packed rows: several sequences that share a prefix in ONE row, no padding.

The reward trainer (a pair's two texts after their shared prompt), the policy trainer (a prompt's
samples after the prompt) and the transformers labeler (a trie of prompts) all pack sequences this way:
a token may attend to the earlier tokens of its own sequence only, and each sequence continues the
positions of the prefix it shares. Those callers build the [T, T] "may attend" matrix; this module
holds what they share:

- ``attention_allowed(group, branch)``: the matrix for groups of one prefix (branch ``PREFIX``) and
  branches after it;
- ``additive_mask(allowed, dtype)``: the [1, 1, Tq, Tk] mask a transformers decoder takes as given;
- ``mask_problem(module)``: None if a decoder takes position ids and such a mask, else why not;
- ``group_spans(group)`` and ``grouped_attention(model)``: attention computed per group (no token
  attends across groups, so the [T, T] score matrix is block-diagonal): with G groups of similar
  length that is ~1/G of the attention work, and the same outputs up to float rounding.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PREFIX = 0  # the branch id of a group's shared prefix tokens
GROUPED_SDPA = "rlaif_grouped_sdpa"  # the attention implementation grouped_attention switches a model to
SPANS_KWARG = "rlaif_group_spans"  # the forward kwarg that carries group_spans to it


def attention_allowed(group: Any, branch: Any) -> Any:
    """[T, T] bool: may token i attend to token j? Causal (j <= i), within one group, and not across
    two branches of it (a PREFIX token is seen by every branch of its group)."""
    import torch

    t = group.shape[0]
    causal = torch.ones(t, t, dtype=torch.bool, device=group.device).tril_()
    same_group = group[:, None] == group[None, :]
    same_text = (branch[None, :] == PREFIX) | (branch[:, None] == branch[None, :])
    return causal & same_group & same_text


def additive_mask(allowed: Any, dtype: Any) -> Any:
    """[1, 1, Tq, Tk] in ``dtype``: 0 where ``allowed`` ([Tq, Tk] bool), the dtype's minimum elsewhere."""
    import torch

    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return mask.masked_fill_(~allowed, torch.finfo(dtype).min)[None, None]


def mask_problem(module: Any) -> str | None:
    """None if ``module`` (an HF decoder) takes position ids and a 4-D additive mask (sdpa or eager
    attention), else why not. A PEFT-wrapped model is judged by its base model (it passes both on)."""
    if callable(getattr(module, "get_base_model", None)):
        module = module.get_base_model()
    config = getattr(module, "config", None)
    if config is None:
        return f"{type(module).__name__} has no config"
    if getattr(config, "is_encoder_decoder", False):
        return f"{type(module).__name__} is an encoder-decoder model"
    if "position_ids" not in inspect.signature(module.forward).parameters:
        return f"{type(module).__name__} takes no position_ids"
    impl = getattr(config, "_attn_implementation", "sdpa")
    if impl not in ("sdpa", "eager"):
        return f"attention implementation {impl!r} takes no 4-D mask"
    return None


def group_spans(group: Any) -> tuple[tuple[int, int], ...]:
    """[start, end) of each run of equal ids in ``group`` ([T]; packers lay each group out contiguously)."""
    ids = group.tolist()
    starts = [i for i in range(len(ids)) if i == 0 or ids[i] != ids[i - 1]]
    return tuple(zip(starts, [*starts[1:], len(ids)], strict=True))


def _grouped_sdpa(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, **kwargs: Any) -> Any:
    """transformers' sdpa attention run once per group span (``kwargs[SPANS_KWARG]``) on that span's
    queries, keys, values and diagonal mask block; plain sdpa when no spans are given (e.g. a
    gradient-checkpointing recompute outside ``grouped_attention``). Layouts as sdpa's: q/k/v
    [B, H, T, D], mask [B, 1, T, T] -> ([B, T, H, D], None)."""
    import torch
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    spans = kwargs.pop(SPANS_KWARG, None)
    if spans is None or attention_mask is None or len(spans) < 2:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    outs = [sdpa_attention_forward(module, query[:, :, a:b], key[:, :, a:b], value[:, :, a:b],
                                   attention_mask[..., a:b, a:b], **kwargs)[0] for a, b in spans]
    return torch.cat(outs, dim=1), None


@contextmanager
def grouped_attention(model: Any) -> Iterator[bool]:
    """Within the block, ``model`` (an HF decoder, or a DeepSpeed/PEFT wrapper of one) on the sdpa
    attention computes attention per group: pass ``**{SPANS_KWARG: group_spans(group)}`` to its
    forward with the packed 4-D mask. Yields whether it switched (False for eager or other
    attention implementations, which then run as before and ignore the kwarg). The switch is the
    shared config's ``_attn_implementation``, restored on exit."""
    module = getattr(model, "module", model)
    if callable(getattr(module, "get_base_model", None)):
        module = module.get_base_model()
    config = getattr(module, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa":
        yield False
        return
    _register()
    config._attn_implementation = GROUPED_SDPA
    try:
        yield True
    finally:
        config._attn_implementation = "sdpa"


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(GROUPED_SDPA, _grouped_sdpa)
    ALL_MASK_ATTENTION_FUNCTIONS.register(GROUPED_SDPA, sdpa_mask)  # a 4-D mask is passed through as given
