"""The engine interface every labeler backend implements, and the pieces the backends share.

An engine answers two questions about a causal LM:
- ``continuation_logprobs(prompts, continuations)``: log P(continuation | prompt) for each prompt and
  each continuation string. A continuation may be several tokens ("10", or " 1" in tokenizers that
  split the space from the digit): its log-probability is the sum over its tokens, each conditioned
  on the prompt plus the tokens before it. ``None`` means the engine cannot tell (an endpoint that
  did not list the token among its top alternatives) — callers must not invent a value then.
- ``generate(prompts, max_tokens, temperature, top_k=0, seed=0)``: (text, number of generated tokens)
  per prompt; greedy at temperature 0. ``top_k`` 0 samples from the whole vocabulary; ``seed`` makes
  sampling repeatable, and a different seed gives a different sample (self-consistency asks for N).

The token-level backends (vLLM, transformers) share ``token_continuation_logprobs``: it turns every
(prompt, continuation) into next-token queries "given these token ids, the log-probabilities of these
next token ids", asks them all in one batch, and sums the answers.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from rlaif_jobs.errors import ConfigError, RetryableError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class EngineError(RuntimeError):
    """The engine failed while labeling (an endpoint that kept failing, an engine crash)."""


class EngineLoadError(ConfigError):
    """The labeler model cannot be loaded, or its endpoint refuses it: one line saying which and why
    (exit code 3: a rerun cannot fix it)."""


class EndpointUnavailableError(RetryableError):
    """The labeler's endpoint cannot be reached (exit code 1: it may come back, so the Job retries).

    Labeling, the d-RLAIF reward and the evaluation's judge all meet a down endpoint as this one error."""


@runtime_checkable
class Engine(Protocol):
    """A labeler LLM behind one interface (see the module docstring)."""

    model_name: str
    tokenizer: PreTrainedTokenizerBase

    def continuation_logprobs(self, prompts: list[str], continuations: list[str]) -> list[list[float | None]]:
        """For each prompt, log P(c | prompt) for each continuation c (None where unknown)."""
        ...

    def generate(self, prompts: list[str], max_tokens: int, temperature: float = 0.0, top_k: int = 0,
                 seed: int = 0) -> list[tuple[str, int]]:
        """For each prompt, (generated text, number of generated tokens)."""
        ...

    def close(self) -> None:
        """Frees the engine's memory and processes."""
        ...


def chat_template_here(engine: object, use_chat_template: bool) -> bool:
    """Whether prompts are wrapped in the chat template before they go to ``engine``: not for an engine
    whose server applies it (``sends_messages``: endpoint.api chat, where the plain prompt text is sent
    as one user message)."""
    return use_chat_template and not getattr(engine, "sends_messages", False)


# A next-token query: (prompt token ids, the next-token ids whose log-probabilities are wanted).
Query = tuple[list[int], list[int]]


def encode_prompt(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of a prompt string, with the BOS token only if the tokenizer adds one and it is absent.

    Chat templates already write their special tokens into the text, so the text is encoded without
    special tokens; a tokenizer that normally prepends BOS (Llama-2 style) gets it back unless the
    template already put it there.
    """
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is not None and (not ids or ids[0] != bos) and _adds_bos(tokenizer):
        ids = [bos, *ids]
    return list(ids)


def _adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    cached = getattr(tokenizer, "_rlaif_adds_bos", None)
    if cached is None:
        probe = tokenizer("a", add_special_tokens=True)["input_ids"]
        cached = bool(probe) and probe[0] == tokenizer.bos_token_id
        with contextlib.suppress(AttributeError):  # a tokenizer refusing new attributes: recompute next time
            tokenizer._rlaif_adds_bos = cached
    return cached


def encode_continuation(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of a continuation string on its own (no special tokens); raises on an empty string."""
    if not text:
        raise ValueError("a continuation must be a non-empty string")
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if not ids:
        raise ValueError(f"continuation {text!r} encodes to no tokens")
    return ids


def token_continuation_logprobs(
    prompt_ids: Sequence[list[int]],
    continuation_ids: Sequence[list[int]],
    next_token_logprobs: Callable[[list[Query]], list[dict[int, float]]],
) -> list[list[float | None]]:
    """log P(continuation | prompt) for every pair, from one batch of next-token queries.

    Inputs: each prompt's token ids, each continuation's token ids, and the engine's query function
    (one dict {token id: log-prob} per query, covering at least the ids asked for), called once per
    token depth. Continuations sharing a first token share a query, so ["1", "2", " 1", " 2"] costs
    one query per prompt when all four are single tokens, and one more when " 1" is two tokens
    (" ", "1"), asked after the first so that it reuses the prompt's cached prefix.
    """
    # queries by depth: the answers at depth k extend prompts whose depth k-1 query ran first, so an
    # engine with a prefix cache computes only the few new tokens of a deeper query
    levels: list[list[Query]] = []
    index: dict[tuple[int, tuple[int, ...]], tuple[int, int]] = {}
    for p, ids in enumerate(prompt_ids):
        for cont in continuation_ids:
            for k in range(len(cont)):
                key = (p, tuple(cont[:k]))
                if key not in index:
                    while len(levels) <= k:
                        levels.append([])
                    index[key] = (k, len(levels[k]))
                    levels[k].append(([*ids, *cont[:k]], []))
                depth, i = index[key]
                wanted = levels[depth][i][1]
                if cont[k] not in wanted:
                    wanted.append(cont[k])
    level_answers = [next_token_logprobs(level) for level in levels]

    def answer(key: tuple[int, tuple[int, ...]]) -> dict[int, float]:
        depth, i = index[key]
        return level_answers[depth][i]

    out: list[list[float | None]] = []
    for p in range(len(prompt_ids)):
        row: list[float | None] = []
        for cont in continuation_ids:
            steps = [answer((p, tuple(cont[:k]))).get(cont[k]) for k in range(len(cont))]
            known = [lp for lp in steps if lp is not None and not math.isnan(lp)]
            row.append(sum(known) if len(known) == len(steps) else None)
        out.append(row)
    return out
