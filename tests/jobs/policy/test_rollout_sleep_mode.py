"""vLLM sleep mode (rollout.sleepMode) where CUDA is missing: ``on`` is refused before anything loads,
with a ConfigError naming the field (exit 3); ``auto`` runs with sleep mode off and the summary says so
(``rollout.sleepMode: "off (cpu)"``). The CUDA path (sleep before the update, wake before the sync) runs
in scripts/gpu-check.sh.
"""

from __future__ import annotations

import json

import pytest
import torch
from policy_helpers import policy_config, run_programmatic, steps, write_config

from rlaif_jobs.errors import EXIT_CONFIG_ERROR, ConfigError
from rlaif_jobs.policy.rollout_vllm import resolve_sleep_mode

cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the behaviour without CUDA")


def test_sleep_mode_resolution():
    assert resolve_sleep_mode("auto", on_cuda=True) == (True, "on (auto: cuda)")
    assert resolve_sleep_mode("on", on_cuda=True) == (True, "on")
    assert resolve_sleep_mode("auto", on_cuda=False) == (False, "off (cpu)")
    assert resolve_sleep_mode("off", on_cuda=True) == (False, "off")
    assert resolve_sleep_mode("off", on_cuda=False) == (False, "off")
    with pytest.raises(ConfigError, match=r"rollout\.sleepMode: on needs CUDA"):
        resolve_sleep_mode("on", on_cuda=False)


def test_sleep_mode_field_is_validated():
    from pydantic import ValidationError

    from rlaif_jobs.config.policy import RolloutSpec

    assert RolloutSpec().sleep_mode == "auto"
    assert RolloutSpec.model_validate({"sleepMode": "on"}).sleep_mode == "on"
    with pytest.raises(ValidationError, match="sleepMode"):
        RolloutSpec.model_validate({"sleepMode": "always"})


@cpu_only
def test_sleep_mode_on_without_cuda_is_refused_before_loading(tiny_sft_policy, tmp_path, capsys):
    from rlaif_jobs.policy.__main__ import cli

    out = tmp_path / "run"
    cfg = policy_config(tiny_sft_policy, out, rollout={"engine": "vllm", "sleepMode": "on"})
    assert cli(["--config", str(write_config(tmp_path / "cfg.json", cfg))]) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert "rollout.sleepMode: on needs CUDA" in err and "Traceback" not in err
    assert not (out / "checkpoints").exists()


@cpu_only
def test_sleep_mode_auto_is_off_on_cpu_and_the_summary_says_so(tiny_sft_policy, tmp_path):
    out = tmp_path / "run"
    cfg = policy_config(tiny_sft_policy, out, rl={"algorithm": "rloo", "maxSteps": 2, "batchSize": 8,
                                                  "microBatchSize": 8, "deepspeed": {"zeroStage": 0}},
                        rollout={"engine": "vllm"})  # sleepMode unset: auto
    proc = run_programmatic(write_config(tmp_path / "cfg.json", cfg), "blue", tmp_path / "log.txt")
    assert proc.returncode == 0, proc.stdout[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rolloutEngine"] == "vllm", "vLLM did not run: " + proc.stdout[-2000:]
    assert summary["rollout"] == {"sleepMode": "off (cpu)"}
    assert all(r["syncSeconds"] > 0 for r in steps(out))
