"""The policy's prompts: read from the dataset, split off held-out evaluation prompts, tokenized.

A prompt is shown to the policy the way an SFT (instruct) model expects it: as the user's turn of the
tokenizer's chat template when it has one, else as plain text. Over-long prompts lose tokens on the
left so that the question at the end survives, leaving room for ``maxNewTokens``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from rlaif_jobs.config.common import DatasetRef
from rlaif_jobs.data import DatasetError, load_records


@dataclass(frozen=True)
class Prompt:
    """A prompt record: its id, text, task (rubric, if the dataset says) and token ids for the policy."""

    id: str
    text: str
    task: str | None
    ids: list[int]


def load_prompt_records(ref: DatasetRef) -> list[dict]:
    """The dataset's records (id, prompt; optional task and the oracle's ground truth); DatasetError if bad."""
    from rlaif_jobs.evaluation.oracle import ORACLE_FIELDS

    records = load_records(ref, required=["prompt"], optional=("task", "group", *ORACLE_FIELDS))
    empty = [r["id"] for r in records if not str(r["prompt"]).strip()]
    if empty:
        raise DatasetError(f"dataset {ref.uri}: {len(empty)} record(s) have an empty prompt (first: id"
                           f" {empty[0]!r})")
    return records


def item_key(record: dict) -> str:
    """The underlying item a record is about: its ``group`` field (map one with dataset.fields.group),
    else its prompt text. Records of one item are never split between training and evaluation."""
    group = record.get("group")
    return f"group:{group}" if group not in (None, "") else f"prompt:{str(record.get('prompt', '')).strip()}"


def split_eval(records: list[dict], n_eval: int, seed: int) -> tuple[list[dict], list[dict]]:
    """(training records, held-out records) keeping the file order: whole items (``item_key``) drawn with
    ``seed`` until ``n_eval`` records are held out, so no item is on both sides."""
    if n_eval <= 0:
        return records, []
    items: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        items.setdefault(item_key(r), []).append(i)
    keys = list(items)
    random.Random(f"eval:{seed}").shuffle(keys)
    held: set[int] = set()
    for key in keys:
        if len(held) >= n_eval:
            break
        held.update(items[key])
    return [r for i, r in enumerate(records) if i not in held], [r for i, r in enumerate(records) if i in held]


def shared_items(train: list[dict], held: list[dict]) -> list[str]:
    """The item keys (``item_key``) that occur on both sides."""
    mine = {item_key(r) for r in train}
    return sorted({item_key(r) for r in held} & mine)


def encode_prompt(tokenizer: Any, text: str, max_tokens: int) -> list[int]:
    """Token ids of ``text`` as the policy's input, truncated on the left to ``max_tokens``."""
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                 add_generation_prompt=True)
        ids = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    else:
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    return list(ids[-max_tokens:])


def to_prompts(records: list[dict], tokenizer: Any, max_tokens: int) -> list[Prompt]:
    """Prompt objects for ``records``, token ids capped at ``max_tokens``."""
    return [Prompt(str(r["id"]), str(r["prompt"]), r.get("task"),
                   encode_prompt(tokenizer, str(r["prompt"]), max_tokens)) for r in records]
