"""Each bad input stops the reward workload before training, with exit code 3 and a message naming the field.

Most cases run the real entrypoint in this process (``cli`` is what ``python -m rlaif_jobs.reward``
runs); two run as real processes: plain python, and torchrun with two ranks for a batch size the world
size cannot divide.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from reward_helpers import REPO, launch_env, learnable_pairs, torchrun_cmd, write_jsonl

from rlaif_jobs.reward.__main__ import cli


def make_config(tmp: Path, model: str, labels: Path | str, **training) -> Path:
    cfg = {"baseModel": {"uri": model}, "preferencesUri": str(labels),
           "training": {"batchSize": 8, "microBatchSize": 4, "epochs": 1, "maxLength": 64, "precision": "fp32",
                        **training},
           "output": {"uri": str(tmp / "out")}}
    path = tmp / "reward.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def good_labels(tmp: Path, n: int = 40) -> Path:
    return write_jsonl(tmp / "labels.jsonl", learnable_pairs(n))


def labels_with_p(tmp: Path, p: float) -> Path:
    records = learnable_pairs(40)
    records[17]["pA"] = p
    return write_jsonl(tmp / "labels.jsonl", records)


def not_a_model(tmp: Path) -> str:
    folder = tmp / "broken-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    return str(folder)


CASES = {
    "missing preferences file": (
        lambda tmp, model: make_config(tmp, model, tmp / "nowhere.jsonl"),
        r"preferencesUri: no such file '.*nowhere\.jsonl'"),
    "empty preferences file": (
        lambda tmp, model: make_config(tmp, model, write_jsonl(tmp / "empty.jsonl", [])),
        r"preferencesUri: '.*empty\.jsonl' is empty"),
    "p above 1": (
        lambda tmp, model: make_config(tmp, model, labels_with_p(tmp, 1.5)),
        r"preferencesUri: .*record 18 \(id pair-0-17\): pA must be a probability in \[0, 1\], got 1\.5"),
    "p below 0": (
        lambda tmp, model: make_config(tmp, model, labels_with_p(tmp, -0.01)),
        r"preferencesUri: .*record 18 .*pA must be a probability in \[0, 1\], got -0\.01"),
    "base model folder missing": (
        lambda tmp, model: make_config(tmp, str(tmp / "no-model"), good_labels(tmp)),
        r"baseModel\.uri: cannot load '.*no-model'"),
    "base model not loadable": (
        lambda tmp, model: make_config(tmp, not_a_model(tmp), good_labels(tmp)),
        r"baseModel\.uri: cannot load '.*broken-model' \(.*no-such-architecture"),
    "unknown builtin model": (
        lambda tmp, model: make_config(tmp, "builtin://no-such-model", good_labels(tmp)),
        r"baseModel\.uri: cannot load 'builtin://no-such-model' \(unknown builtin model"),
    "micro-batch not dividing the per-rank batch": (
        lambda tmp, model: make_config(tmp, model, good_labels(tmp), batchSize=6, microBatchSize=4),
        r"training\.microBatchSize: 4 does not divide the per-rank batch 6"),
    "fewer pairs than one batch": (
        lambda tmp, model: make_config(tmp, model, good_labels(tmp, n=10), batchSize=16),
        r"training\.batchSize: 16 is more than the 9 training pairs"),
    "packing required on an encoder": (
        lambda tmp, model: make_config(tmp, "builtin://minilm-l6-v2", good_labels(tmp), packing=True),
        r"training\.packing: true, but this base model cannot be packed \(BertForSequenceClassification does not"
        r" read its score from the last token"),
    "unknown config field": (
        lambda tmp, model: make_config(tmp, model, good_labels(tmp), learningrate=1e-4),
        r"--config .*reward\.yaml:\n  training\.learningrate: unknown field"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_before_training_with_exit_code_3(case, tmp_path, tiny_model, capsys):
    build, message = CASES[case]
    config = build(tmp_path, tiny_model)
    assert cli(["--config", str(config)]) == 3
    err = capsys.readouterr().err
    assert re.search("^error: " + message, err, re.MULTILINE), err
    out = tmp_path / "out"
    assert not (out / "checkpoints").exists() and not (out / "model").exists() and not (out / "metrics.jsonl").exists()


def test_batch_the_world_size_cannot_divide(tmp_path, tiny_model, capsys, monkeypatch):
    # What torchrun tells each rank: a world of 2. Checked before joining any process group.
    monkeypatch.setenv("WORLD_SIZE", "2")
    config = make_config(tmp_path, tiny_model, good_labels(tmp_path), batchSize=5)
    assert cli(["--config", str(config)]) == 3
    assert "training.batchSize: 5 is not divisible by the world size 2" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_real_process_exits_3(tmp_path, tiny_model):
    config = make_config(tmp_path, tiny_model, labels_with_p(tmp_path, 2.0))
    proc = subprocess.run([sys.executable, "-m", "rlaif_jobs.reward", "--config", str(config)], cwd=REPO,
                          env=launch_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert "pA must be a probability in [0, 1], got 2.0" in proc.stderr


@pytest.mark.slow
def test_two_ranks_under_torchrun_refuse_an_indivisible_batch(tmp_path, tiny_model):
    config = make_config(tmp_path, tiny_model, good_labels(tmp_path), batchSize=7)
    proc = subprocess.run(torchrun_cmd(config, nproc=2), cwd=REPO, env=launch_env(), capture_output=True,
                          text=True, timeout=120)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0
    # the first rank to get there says why and exits 3; torchrun stops the other and reports the code
    assert "error: training.batchSize: 7 is not divisible by the world size 2" in text, text[-3000:]
    assert "exitcode  : 3" in text, text[-3000:]
    assert not (tmp_path / "out").exists()
