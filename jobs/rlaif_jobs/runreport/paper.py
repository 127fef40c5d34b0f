"""The paper's headline figures (Lee et al. 2023, RLAIF vs. RLHF), to set beside a run's.

In the paper the labeler is PaLM 2 L and the SFT policy, reward model and RL policy are PaLM 2 XS
(parameter counts not published); win rates are judged by HUMAN raters, where this platform's are
judged by an AI judge (a proxy; see the judge-independence note and the oracle score).
"""

from __future__ import annotations

PAPER_MODELS = "labeler PaLM 2 L; policy and reward model PaLM 2 XS (sizes not published); human raters"
PAPER_DATA = ("Reddit TL;DR (summarization) and Anthropic HH (helpful and harmless dialogue), thousands of"
              " prompts each")

# (figure, task, paper value, metric key in this run's summaries, which stage)
FIGURES: list[tuple[str, str, float, str, str]] = [
    ("RLAIF win rate vs SFT", "summarization", 0.71, "winRate", "policy"),
    ("RLAIF win rate vs SFT", "helpful", 0.63, "winRate", "policy"),
    ("d-RLAIF win rate vs SFT", "summarization", 0.74, "winRate", "policy"),
    ("d-RLAIF win rate vs SFT", "helpful", 0.66, "winRate", "policy"),
    ("harmless rate, RLAIF policy", "harmless", 0.88, "harmlessRate", "policy"),
    ("harmless rate, SFT policy", "harmless", 0.64, "sftHarmlessRate", "policy"),
    ("labeler alignment (Base, 0-shot)", "summarization", 0.761, "alignment", "label"),
    ("labeler alignment (Base, 0-shot)", "helpful", 0.678, "alignment", "label"),
    ("labeler alignment (Base, 0-shot)", "harmless", 0.694, "alignment", "label"),
    ("same position preferred (large labeler)", "all", 0.18, "samePositionRate", "label"),
]

# Model sizes of the builtin models (the URI names them; a hub id usually carries its own size).
BUILTIN_SIZES = {
    "smollm2-135m-instruct": "SmolLM2 135M",
    "qwen2.5-coder-1.5b-instruct": "Qwen2.5-Coder 1.5B",
    "qwen2.5-coder-0.5b-instruct": "Qwen2.5-Coder 0.5B",
    "tiny-random-llama": "tiny random Llama (2 layers)",
    "minilm-l6-v2": "MiniLM-L6 22M",
}


def model_label(uri: str | None) -> str:
    """A readable model name with its size: builtin names from the table, else the URI's last part."""
    if not uri:
        return "?"
    tail = str(uri).rstrip("/").rsplit("/", 1)[-1]
    return BUILTIN_SIZES.get(tail, tail)
