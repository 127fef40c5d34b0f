"""Small helpers shared by the labeling tests: datasets on disk, configs, reading outputs."""

from __future__ import annotations

import json
from pathlib import Path

from rlaif_jobs.config.label import LabelConfig
from rlaif_jobs.datasets.generate import checkable_pairs

SMOLLM2 = "builtin://smollm2-135m-instruct"


def pairs(n: int) -> list[dict]:
    """The first ``n`` shipped pairs (balanced across the three tasks)."""
    return checkable_pairs()[:n]


def write_jsonl(path: Path, rows: list[dict]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def config(dataset: str, out: Path, engine: str = "vllm", labeler: dict | None = None, **extra) -> LabelConfig:
    """A LabelConfig for SmolLM2 in float32 on ``engine``; ``extra`` sets top-level fields."""
    spec = {"model": {"uri": SMOLLM2, "dtype": "float32"}, "engine": engine, "maxModelLen": 2048,
            "batchSize": 16, **(labeler or {})}
    return LabelConfig.model_validate({"labeler": spec, "dataset": {"uri": dataset}, "output": {"uri": str(out)},
                                       **extra})


def swapped(rows: list[dict]) -> list[dict]:
    """The same pairs with the candidates exchanged (and the human label with them)."""
    return [{**r, "responseA": r["responseB"], "responseB": r["responseA"],
             "humanPreference": {"a": "b", "b": "a"}[r["humanPreference"]]} for r in rows]
