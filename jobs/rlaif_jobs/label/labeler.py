"""Labels a batch of pairs with an engine: prompts for both orders, optional CoT, soft labels.

``PairLabeler.label(records)`` returns one entry per record — labeled, abstained (with the reason) or
skipped (an empty response) — plus token counts. It batches the whole chunk into one engine call per
step (rationales, then scores), so vLLM schedules all prompts together and its prefix cache shares
the preamble and exemplars across them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from rlaif_jobs.config.label import LabelConfig
from rlaif_jobs.data import normalize_preference
from rlaif_jobs.label import prompts as P
from rlaif_jobs.label import scoring as S
from rlaif_jobs.labeler.base import Engine, encode_prompt

log = logging.getLogger(__name__)
ORDERS = {False: "AB", True: "BA"}
RESPONSE_FIELDS = ("responseA", "responseB")


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class _Item:
    """One record in one order, as it moves through the steps."""

    position: int
    swap: bool
    parts: P.PromptParts
    rationale: str | None = None
    p_a: float | None = None
    problem: str | None = None


@dataclass
class PairLabeler:
    """Everything fixed for a run: the config, the engine, and the prompt hash."""

    config: LabelConfig
    engine: Engine
    prompt_hash: str = field(init=False)

    def __post_init__(self) -> None:
        self.prompt_hash = P.prompt_hash(self.config.prompt, self.config.labeler.model.uri,
                                         self.config.labeler.use_chat_template)

    # -- helpers ---------------------------------------------------------------------------------
    def _render(self, parts: P.PromptParts) -> str:
        return P.render(parts, self.engine.tokenizer, self.config.labeler.use_chat_template)

    def _lengths(self, texts: list[str]) -> list[int] | None:
        tok = self.engine.tokenizer
        return [len(encode_prompt(tok, t)) for t in texts] if tok is not None else None

    def _fits(self, items: list[_Item], texts: list[str], room: int, usage: Usage) -> tuple[list[_Item], list[str]]:
        """Marks prompts longer than the engine's context (leaving ``room`` tokens) as problems."""
        lengths = self._lengths(texts)
        limit = self.config.labeler.max_model_len
        keep_items, keep_texts = [], []
        for i, (item, text) in enumerate(zip(items, texts, strict=True)):
            n = lengths[i] if lengths else 0
            if n + room > limit:
                item.problem = (f"prompt is {n} tokens; with {room} more it exceeds maxModelLen {limit}")
                continue
            usage.input_tokens += n
            keep_items.append(item)
            keep_texts.append(text)
        return keep_items, keep_texts

    # -- the work --------------------------------------------------------------------------------
    def label(self, records: list[dict], positions: list[int]) -> tuple[list[dict], Usage]:
        """Entries for ``records`` (see store.py for their shape) and the tokens spent on them."""
        usage = Usage()
        spec = self.config.prompt
        entries: dict[int, dict] = {}
        items: list[_Item] = []
        at = dict(zip(positions, records, strict=True))
        for record, position in zip(records, positions, strict=True):
            empty = [f for f in RESPONSE_FIELDS if not str(record.get(f) or "").strip()]
            if empty:
                entries[position] = self._other(record, position, "skipped", f"empty {' and '.join(empty)}")
                continue
            for swap in ([False, True] if spec.both_orders else [False]):
                items.append(_Item(position, swap, P.prompt_parts(spec, record, swap)))

        cot = spec.chain_of_thought
        if cot.enabled and items:
            step1 = [P.prompt_parts(spec, at[it.position], it.swap, for_rationale=True)
                     for it in items]
            texts = [self._render(p) for p in step1]
            ready, texts = self._fits(items, texts, cot.max_tokens + 16, usage)
            for it, (text, n) in zip(ready, self.engine.generate(texts, cot.max_tokens, cot.temperature), strict=True):
                usage.output_tokens += n
                it.rationale = text.strip()
                it.parts = P.prompt_parts(spec, at[it.position], it.swap,
                                          rationale=it.rationale)

        scorable = [it for it in items if it.problem is None]
        texts = [self._render(it.parts) for it in scorable]
        scorable, texts = self._fits(scorable, texts, 2, usage)
        if scorable:
            logprobs = self.engine.continuation_logprobs(texts, S.CONTINUATIONS)
            for it, lps in zip(scorable, logprobs, strict=True):
                try:
                    it.p_a = S.to_p_a(S.p_first(lps), it.swap)
                except S.Abstain as why:
                    it.problem = str(why)

        by_position: dict[int, dict[bool, _Item]] = {}
        for it in items:
            by_position.setdefault(it.position, {})[it.swap] = it
        for record, position in zip(records, positions, strict=True):
            if position in entries:
                continue
            orders = by_position[position]
            problems = [f"order {ORDERS[s]}: {it.problem}" for s, it in sorted(orders.items()) if it.problem]
            if problems:
                entries[position] = self._other(record, position, "abstained", "; ".join(problems))
            else:
                entries[position] = self._labeled(record, position, orders)
        return [entries[p] for p in positions], usage

    def _human(self, record: dict) -> str | None:
        if record.get("humanPreference") is None:
            return None
        return normalize_preference(record["humanPreference"], self.config.dataset.preference_index_base)

    def _labeled(self, record: dict, position: int, orders: dict[bool, _Item]) -> dict:
        ab, ba = orders[False], orders.get(True)
        p_a_ab = ab.p_a
        p_a_ba = ba.p_a if ba is not None else None
        assert p_a_ab is not None
        p_a = S.combine(p_a_ab, p_a_ba)
        out: dict[str, Any] = {"id": record["id"]}
        if "task" in record:
            out["task"] = record["task"]
        out.update({
            "context": record["context"], "responseA": record["responseA"], "responseB": record["responseB"],
            "pA": p_a, "pAOrderAB": p_a_ab if ba is not None else None, "pAOrderBA": p_a_ba,
            "chosen": S.chosen(p_a), "humanPreference": self._human(record),
            "rationale": ab.rationale, "rationaleOrderBA": ba.rationale if ba is not None else None,
            "labeler": self.config.labeler.model.uri, "promptHash": self.prompt_hash,
        })
        return {"status": "labeled", "position": position, "record": out}

    def _other(self, record: dict, position: int, status: str, reason: str) -> dict:
        out: dict[str, Any] = {"id": record["id"]}
        if "task" in record:
            out["task"] = record["task"]
        out.update({"kind": status, "reason": reason, "humanPreference": self._human(record),
                    "labeler": self.config.labeler.model.uri, "promptHash": self.prompt_hash})
        return {"status": status, "position": position, "record": out}
