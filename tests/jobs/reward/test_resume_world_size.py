"""Resuming at another world size: a checkpoint written by two ranks (torchrun, ZeRO 2, the tiny Llama
reward model, on CPU; fp32 and bf16 training) loaded by one process, at ZeRO 0 (zeroStage unset on one
process) and at ZeRO 2.

The loaded engine holds exactly the fp32 master weights, Adam moments and learning rate the two ranks
had at the checkpoint (gathered there by DeepSpeed's safe_get_full_* into reference.pt); one more step
over the same global batch lands where the two-rank run that never stopped did; the resume is reported
in the metrics, the progress events and the summary fields (``resume_note``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from reward_helpers import LAUNCH_VARS, REPO, TORCHRUN, free_port, launch_env

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
import resume_world_helper as helper  # noqa: E402


@pytest.fixture(scope="module", params=["fp32", "bf16"])
def saved_by_two(request, tmp_path_factory, tiny_model):
    out = tmp_path_factory.mktemp(f"two-ranks-{request.param}")
    env = {**launch_env(), "PYTHONPATH": os.pathsep.join([str(REPO / "jobs"), str(HERE)])}
    proc = subprocess.run([TORCHRUN, "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port",
                           str(free_port()), str(HERE / "resume_world_helper.py"), str(out), request.param],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return out, request.param


@pytest.fixture(scope="module")
def world_of_one():
    from rlaif_jobs.train import init_distributed

    saved = {k: os.environ.pop(k, None) for k in LAUNCH_VARS}
    env = init_distributed()
    yield env
    import torch.distributed as tdist

    tdist.destroy_process_group()
    for k, v in saved.items():
        if v is not None:
            os.environ[k] = v


@pytest.mark.parametrize("zero_stage", [None, 2], ids=["zero0-auto", "zero2"])
def test_two_rank_checkpoint_resumes_on_one_process(saved_by_two, world_of_one, tmp_path, monkeypatch, zero_stage):
    from rlaif_jobs.config.training import TrainerSpec
    from rlaif_jobs.train import current_lr
    from rlaif_jobs.train.run import TrainingRun

    saved, precision = saved_by_two
    out = tmp_path / "out"
    shutil.copytree(saved / "checkpoints", out / "checkpoints")
    monkeypatch.setenv("RLAIF_PROGRESS_FILE", str(tmp_path / "progress.jsonl"))
    ref = torch.load(saved / "reference.pt", weights_only=False)

    engine = helper.make_engine(1, precision, seed=2, zero_stage=zero_stage)  # other initial weights
    assert engine.zero_optimization_stage() == (0 if zero_stage is None else 2)
    spec = TrainerSpec.model_validate({**helper.SPEC, "precision": precision, "checkpointEverySteps": 100})
    run = TrainingRun(out, spec, world_of_one, {"model": engine}, helper.TOTAL_STEPS, desc="reward")

    assert run.start == 2 and run.saved["epoch"] == 0
    assert run.resume_note == {"resumedFromWorldSize": 2, "checkpointResharded": "universal"}
    assert (out / "checkpoints" / "step-00000002" / "model.universal" / "CONVERTED").exists()
    got = helper.full_state(engine)
    assert sorted(got) == sorted(ref["at2"])
    for name, want in ref["at2"].items():
        for key in ("fp32", "exp_avg", "exp_avg_sq"):
            assert torch.equal(got[name][key].view(want[key].shape), want[key]), (name, key)
    assert current_lr(engine) == pytest.approx(ref["lr2"])
    assert engine.global_steps == 2

    helper.train_step(engine, 3, 0, 1)  # the same 4 examples as the two ranks' step 3, in 2 micro-batches
    after = helper.full_state(engine)
    moved = 0
    for name, want in ref["at3"].items():
        torch.testing.assert_close(after[name]["fp32"].view(want.shape), want, rtol=1e-4, atol=1e-6, msg=name)
        moved += not torch.equal(want, ref["at2"][name]["fp32"])
    assert moved > len(ref["at3"]) // 2  # the step changed the weights: the comparison could have failed

    run.metrics.close(summary={})
    events = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    resumed = [e for e in events if e.get("event") == "resumed"]
    assert resumed and resumed[0]["resumedFromWorldSize"] == 2
    phases = [json.loads(line) for line in (tmp_path / "progress.jsonl").read_text().splitlines()]
    assert [(p["phase"], p["done"], p["doing"]) for p in phases if p["phase"] == "resharding checkpoint"] == [
        ("resharding checkpoint", 0, "world size 2 -> 1"), ("resharding checkpoint", 1, "world size 2 -> 1")]
