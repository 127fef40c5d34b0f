"""Samples the shipped SFT policy on the labeled pairs' source texts: the "what the policy writes" side.

The paper's summarization preferences (OpenAI's TL;DR comparisons) compare summaries written by
policies, reference summaries among them. The templated pairs alone compare two tidy one-sentence
summaries, while the SFT policy writes something else: copies of the text, side remarks, garbled
sentences. A reward model trained only on the tidy pairs ranks those arbitrarily, and which way
depends on its seed (measured: on 400 SFT samples of the RL prompts, three seeds' reward models
correlated 0.00, 0.45 and 0.03 with response length). So half of the shipped summarization pairs put
the reference summary against one sample of the SFT policy on the same text (generate.py).

    python scripts/sample_sft.py   # rewrites sft-samples.jsonl (needs torch and the model; it uses the
                                   # policy's rollout code, which this bottom-layer package must not import)

Output, one line per summarization item of checkable-pairs: ``group``, ``response`` (the first of
``SAMPLES`` samples the oracle scores 0: the SFT answer is wrong, so the pair's better side is known),
``rule`` (the oracle's reason). Items whose samples are all right get no line; generate.py falls back
to a templated pair for them. The samples are committed, so the datasets build without a model.
"""

from __future__ import annotations

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
