"""Rollout engines: sample responses to prompts from the current policy. The engine is a setting.

- ``TransformersRollout``: ``model.generate`` on the training module itself (left-padded batch). It
  always samples from the live weights, so there is nothing to synchronise; it is the fallback.
- ``VLLMRollout`` (rollout_vllm.py): a vLLM engine holding its own copy of the policy, batched and
  much faster per token; the trainer pushes the new weights into it after every update.

Both return, per prompt, ``n`` ``Generation``s whose ``token_ids`` include the EOS token when the
response ended by itself (so the policy is trained to stop), and ``text`` decoded without special
tokens.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass
class Generation:
    """One sampled response: its tokens (EOS included if it stopped), its text, whether it stopped."""

    token_ids: list[int]
    text: str
    finished: bool


class RolloutEngine(Protocol):
    name: str

    def generate(self, prompt_ids: list[list[int]], n: int, max_new_tokens: int, temperature: float,
                 top_p: float, seed: int) -> list[list[Generation]]:
        """``n`` samples per prompt (token-id prompts), reproducible for a given ``seed``."""
        ...

    def load_weights(self, named: Iterable[tuple[str, Any]]) -> float:
        """Makes the engine sample from these weights (HF names); returns the seconds it took."""
        ...

    @property
    def needs_sync(self) -> bool: ...

    def close(self) -> None: ...


def eos_ids(tokenizer: Any, generation_config: Any = None) -> set[int]:
    """Every token id that ends a response: the tokenizer's EOS and the generation config's."""
    ids: set[int] = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    extra = getattr(generation_config, "eos_token_id", None)
    if isinstance(extra, int):
        ids.add(extra)
    elif isinstance(extra, (list, tuple)):
        ids.update(int(i) for i in extra)
    return ids


def sampling_kwargs(temperature: float, top_p: float) -> dict[str, Any]:
    """generate()'s decoding arguments: greedy at temperature 0, else sampling at it with top-p."""
    if temperature <= 0:
        return {"do_sample": False}
    return {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}


def cut_at_eos(tokens: list[int], stop: set[int]) -> tuple[list[int], bool]:
    """Tokens up to and including the first stop token, and whether there was one."""
    for i, t in enumerate(tokens):
        if t in stop:
            return tokens[: i + 1], True
    return tokens, False


class TransformersRollout:
    """Sampling with ``generate`` on the policy module being trained (no weight copy, no sync)."""

    name = "transformers"
    needs_sync = False

    def __init__(self, module: Any, tokenizer: Any, device: Any, batch_size: int = 64):
        self.module = module
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = batch_size
        self.stop = eos_ids(tokenizer, getattr(module, "generation_config", None))
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(self.stop)

    def generate(self, prompt_ids: list[list[int]], n: int, max_new_tokens: int, temperature: float,
                 top_p: float, seed: int) -> list[list[Generation]]:
        import torch

        out: list[list[Generation]] = []
        was_training = self.module.training
        self.module.eval()
        torch.manual_seed(seed)
        try:
            per_call = max(1, self.batch_size // max(1, n))
            for lo in range(0, len(prompt_ids), per_call):
                chunk = prompt_ids[lo: lo + per_call]
                width = max(len(p) for p in chunk)
                ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
                att = torch.zeros((len(chunk), width), dtype=torch.long)
                for i, p in enumerate(chunk):
                    ids[i, width - len(p):] = torch.tensor(p)
                    att[i, width - len(p):] = 1
                with torch.no_grad():
                    seqs = self.module.generate(
                        input_ids=ids.to(self.device), attention_mask=att.to(self.device),
                        **sampling_kwargs(temperature, top_p), max_new_tokens=max_new_tokens,
                        num_return_sequences=n, pad_token_id=self.pad_id, eos_token_id=sorted(self.stop),
                        use_cache=True)
                new = seqs[:, width:].tolist()
                for i in range(len(chunk)):
                    group = []
                    for row in new[i * n:(i + 1) * n]:
                        tokens, finished = cut_at_eos(row, self.stop)
                        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                        group.append(Generation(tokens, text, finished))
                    out.append(group)
        finally:
            if was_training:
                self.module.train()
        return out

    def load_weights(self, named: Iterable[tuple[str, Any]]) -> float:
        return 0.0  # generates with the module being trained

    def close(self) -> None:
        self.module = None


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    """(fn(*args, **kwargs), seconds it took)."""
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - t
