"""Fixtures of the policy-stage tests: a tiny SFT policy whose behaviour RL can change in a few steps.

A randomly initialised model spreads its probability evenly over 49k tokens, so a reward such as
"the response contains the word blue" is never earned and nothing can be learned from it. The
paper's RL starts from an SFT model; so do these tests: ``tiny_sft_policy`` is a 2-layer Llama with
SmolLM2's tokenizer and chat template (head_dim 64, which vLLM's CPU attention supports, unlike the
builtin tiny-random-llama's 16), fine-tuned for a few dozen steps on answers of the form
"<subject> is <color>." with the five colours equally likely. RL then has something to choose from:
about one response in five says "blue" before training.

It is built once into $RLAIF_CACHE/test-models/ (keyed by RECIPE; a ``.complete`` marker is written
last) and reused by later sessions.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import pytest
from policy_helpers import COLORS, SUBJECTS

from rlaif_jobs.models.cache import cache_root

LAUNCH_ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
RECIPE = {"version": 1, "base": "smollm2-135m-instruct", "hidden": 128, "intermediate": 256, "layers": 2,
          "heads": 2, "kv_heads": 1, "head_dim": 64, "steps": 60, "batch": 16, "lr": 3e-3, "seed": 0,
          "subjects": SUBJECTS, "colors": COLORS}
PROMPTS = Path(__file__).resolve().parents[3] / "jobs/rlaif_jobs/datasets/checkable-prompts.jsonl"


def _build(out: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from rlaif_jobs.models.install import ensure_builtin

    base = ensure_builtin(RECIPE["base"])
    tok = AutoTokenizer.from_pretrained(base)
    cfg = AutoConfig.from_pretrained(base)
    for key, value in dict(hidden_size=RECIPE["hidden"], intermediate_size=RECIPE["intermediate"],
                           num_hidden_layers=RECIPE["layers"], num_attention_heads=RECIPE["heads"],
                           num_key_value_heads=RECIPE["kv_heads"], head_dim=RECIPE["head_dim"]).items():
        setattr(cfg, key, value)
    torch.manual_seed(RECIPE["seed"])
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    prompts = [json.loads(line)["prompt"] for line in PROMPTS.read_text().splitlines() if line.strip()]
    rng = random.Random(RECIPE["seed"])
    heads = {p: tok(tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                            add_generation_prompt=True), add_special_tokens=False)["input_ids"][-64:]
             for p in prompts}
    opt = torch.optim.AdamW(model.parameters(), lr=RECIPE["lr"])
    for _ in range(RECIPE["steps"]):
        batch = []
        for _ in range(RECIPE["batch"]):
            answer = f"{rng.choice(SUBJECTS)} is {rng.choice(COLORS)}.{tok.eos_token}"
            batch.append((heads[rng.choice(prompts)], tok(answer, add_special_tokens=False)["input_ids"]))
        width = max(len(p) + len(a) for p, a in batch)
        ids = torch.full((len(batch), width), tok.pad_token_id)
        att = torch.zeros((len(batch), width), dtype=torch.long)
        rows, cols, targets = [], [], []
        for i, (p, a) in enumerate(batch):
            seq = p + a
            ids[i, : len(seq)] = torch.tensor(seq)
            att[i, : len(seq)] = 1
            for j, t in enumerate(a):  # the logits at column len(p) - 1 + j predict answer token j
                rows.append(i)
                cols.append(len(p) - 1 + j)
                targets.append(t)
        hidden = model.model(input_ids=ids, attention_mask=att).last_hidden_state
        logits = model.lm_head(hidden[rows, cols])  # the answer's columns only: the 49k-way head is the cost
        loss = torch.nn.functional.cross_entropy(logits, torch.tensor(targets))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "recipe.json").write_text(json.dumps({**RECIPE, "finalLoss": float(loss)}, indent=2))


@pytest.fixture(scope="session")
def tiny_sft_policy() -> Path:
    """Folder of the tiny "colours" SFT policy (built on first use, then cached)."""
    key = hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()[:12]
    target = cache_root() / "test-models" / f"tiny-colors-sft-{key}"
    if (target / ".complete").exists():
        return target
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    _build(tmp)
    (tmp / ".complete").write_text("ok\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


@pytest.fixture(scope="module")
def one_rank():
    """One gloo rank of torch.distributed for DeepSpeed engines in this process (the launcher's
    variables set aside meanwhile, so the tests do not join a group their runner belongs to)."""
    import torch.distributed as tdist

    from rlaif_jobs.train import init_distributed  # DeepSpeed: imported by the tests that use it only

    saved = {k: os.environ.pop(k, None) for k in LAUNCH_ENV_KEYS}
    created = not tdist.is_initialized()
    yield init_distributed()
    if created and tdist.is_initialized():
        tdist.destroy_process_group()
    os.environ.update({k: v for k, v in saved.items() if v is not None})
