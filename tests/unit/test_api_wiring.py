"""Pure wiring: pipeline expansion, upstream references and workload configs; the package layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rlaif_jobs.config import LabelConfig, PolicyConfig, RewardConfig
from rlaif_operator.api import load_resources
from rlaif_operator.builders.names import LABEL_PIPELINE
from rlaif_operator.builders.pipeline import expand_pipeline
from rlaif_operator.builders.workload import MissingInputError, upstream_ref, workload_config

REPO = Path(__file__).resolve().parents[2]


def test_pipeline_expands_into_three_wired_stages():
    (pipeline,) = load_resources(REPO / "examples" / "quickstart-pipeline.yaml")
    label, reward, policy = expand_pipeline(pipeline)
    assert [r.metadata.name for r in (label, reward, policy)] == [
        "quickstart-label", "quickstart-reward", "quickstart-policy"]
    assert all(r.metadata.labels[LABEL_PIPELINE] == "quickstart" for r in (label, reward, policy))
    assert upstream_ref(label) is None
    assert upstream_ref(reward) == ("PreferenceLabelJob", "quickstart-label", "labels")
    assert upstream_ref(policy) == ("RewardModelRun", "quickstart-reward", "model")


def test_workload_configs_carry_the_spec_and_the_upstream_uri():
    (pipeline,) = load_resources(REPO / "examples" / "quickstart-pipeline.yaml")
    label, reward, policy = expand_pipeline(pipeline)
    label_cfg = workload_config(label)
    assert isinstance(label_cfg, LabelConfig)
    assert label_cfg.labeler.model.uri == "builtin://qwen2.5-coder-1.5b-instruct"
    assert label_cfg.shard_index is None  # pods take JOB_COMPLETION_INDEX
    reward_cfg = workload_config(reward, "runs/quickstart/label/labels.jsonl")
    assert isinstance(reward_cfg, RewardConfig)
    assert reward_cfg.preferences_uri == "runs/quickstart/label/labels.jsonl"
    assert reward_cfg.training.learning_rate == 1e-4
    policy_cfg = workload_config(policy, "runs/quickstart/reward/model")
    assert isinstance(policy_cfg, PolicyConfig)
    assert policy_cfg.reward_model_uri == "runs/quickstart/reward/model"
    assert policy_cfg.rl.kl_coef == 0.05
    # The config survives its own wire format: what the operator's ConfigMap holds reloads identically.
    assert PolicyConfig.model_validate(policy_cfg.to_wire()) == policy_cfg


def test_a_stage_without_its_upstream_output_is_refused():
    (pipeline,) = load_resources(REPO / "examples" / "quickstart-pipeline.yaml")
    _, reward, _ = expand_pipeline(pipeline)
    with pytest.raises(MissingInputError, match="needs the 'labels' output of PreferenceLabelJob/quickstart-label"):
        workload_config(reward)


def test_d_rlaif_needs_no_upstream():
    (run,) = load_resources(REPO / "examples" / "d-rlaif-policy.yaml")
    assert upstream_ref(run) is None
    cfg = workload_config(run)
    assert cfg.direct_reward is not None and cfg.reward_model_uri is None


def test_stdlib_operator_module_is_not_shadowed():
    proc = subprocess.run([sys.executable, "-c", "import operator; operator.itemgetter"], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
