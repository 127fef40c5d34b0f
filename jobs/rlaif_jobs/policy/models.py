"""The three models of stage 3 and their forward passes over (prompt, response) batches.

- policy: the SFT model, trained; also what the rollout engine samples from;
- reference: a frozen copy of the SFT model, for KL(pi || pi_SFT);
- value: the SFT model's transformer with a scalar head per token (paper: "initialised from the SFT
  model"), trained by REINFORCE's and PPO's value loss. The head starts at zero, so V = 0 at first.

A batch is laid out as [left-padded prompt | right-padded response]; position ids follow the
attention mask, so padding never shifts positions. The logits at column P - 1 + t predict response
token t (P: padded prompt width), and V(x_t) is read at the same column: the state before a_t.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from rlaif_jobs.config.common import ModelRef, dtype_name
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.policy.kl import logprobs_and_entropy, token_logprobs
from rlaif_jobs.policy.packing import pack_rows, packed_logits, supports_packing


class PolicyModelError(ConfigError):
    """The policy (SFT) model or its tokenizer cannot be loaded (exit code 3)."""


def load_policy(ref: ModelRef) -> tuple[str, Any, Any]:
    """(local path or hub id, tokenizer with a pad token, policy model in float32); PolicyModelError."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif_jobs.models.resolve import resolve_model
    from rlaif_jobs.train.lora import adapter_base, is_adapter_folder

    try:
        path = resolve_model(ref)
        if is_adapter_folder(path):
            raise PolicyModelError(
                f"policy.uri: {ref.uri!r} is a LoRA adapter folder (rl.lora.export: adapter), not a model; start"
                f" from a merged export (rl.lora.export: merged), or merge it onto the base model its"
                f" base_model.json names ({adapter_base(path)}) with peft's merge_and_unload")
        tok = AutoTokenizer.from_pretrained(ref.tokenizer and _resolve(ref.tokenizer) or path,
                                            revision=ref.revision, trust_remote_code=ref.trust_remote_code)
        # float32: DeepSpeed keeps master weights in the dtype it is given and casts for bf16 itself.
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, revision=ref.revision,
                                                     trust_remote_code=ref.trust_remote_code)
    except PolicyModelError:
        raise
    except Exception as err:
        detail = " ".join(str(err).split())[:300] or type(err).__name__
        raise PolicyModelError(f"policy.uri: cannot load {ref.uri!r} as a causal LM ({detail})") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.config.use_cache = False
    return path, tok, model


def _resolve(uri: str) -> str:
    from rlaif_jobs.models.resolve import resolve_model_uri

    return resolve_model_uri(uri)


def load_reference(path: str, ref: ModelRef, precision: str, device: Any) -> Any:
    """The frozen SFT reference in the training precision, in eval mode, without gradients."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype_name(precision)),
                                                 revision=ref.revision, trust_remote_code=ref.trust_remote_code)
    model.requires_grad_(False)
    return model.to(device).eval()


class ValueModel(nn.Module):
    """The SFT transformer with a per-token scalar head: V(x_t) for every position, shape [B, L]."""

    def __init__(self, backbone: nn.Module, hidden_size: int):
        super().__init__()
        self.backbone: Any = backbone  # a transformers base model (gradient_checkpointing_enable, ...)
        self.value_head = nn.Linear(hidden_size, 1)
        nn.init.zeros_(self.value_head.weight)
        nn.init.zeros_(self.value_head.bias)
        self.config = backbone.config

    def gradient_checkpointing_enable(self, **kwargs: Any) -> None:
        self.backbone.gradient_checkpointing_enable(**kwargs)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                position_ids: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                               use_cache=False).last_hidden_state
        return self.value_head(hidden.to(self.value_head.weight.dtype)).squeeze(-1).float()


def load_value_model(path: str, ref: ModelRef) -> ValueModel:
    """A ValueModel on the SFT model's transformer (float32; DeepSpeed casts for the precision)."""
    from transformers import AutoModel

    backbone = AutoModel.from_pretrained(path, dtype=torch.float32, revision=ref.revision,
                                         trust_remote_code=ref.trust_remote_code)
    backbone.config.use_cache = False
    return ValueModel(backbone, backbone.config.hidden_size)


@dataclass
class SequenceBatch:
    """Prompts and responses as one padded tensor batch (see the module docstring)."""

    input_ids: torch.Tensor  # [B, P + T]
    attention_mask: torch.Tensor  # [B, P + T]
    position_ids: torch.Tensor  # [B, P + T]
    response_ids: torch.Tensor  # [B, T]
    mask: torch.Tensor  # [B, T] float, 1 on response tokens
    prompt_width: int

    def slice(self, rows: slice) -> SequenceBatch:
        return SequenceBatch(self.input_ids[rows], self.attention_mask[rows], self.position_ids[rows],
                             self.response_ids[rows], self.mask[rows], self.prompt_width)

    def to(self, device: Any) -> SequenceBatch:
        return SequenceBatch(self.input_ids.to(device), self.attention_mask.to(device),
                             self.position_ids.to(device), self.response_ids.to(device), self.mask.to(device),
                             self.prompt_width)


def make_batch(prompts: list[list[int]], responses: list[list[int]], pad_id: int) -> SequenceBatch:
    """Pads prompts on the left and responses on the right into one SequenceBatch."""
    p_width = max(len(p) for p in prompts)
    t_width = max(1, max(len(r) for r in responses))
    b = len(prompts)
    ids = torch.full((b, p_width + t_width), pad_id, dtype=torch.long)
    att = torch.zeros((b, p_width + t_width), dtype=torch.long)
    resp = torch.full((b, t_width), pad_id, dtype=torch.long)
    mask = torch.zeros((b, t_width), dtype=torch.float32)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        ids[i, p_width - len(p): p_width] = torch.tensor(p, dtype=torch.long)
        att[i, p_width - len(p): p_width] = 1
        if r:
            ids[i, p_width: p_width + len(r)] = torch.tensor(r, dtype=torch.long)
            att[i, p_width: p_width + len(r)] = 1
            resp[i, : len(r)] = torch.tensor(r, dtype=torch.long)
            mask[i, : len(r)] = 1.0
    pos = (att.cumsum(-1) - 1).clamp(min=0)
    return SequenceBatch(ids, att, pos, resp, mask, p_width)


def policy_forward(model: Any, batch: SequenceBatch, temperature: float, with_entropy: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(log pi(a_t | x_t) [B, T], entropy [B, T] or None) under ``model`` (policy or reference).

    Rows that share a prompt (several samples per prompt) run as one packed row, each prompt computed
    once and no padding (policy/packing.py), where the model takes a 4-D mask; else the padded batch.
    Only the logits of the response columns are computed (``logits_to_keep``; packed: of the real
    response tokens only, padding positions get 0): the lm-head over a 49k vocabulary is the largest
    tensor of the pass.
    """
    packed = pack_rows(batch) if supports_packing(model) else None
    if packed is None:
        t = batch.response_ids.shape[1]
        out = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                    position_ids=batch.position_ids, use_cache=False, logits_to_keep=t + 1)
        logits = out.logits[:, :-1, :]  # columns P-1 .. P+T-2 predict response tokens 0 .. T-1
        if with_entropy:
            return logprobs_and_entropy(logits, batch.response_ids, temperature)
        return token_logprobs(logits, batch.response_ids, temperature), None
    # packed: logits of the real response tokens only, [N, V]; the results go back to [B, T], 0 on padding
    real = batch.mask.bool()
    logits = packed_logits(model, packed, real)
    tokens = batch.response_ids[real]
    if with_entropy:
        lp, ent = logprobs_and_entropy(logits, tokens, temperature)
    else:
        lp, ent = token_logprobs(logits, tokens, temperature), None
    logp = lp.new_zeros(real.shape).masked_scatter(real, lp)
    return logp, None if ent is None else ent.new_zeros(real.shape).masked_scatter(real, ent)


def value_forward(model: Any, batch: SequenceBatch) -> torch.Tensor:
    """V(x_t) for each response token t: [B, T] (read at the column that predicts token t)."""
    t = batch.response_ids.shape[1]
    values = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask,
                   position_ids=batch.position_ids)
    return values[:, batch.prompt_width - 1: batch.prompt_width - 1 + t]
