"""Helpers of the reward workload's tests: a learnable labels file and clean torchrun launches."""

from __future__ import annotations

import json
import os
import random
import socket
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PYTHON = sys.executable
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
MARKER = "wonderful"  # the preferred response of each pair contains this word
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "ROLE_RANK",
               "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")


def learnable_pairs(n: int, seed: int = 0, human_every: int = 3) -> list[dict]:
    """Labels-file records where the response containing MARKER is preferred, with soft p values
    (0.75-1.0 towards it), the marker side random, and a human label on every ``human_every``-th pair."""
    rng = random.Random(seed)
    topics = ["the sea", "a cat", "rain", "trains", "music", "bread", "mountains", "a city", "winter", "books"]
    words = ["the", "a", "small", "old", "new", "quiet", "bright", "long", "short", "warm", "cold", "green",
             "blue", "fast", "slow", "day", "night", "road", "river", "tree"]

    def response(good: bool) -> str:
        w = [rng.choice(words) for _ in range(rng.randint(4, 8))]
        if good:
            w.insert(rng.randrange(len(w) + 1), MARKER)
        return " ".join(w).capitalize() + "."

    out = []
    for i in range(n):
        a_good = rng.random() < 0.5
        p = rng.uniform(0.75, 1.0) if a_good else rng.uniform(0.0, 0.25)
        out.append({
            "id": f"pair-{seed}-{i}", "context": f"Write a sentence about {rng.choice(topics)}.",
            "responseA": response(a_good), "responseB": response(not a_good), "pA": round(p, 4),
            "humanPreference": ("a" if a_good else "b") if human_every and i % human_every == 0 else None,
            "task": "custom", "pAOrderAB": p, "pAOrderBA": p, "chosen": "a" if a_good else "b",
            "labeler": "test", "promptHash": "0",
        })
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_env() -> dict[str, str]:
    """This environment without any launcher variables (an in-process test may have set them),
    unbuffered, offline, with the package importable."""
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update(PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", OMP_NUM_THREADS="1",
               TOKENIZERS_PARALLELISM="false")
    return env


def torchrun_cmd(config: Path, nproc: int = 2) -> list[str]:
    return [TORCHRUN, "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1", "--master_port",
            str(free_port()), "-m", "rlaif_jobs.reward", "--config", str(config)]
