"""Rewrites jobs/rlaif_jobs/datasets/sft-samples.jsonl: samples of the shipped SFT policy on the labeled
pairs' source texts (rlaif_jobs.datasets.sft_samples says why and what a line holds).

    .venv/bin/python scripts/sample_sft.py

A build tool, not part of the package: it needs the policy's rollout code and the oracle, while the
datasets package sits at the bottom of the import layers (pyproject.toml) and only reads the file.
"""

from __future__ import annotations

import argparse
import json

from rlaif_jobs.datasets.sft_samples import MAX_NEW_TOKENS, MODEL, SAMPLES, SAMPLES_FILE, SEED, TEMPERATURE


def sample(items: list[dict]) -> list[dict]:
    """One oracle-wrong SFT sample per summarization item (``generate`` item dicts), as output rows."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif_jobs.datasets.generate import SUMMARIZE
    from rlaif_jobs.evaluation import oracle
    from rlaif_jobs.models.resolve import resolve_model_uri
    from rlaif_jobs.policy.prompts import encode_prompt
    from rlaif_jobs.policy.rollout import TransformersRollout

    path = resolve_model_uri(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    rollout = TransformersRollout(model, tokenizer, torch.device("cpu"), batch_size=64)
    prompts = [SUMMARIZE + item["text"] for item in items]
    groups = rollout.generate([encode_prompt(tokenizer, p, 512) for p in prompts], SAMPLES, MAX_NEW_TOKENS,
                              TEMPERATURE, 1.0, seed=SEED)
    rows = []
    for item, prompt, generations in zip(items, prompts, groups, strict=True):
        record = {"task": "summarization", "prompt": prompt, "keyFact": [item["n"]], "wrong": [item["m"]]}
        for gen in generations:
            value, rule = oracle.explain(record, gen.text)
            if value == 0.0 and gen.text.strip():
                rows.append({"group": item["group"], "response": gen.text.strip(), "rule": rule})
                break
    return rows


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0]).parse_args(argv)
    from rlaif_jobs.datasets.generate import pair_items

    rows = sample(pair_items()["summarization"])
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    SAMPLES_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {SAMPLES_FILE} ({len(rows)} samples)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
