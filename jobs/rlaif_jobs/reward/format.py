"""The one text the reward model scores for a (context, response), at training and at RL time.

With a chat template (SFT/instruct models): the context is the user turn and the response the
assistant turn, rendered by the tokenizer's template, so the reward model reads exactly the format the
policy writes in. Without one (a base model, or an encoder such as MiniLM): ``context``, a blank line,
``response`` and the EOS token if the tokenizer has one; the tokenizer then adds its own special
tokens (BOS, or [CLS]/[SEP]) when tokenizing. Both the
reward trainer and the policy stage (through RewardModelScorer or this module) must use these two
functions, or scores mean something else at RL time than in training.
"""

from __future__ import annotations

from typing import Any


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def reward_input(tokenizer: Any, context: str, response: str) -> str:
    """The text the reward model scores for ``response`` to ``context``.

    Input: the reward model's tokenizer, the context (prompt, post, or dialogue so far) and a response.
    Output: a string to tokenize with ``tokenize_reward_inputs`` (special tokens already in the text).
    """
    if has_chat_template(tokenizer):
        messages = [{"role": "user", "content": context}, {"role": "assistant", "content": response}]
        return tokenizer.apply_chat_template(messages, tokenize=False)
    eos = tokenizer.eos_token or ""
    return f"{context}\n\n{response}{eos}"


def tokenize_reward_inputs(tokenizer: Any, texts: list[str], max_length: int | None = None) -> dict:
    """Tokenizes reward_input texts into padded ``input_ids`` / ``attention_mask`` tensors.

    Over-long inputs lose tokens on the LEFT (the start of the context), so the response, whose end is
    where a causal model's score is read, always survives. ``max_length`` defaults to the tokenizer's
    model_max_length (the trainer stores its training maxLength there). With a chat template no special
    tokens are added (the template wrote them; a BOS added twice would shift every score); without
    one the tokenizer adds its usual ones.
    """
    return _encode(tokenizer, texts, max_length, padding=True, return_tensors="pt")


def encode_reward_inputs(tokenizer: Any, texts: list[str], max_length: int | None = None) -> list[list[int]]:
    """The token ids of each text, unpadded, truncated exactly as ``tokenize_reward_inputs`` does
    (the rows of its input_ids without the padding): what packed batches are built from."""
    return _encode(tokenizer, texts, max_length, padding=False)["input_ids"]


def _encode(tokenizer: Any, texts: list[str], max_length: int | None, **kw: Any) -> Any:
    limit = max_length or getattr(tokenizer, "model_max_length", None)
    if limit is not None and limit > 1_000_000:  # transformers' "no limit" sentinel
        limit = None
    side = tokenizer.truncation_side
    tokenizer.truncation_side = "left"
    try:
        return tokenizer(texts, truncation=limit is not None, max_length=limit,
                         add_special_tokens=not has_chat_template(tokenizer), **kw)
    finally:
        tokenizer.truncation_side = side
