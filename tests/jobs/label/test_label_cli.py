"""The command line: bad input gives one clear error and exit code 3; a killed run resumes cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from label_helpers import SMOLLM2, pairs, read_jsonl, write_jsonl

from rlaif_jobs.label.__main__ import cli

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]


def _config_file(tmp_path: Path, dataset: str, engine: str = "transformers", model: str = SMOLLM2,
                 **extra) -> str:
    cfg = {"labeler": {"model": {"uri": model, "dtype": "float32"}, "engine": engine, "batchSize": 2},
           "dataset": {"uri": dataset}, "output": {"uri": str(tmp_path / "out")}, **extra}
    path = tmp_path / "label.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


def _run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = cli(args)
    return code, capsys.readouterr().err


def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


def test_missing_field_names_field_and_line_in_a_real_process(tmp_path):
    rows = pairs(3)
    del rows[1]["responseB"]
    cfg = _config_file(tmp_path, write_jsonl(tmp_path / "d.jsonl", rows))
    proc = subprocess.run([sys.executable, "-m", "rlaif_jobs.label", "--config", cfg], capture_output=True,
                          text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 3, proc.stderr
    (line,) = _error_lines(proc.stderr)
    assert "line 2" in line and "missing field 'responseB'" in line
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("case", ["empty", "unreadable", "not-json", "no-such-model", "broken-model",
                                  "duplicate-id", "bad-config"])
def test_bad_input_is_one_clear_error(case, tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", pairs(2))
    model = SMOLLM2
    extra: dict = {}
    if case == "empty":
        data = str(tmp_path / "empty.jsonl")
        Path(data).write_text("\n")
        expected = "holds no records"
    elif case == "unreadable":
        data = str(tmp_path / "folder.jsonl")
        Path(data).mkdir()
        expected = "cannot read it"
    elif case == "not-json":
        Path(data).write_text('{"id": 1}\n{oops\n')
        expected = "line 2: not valid JSON"
    elif case == "no-such-model":
        model = str(tmp_path / "no-such-model")
        expected = "labeler model .*no-such-model: cannot load it"
    elif case == "broken-model":
        folder = tmp_path / "broken"
        folder.mkdir()
        (folder / "config.json").write_text('{"model_type": "llama", "hidden_size": "big"}')
        model = str(folder)
        expected = "labeler model .*broken: cannot load its tokenizer"
    elif case == "duplicate-id":
        rows = pairs(2)
        rows[1]["id"] = rows[0]["id"]
        data = write_jsonl(tmp_path / "dup.jsonl", rows)
        expected = "appears twice"
    else:
        extra = {"numShards": 2, "shardIndex": 2}
        expected = "shardIndex 2 must be below numShards 2"
    code, err = _run_cli(["--config", _config_file(tmp_path, data, model=model, **extra)], capsys)
    assert code == 3, err
    assert "Traceback" not in err
    import re

    assert re.search(expected, err), err
    assert not (tmp_path / "out" / "labels.jsonl").exists()


def test_merge_before_shards_finish_says_which(tmp_path, capsys):
    cfg = _config_file(tmp_path, write_jsonl(tmp_path / "d.jsonl", pairs(2)), numShards=2)
    code, err = _run_cli(["--config", cfg, "--merge"], capsys)
    assert code == 1 and "2 of 2 shards have not finished (shard 0, 1)" in err


def _all_files_parse(root: Path) -> list[Path]:
    """Every visible file under root is complete JSON/JSONL; returns the hidden temporaries found."""
    hidden = []
    for path in root.rglob("*"):
        if path.is_dir():
            continue
        if path.name.startswith("."):
            hidden.append(path)
        elif path.suffix == ".jsonl":
            read_jsonl(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
    return hidden


def test_resume_after_kill_has_no_duplicates_and_no_corrupt_file(tmp_path):
    """A real `python -m rlaif_jobs.label` process, SIGKILLed mid-run, then run again.

    The labeler is the 2-layer random Llama with SmolLM2's tokenizer on the transformers engine: what is
    tested is the output mechanics, and a subprocess cannot share the session's vLLM engine."""
    n = 48  # many chunks: the kill lands mid-run even on a quiet machine, where the tiny model is fast
    rows = pairs(n)
    cfg = _config_file(tmp_path, write_jsonl(tmp_path / "d.jsonl", rows), model="builtin://tiny-random-llama")
    parts = tmp_path / "out" / "shards" / "labels-00000-of-00001.parts"
    cmd = [sys.executable, "-m", "rlaif_jobs.label", "--config", cfg]
    first = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while len(list(parts.glob("chunk-*.jsonl"))) < 2:
            assert first.poll() is None, f"the run ended before it could be killed: {first.stderr.read()}"
            assert time.monotonic() < deadline, "no chunk written in time"
            time.sleep(0.2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # mid-run: more chunks are on the way
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    _all_files_parse(tmp_path / "out")
    assert not (tmp_path / "out" / "labels.jsonl").exists() and not (tmp_path / "out" / "summary.json").exists()
    before = {}
    for chunk in sorted(parts.glob("chunk-*.jsonl")):
        for entry in read_jsonl(chunk)[:-1]:
            before[entry["record"]["id"]] = entry["record"]
    # Usually mid-run; if every chunk was written before the kill landed, the resume still must merge
    # without relabeling or duplicating anything.
    assert 4 <= len(before) <= n

    second = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"{len(before)} already written, {n - len(before)} to label" in second.stderr
    labels = read_jsonl(tmp_path / "out" / "labels.jsonl")
    assert [r["id"] for r in labels] == [r["id"] for r in rows]  # each once, in dataset order
    for r in labels:
        if r["id"] in before:
            assert r == before[r["id"]]  # carried over from the killed run, not relabeled
        assert 0 <= r["pA"] <= 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metrics"]["labeled"] == n and summary["outputs"]["labels"].endswith("labels.jsonl")
    assert not parts.exists()
    assert _all_files_parse(tmp_path / "out") == []
