"""A LoRA reward model (training.lora): only the adapters and the score head train, the base weights stay,
the export is a plain merged sequence classifier that the policy stage's scorer loads; an adapter export
is refused by field (the policy stage reads the reward model as an HF folder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from pydantic import ValidationError
from reward_helpers import REPO, launch_env, learnable_pairs, write_jsonl

from rlaif_jobs.config.reward import RewardConfig


def _config(tmp_path, model: str, export: str = "merged") -> dict:
    return {"baseModel": {"uri": model}, "preferencesUri": str(write_jsonl(tmp_path / "labels.jsonl",
                                                                            learnable_pairs(24))),
            "training": {"batchSize": 8, "microBatchSize": 4, "epochs": 1, "maxLength": 64, "precision": "fp32",
                         "learningRate": 1e-3, "evalFraction": 0.2, "checkpointEverySteps": 100,
                         "lora": {"rank": 4, "alpha": 8, "export": export}},
            "tracking": {"tensorboard": False},
            "output": {"uri": str(tmp_path / "out")}}


def test_adapter_export_is_refused_for_a_reward_model(tmp_path):
    with pytest.raises(ValidationError, match=r"(?s)training.*lora\.export: .*merged"):
        RewardConfig.model_validate(_config(tmp_path, "builtin://tiny-random-llama", export="adapter"))


@pytest.mark.slow
def test_lora_reward_model_trains_adapters_and_head_and_exports_merged(tmp_path, tiny_model):
    path = tmp_path / "reward.yaml"
    path.write_text(yaml.safe_dump(_config(tmp_path, tiny_model)))
    proc = subprocess.run([sys.executable, "-m", "rlaif_jobs.reward", "--config", str(path)], cwd=REPO,
                          env=launch_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "training.lora: rank 4 adapters" in proc.stdout + proc.stderr
    out = tmp_path / "out"
    ckpt = next((out / "checkpoints").glob("step-*"))
    state = torch.load(ckpt / "model" / "mp_rank_00_model_states.pt", map_location="cpu", weights_only=False)["module"]
    assert any("lora_B" in k and v.abs().max() > 0 for k, v in state.items())  # lora_B starts at zero

    from rlaif_jobs.models.resolve import resolve_model_uri

    base_dir = resolve_model_uri(tiny_model)
    from safetensors.torch import load_file

    base = load_file(str(next(Path(base_dir).glob("*.safetensors"))))
    for key, value in state.items():
        name = key.removeprefix("base_model.model.").replace(".base_layer.", ".")
        if "lora_" not in key and "score" not in key and name in base:
            assert torch.equal(value.float(), base[name].float()), key
    assert not (out / "model" / "adapter_config.json").exists()
    from rlaif_jobs.reward.scorer import RewardModelScorer  # what the policy stage loads

    scorer = RewardModelScorer(str(out / "model"))
    scores = scorer.score(["Question?", "Question?"], ["a good answer", "bad"])
    assert len(scores) == 2 and all(isinstance(s, float) for s in scores)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outputs"]["model"] == f"{out}/model"
