"""Attention masks for packed rows: several sequences that share a prefix in ONE row, no padding.

The reward trainer (a pair's two texts after their shared prompt), the policy trainer (a prompt's
samples after the prompt) and the transformers labeler (a trie of prompts) all pack sequences this way:
a token may attend to the earlier tokens of its own sequence only, and each sequence continues the
positions of the prefix it shares. Those callers build the [T, T] "may attend" matrix; this module
holds what they share:

- ``attention_allowed(group, branch)``: the matrix for groups of one prefix (branch ``PREFIX``) and
  branches after it;
- ``additive_mask(allowed, dtype)``: the [1, 1, Tq, Tk] mask a transformers decoder takes as given;
- ``mask_problem(module)``: None if a decoder takes position ids and such a mask, else why not.
"""

from __future__ import annotations

import inspect
from typing import Any

PREFIX = 0  # the branch id of a group's shared prefix tokens


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
