"""Scores (context, response) pairs with a trained reward model folder: what the RL stage calls.

    scorer = RewardModelScorer("out/reward/model")            # or builtin://, hf://, s3://, a path
    rewards = scorer.score(["Summarize: ..."], ["A summary."])  # -> [0.73]

The text scored is reward_input(tokenizer, context, response), truncated on the left to the maxLength
the model was trained with (kept in the tokenizer's model_max_length), as in training.
"""

from __future__ import annotations

from typing import Any

from rlaif_jobs.config.common import dtype_name
from rlaif_jobs.reward.format import reward_input, tokenize_reward_inputs


class RewardModelScorer:
    """A reward model loaded for inference (eval mode, no gradients).

    Inputs: the model's URI (resolved like every model URI), the device ('cpu', 'cuda', 'cuda:1'),
    and the dtype: None or 'auto' keeps the saved one (bf16 after bf16 training), else a torch dtype
    or one of 'float32'/'bfloat16'/'float16'.
    """

    def __init__(self, uri: str, device: str = "cpu", dtype: Any = None):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from rlaif_jobs.models.resolve import resolve_model_uri

        path = resolve_model_uri(uri)
        if isinstance(dtype, str):
            dtype = "auto" if dtype == "auto" else getattr(torch, dtype_name(dtype))
        self.device = torch.device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype or "auto")
        if self.model.config.num_labels != 1:
            raise ValueError(f"{uri}: a reward model has one output; this one has {self.model.config.num_labels}")
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model.to(self.device).eval()

    def texts(self, contexts: list[str], responses: list[str]) -> list[str]:
        """The exact strings scored (reward_input of each pair)."""
        if len(contexts) != len(responses):
            raise ValueError(f"{len(contexts)} contexts but {len(responses)} responses")
        return [reward_input(self.tokenizer, c, r) for c, r in zip(contexts, responses, strict=True)]

    def score(self, contexts: list[str], responses: list[str], batch_size: int = 16) -> list[float]:
        """The reward of each response to its context, in input order (batched, no gradients).

        Batches group texts of similar length (less padding); results come back in the order given.
        """
        import torch

        texts = self.texts(contexts, responses)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        scores = [0.0] * len(texts)
        with torch.inference_mode():
            for lo in range(0, len(order), max(1, batch_size)):
                idx = order[lo: lo + batch_size]
                enc = tokenize_reward_inputs(self.tokenizer, [texts[i] for i in idx])
                out = self.model(input_ids=enc["input_ids"].to(self.device),
                                 attention_mask=enc["attention_mask"].to(self.device))
                for i, v in zip(idx, out.logits[:, 0].float().cpu().tolist(), strict=True):
                    scores[i] = v
        return scores
