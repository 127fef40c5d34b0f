"""Samples the shipped SFT policy on the labeled pairs' source texts: the "what the policy writes" side.

The paper's summarization preferences (OpenAI's TL;DR comparisons) compare summaries written by
policies, reference summaries among them. The templated pairs alone compare two tidy one-sentence
summaries, while the SFT policy writes something else: copies of the text, side remarks, garbled
sentences. A reward model trained only on the tidy pairs ranks those arbitrarily, and which way
depends on its seed (measured: on 400 SFT samples of the RL prompts, three seeds' reward models
correlated 0.00, 0.45 and 0.03 with response length). So half of the shipped summarization pairs put
the reference summary against one sample of the SFT policy on the same text (generate.py).

    python -m rlaif_jobs.datasets.sft_samples   # rewrites sft-samples.jsonl (needs torch and the model)

Output, one line per summarization item of checkable-pairs: ``group``, ``response`` (the first of
``SAMPLES`` samples the oracle scores 0: the SFT answer is wrong, so the pair's better side is known),
``rule`` (the oracle's reason). Items whose samples are all right get no line; generate.py falls back
to a templated pair for them. The samples are committed, so the datasets build without a model.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HERE = Path(__file__).parent
SAMPLES_FILE = HERE / "sft-samples.jsonl"
MODEL = "builtin://smollm2-135m-instruct"
TEMPERATURE = 0.9  # the quickstart's RL sampling temperature: the policy's own distribution
SAMPLES = 4
MAX_NEW_TOKENS = 48
SEED = 20230902


def load() -> dict[str, str]:
    """{group: SFT response} from the committed file ({} when it is absent)."""
    if not SAMPLES_FILE.exists():
        return {}
    rows = [json.loads(line) for line in SAMPLES_FILE.read_text(encoding="utf-8").splitlines() if line]
    return {row["group"]: row["response"] for row in rows}


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
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    from rlaif_jobs.datasets.generate import pair_items

    rows = sample(pair_items()["summarization"])
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    SAMPLES_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {SAMPLES_FILE} ({len(rows)} samples)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
