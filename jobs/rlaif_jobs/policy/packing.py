"""Log-probs of a policy micro-batch with each shared prompt computed once, without padding.

RLOO and GRPO sample several responses per prompt (``samplesPerPrompt``), so the rows of a micro-batch
repeat their prompts; a padded batch also pads every prompt to the longest and every response to the
longest. A packed forward is ONE row holding, per distinct prompt, the prompt's tokens once and then
each of its responses, with

- position ids that continue the prompt in every response (each response starts at the prompt's length),
- an attention mask that lets a token see its own prompt and the earlier tokens of its own response,
  never another response or another prompt.

Each response token so gets exactly the inputs it has in its own unpadded sequence, and its log-prob
equals the padded batch's up to float rounding, gradients included (the loss is the same function of
the same logits). The 135M quickstart policy computes ~40% fewer tokens per update this way.

    packed = pack_rows(batch)          # None when no two rows share a prompt: the padded pass is as good
    logits = packed_logits(model, packed, batch.mask)   # [N, V]: the logits predicting each response token
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from rlaif_jobs.packed_attention import (
    PREFIX,
    SPANS_KWARG,
    additive_mask,
    attention_allowed,
    group_spans,
    grouped_attention,
    mask_problem,
)


@dataclass(frozen=True)
class PackedRows:
    """input_ids, position_ids [1, L]; group, branch [L] (branch PREFIX for prompt tokens, else the batch
    row + 1); gather [B, T]: the row index whose logits predict response token t of batch row b (0 where
    the response has no token t)."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    group: torch.Tensor
    branch: torch.Tensor
    gather: torch.Tensor

    def attention_mask(self, dtype: torch.dtype) -> torch.Tensor:
        """Additive [1, 1, L, L] mask: 0 where token i may attend to token j (causal, same prompt, and
        j in the prompt or in i's own response), the dtype's minimum elsewhere."""
        return additive_mask(attention_allowed(self.group, self.branch), dtype)


def pack_rows(batch: Any) -> PackedRows | None:
    """The packed layout of ``batch`` (a SequenceBatch), or None when every prompt is distinct."""
    prompts: list[tuple[int, ...]] = []
    responses: list[list[int]] = []
    p_width = batch.prompt_width
    for i in range(batch.input_ids.shape[0]):
        prompt_ids = batch.input_ids[i, :p_width][batch.attention_mask[i, :p_width].bool()]
        prompts.append(tuple(prompt_ids.tolist()))
        responses.append(batch.response_ids[i][batch.mask[i].bool()].tolist())
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(p, []).append(i)
    if len(groups) == len(prompts) or any(len(p) == 0 for p in groups):
        return None
    ids: list[int] = []
    pos: list[int] = []
    group: list[int] = []
    branch: list[int] = []
    gather = torch.zeros(batch.response_ids.shape, dtype=torch.long)
    for g, (prompt, rows) in enumerate(groups.items()):
        last_prompt = len(ids) + len(prompt) - 1
        ids += prompt
        pos += range(len(prompt))
        group += [g] * len(prompt)
        branch += [PREFIX] * len(prompt)
        for r in rows:
            start, resp = len(ids), responses[r]
            ids += resp
            pos += range(len(prompt), len(prompt) + len(resp))
            group += [g] * len(resp)
            branch += [r + 1] * len(resp)
            # token 0 is predicted at the prompt's last token, token t at the response's token t - 1
            for t in range(len(resp)):
                gather[r, t] = last_prompt if t == 0 else start + t - 1
    dev = batch.input_ids.device
    return PackedRows(torch.tensor([ids], device=dev), torch.tensor([pos], device=dev),
                      torch.tensor(group, device=dev), torch.tensor(branch, device=dev), gather.to(dev))


def supports_packing(model: Any) -> bool:
    """Whether ``model`` (a causal LM, or a DeepSpeed engine around one) takes position ids and a 4-D
    additive mask: HF decoders with the sdpa or eager attention."""
    return mask_problem(getattr(model, "module", model)) is None


def packed_logits(model: Any, packed: PackedRows, mask: torch.Tensor) -> torch.Tensor:
    """[N, V] logits predicting the N response tokens where ``mask`` ([B, T]) is nonzero, in row-major
    order, from one packed forward of ``model``. The lm-head runs at those positions only (a prompt's
    last position once per response: it predicts each response's first token), so neither padding
    nor a [B, T, V] re-gather of the logits is computed; forward and backward both skip them."""
    dtype = next(model.parameters()).dtype
    positions = packed.gather[mask.bool()]
    with grouped_attention(model):  # attention per prompt group: no token sees another group
        out = model(input_ids=packed.input_ids, position_ids=packed.position_ids,
                    attention_mask=packed.attention_mask(dtype), use_cache=False, logits_to_keep=positions,
                    **{SPANS_KWARG: group_spans(packed.group)})
    return out.logits.squeeze(0)  # not logits[0]: select's backward zero-fills and copies a [1, N, V] tensor
