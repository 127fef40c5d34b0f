"""DPO on AI preference labels: the soft-label loss, the export to prompt/chosen/rejected, and the config
and API rules that make a PolicyRLRun with rl.algorithm dpo take a label job's labels instead of a reward."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from rlaif_jobs.config.policy import PolicyConfig
from rlaif_jobs.data import DatasetError
from rlaif_jobs.dpo_export import dpo_records, export_dpo
from rlaif_jobs.policy.dpo import soft_dpo_loss

# --- the loss ---------------------------------------------------------------------------------------


def test_soft_dpo_loss_equals_the_hand_computed_value():
    # pair 1: D = (-1 - -1.5) - (-2 - -1.5) = 1, beta 0.5 -> z = 0.5, p = 0.8:
    #   L = -(0.8 log sigmoid(0.5) + 0.2 log sigmoid(-0.5)) = 0.8 * 0.474077 + 0.2 * 0.974077 = 0.574077
    # pair 2: D = 0, p = 0.5 (a tie): L = log 2 = 0.693147.  Mean: 0.633612
    pol_a = torch.tensor([-1.0, -3.0], requires_grad=True)
    pol_b = torch.tensor([-2.0, -4.0], requires_grad=True)
    ref_a, ref_b = torch.tensor([-1.5, -3.5]), torch.tensor([-1.5, -4.5])
    loss, delta = soft_dpo_loss(pol_a, pol_b, ref_a, ref_b, torch.tensor([0.8, 0.5]), beta=0.5)
    assert delta.tolist() == pytest.approx([1.0, 0.0])
    assert float(loss.detach()) == pytest.approx(0.633612, abs=1e-6)
    loss.backward()
    # dL/dD = beta * (sigmoid(beta D) - p), halved by the mean over two pairs
    assert pol_a.grad is not None and pol_b.grad is not None
    g1 = 0.5 * (1 / (1 + math.exp(-0.5)) - 0.8) / 2
    assert pol_a.grad.tolist() == pytest.approx([g1, 0.0], abs=1e-6)
    assert pol_b.grad.tolist() == pytest.approx([-g1, 0.0], abs=1e-6)


def test_hard_labels_give_standard_dpo_and_the_minimum_is_at_the_label():
    """p = 1 is DPO's -log sigmoid(beta D); with a soft p the loss is lowest where sigmoid(beta D) = p."""
    d = torch.linspace(-10, 10, 2001)
    zeros = torch.zeros_like(d)
    hard, _ = soft_dpo_loss(d, zeros, zeros, zeros, torch.tensor(1.0), 0.1)
    assert float(hard) == pytest.approx(float((-torch.nn.functional.logsigmoid(0.1 * d)).mean()), rel=1e-6)
    per = [float(soft_dpo_loss(x.view(1), zeros[:1], zeros[:1], zeros[:1], torch.tensor([0.8]), 0.5)[0]) for x in d]
    best = float(d[min(range(len(per)), key=per.__getitem__)])
    assert best == pytest.approx(math.log(0.8 / 0.2) / 0.5, abs=0.02)  # logit(p) / beta


# --- the export ---------------------------------------------------------------------------------------

LABELS = [
    {"id": "1", "task": "helpful", "context": "Q1", "responseA": "good", "responseB": "bad", "pA": 0.9},
    {"id": "2", "context": "Q2", "responseA": "worse", "responseB": "better", "pA": 0.3},
    {"id": "3", "context": "Q3", "responseA": "x", "responseB": "y", "pA": 0.5},  # a tie: dropped
    {"id": "4", "context": "Q4", "responseA": "meh", "responseB": "meh too", "pA": 0.55},
]


def _labels_file(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_export_orients_pairs_by_the_label_and_drops_ties(tmp_path):
    out = tmp_path / "out" / "dpo.jsonl"
    counts = export_dpo(str(_labels_file(tmp_path, LABELS)), str(out))
    assert counts == {"pairs": 3, "ties": 1, "belowConfidence": 0, "total": 4}
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows[0] == {"id": "1", "prompt": "Q1", "chosen": "good", "rejected": "bad", "chosenProbability": 0.9,
                       "task": "helpful"}
    assert (rows[1]["chosen"], rows[1]["rejected"]) == ("better", "worse")
    assert rows[1]["chosenProbability"] == pytest.approx(0.7)
    assert [r["id"] for r in rows] == ["1", "2", "4"]
    assert not list(out.parent.glob(".*"))  # written atomically: no temporary left


def test_export_min_confidence_and_bad_labels(tmp_path):
    records, counts = dpo_records(LABELS, min_confidence=0.6)
    assert [r["id"] for r in records] == ["1", "2"] and counts["belowConfidence"] == 1 and counts["ties"] == 1
    with pytest.raises(ValueError, match="min_confidence"):
        dpo_records(LABELS, min_confidence=0.4)
    bad = _labels_file(tmp_path, [{**LABELS[0], "pA": 1.5}])
    with pytest.raises(DatasetError, match="pA must be a probability"):
        export_dpo(str(bad), str(tmp_path / "x.jsonl"))
    missing = _labels_file(tmp_path, [{"id": "1", "context": "Q", "responseA": "a", "responseB": "b"}])
    with pytest.raises(DatasetError, match="missing field 'pA'"):
        export_dpo(str(missing), str(tmp_path / "x.jsonl"))


def test_the_cli_exports_and_says_what_it_left_out(tmp_path, capsys):
    from rlaif_operator.cli import main

    out = tmp_path / "dpo.jsonl"
    assert main(["export", "dpo", str(_labels_file(tmp_path, LABELS)), str(out), "--min-confidence", "0.6"]) == 0
    assert len(out.read_text().splitlines()) == 2
    said = capsys.readouterr().out
    assert "2 of 4 pairs" in said and "1 ties" in said and "1 below --min-confidence 0.6" in said
    assert main(["export", "dpo", str(tmp_path / "nowhere.jsonl"), str(out)]) == 3
    assert main(["export", "dpo", str(_labels_file(tmp_path, LABELS)), str(out), "--min-confidence", "2"]) == 3


# --- the workload config ------------------------------------------------------------------------------

BASE = {"policy": {"uri": "builtin://tiny-random-llama"}, "prompts": {"uri": "builtin://datasets/checkable-prompts"},
        "evaluation": {"enabled": False}, "output": {"uri": "/tmp/x"}}


def test_policy_config_dpo_rules():
    cfg = PolicyConfig.model_validate({**BASE, "rl": {"algorithm": "dpo"}, "preferencesUri": "l.jsonl"})
    assert cfg.rl.dpo_beta == 0.1 and cfg.preferences_uri == "l.jsonl"
    with pytest.raises(ValidationError, match="preferencesUri: rl.algorithm dpo trains on preference labels"):
        PolicyConfig.model_validate({**BASE, "rl": {"algorithm": "dpo"}})
    with pytest.raises(ValidationError, match="rewardModelUri, directReward, oracleReward: rl.algorithm dpo"):
        PolicyConfig.model_validate({**BASE, "rl": {"algorithm": "dpo"}, "preferencesUri": "l.jsonl",
                                     "rewardModelUri": "rm"})
    with pytest.raises(ValidationError, match="preferencesUri: only rl.algorithm dpo trains on preferences"):
        PolicyConfig.model_validate({**BASE, "preferencesUri": "l.jsonl", "rewardModelUri": "rm"})
    with pytest.raises(ValidationError, match="dpoBeta"):
        PolicyConfig.model_validate({**BASE, "rl": {"algorithm": "dpo", "dpoBeta": 0}, "preferencesUri": "l"})


# --- the API: resources, CRD rules, chaining -----------------------------------------------------------

JUDGE = {"model": {"uri": "builtin://tiny-random-llama"}, "engine": "transformers"}


def _run(**spec: object) -> dict:
    return {"apiVersion": "rlaif.dev/v1alpha1", "kind": "PolicyRLRun", "metadata": {"name": "d"},
            "spec": {"policy": {"uri": "builtin://tiny-random-llama"},
                     "prompts": {"uri": "builtin://datasets/checkable-prompts"},
                     "evaluation": {"judge": JUDGE}, "output": {"uri": "/tmp/d"}, **spec}}


def _problems(tmp_path: Path, doc: dict) -> list[str]:
    """Both checks `rlaif validate` makes: the CRD schema (CEL rules included) and the API models."""
    import yaml

    from rlaif_operator.cli import validate_file

    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(doc))
    return validate_file(str(path))


@pytest.mark.parametrize(("spec", "needle"), [
    ({"rl": {"algorithm": "dpo"}}, "with rl.algorithm dpo, spec.preferences"),
    ({"rl": {"algorithm": "dpo"}, "preferences": {"uri": "l.jsonl"}, "reward": {"modelUri": "rm"}},
     "reward: rl.algorithm dpo trains on preference labels, not against a reward"),
    ({"preferences": {"uri": "l.jsonl"}, "reward": {"modelUri": "rm"}},
     "preferences: only rl.algorithm dpo trains on preferences"),
    ({}, "spec.reward is required for a standalone PolicyRLRun"),
])
def test_a_dpo_run_names_the_field_and_the_fix(tmp_path, spec, needle):
    problems = _problems(tmp_path, _run(**spec))
    assert problems, spec
    # the CRD's CEL rule (what the API server says) and the operator's model both say it
    assert sum(needle in p for p in problems) >= 2, problems


def test_a_dpo_run_waits_for_its_label_job_and_gets_its_labels(tmp_path):
    from rlaif_operator.api import parse_resource
    from rlaif_operator.builders.workload import MissingInputError, upstream_ref, workload_config
    from rlaif_operator.cache import upstream_key

    doc = _run(rl={"algorithm": "dpo"}, preferences={"fromLabelJob": "my-labels"})
    assert _problems(tmp_path, doc) == []
    run = parse_resource(doc, "test")
    assert upstream_ref(run) == ("PreferenceLabelJob", "my-labels", "labels")
    assert upstream_key(doc) == ("PreferenceLabelJob", None, "my-labels")
    with pytest.raises(MissingInputError, match="needs the 'labels' output of PreferenceLabelJob/my-labels"):
        workload_config(run)
    cfg = workload_config(run, "/out/label/labels.jsonl")
    assert isinstance(cfg, PolicyConfig) and cfg.preferences_uri == "/out/label/labels.jsonl"
    assert cfg.reward_model_uri is None and cfg.direct_reward is None and cfg.oracle_reward is None
    assert PolicyConfig.model_validate(cfg.to_wire()) == cfg
    by_uri = parse_resource(_run(rl={"algorithm": "dpo"}, preferences={"uri": "/l.jsonl"}), "test")
    assert upstream_ref(by_uri) is None and workload_config(by_uri).preferences_uri == "/l.jsonl"


def test_a_pipeline_wires_its_labeling_stage_into_a_dpo_policy(tmp_path):
    from rlaif_operator.api import load_resources
    from rlaif_operator.builders.pipeline import expand_pipeline
    from rlaif_operator.builders.workload import upstream_ref

    repo = Path(__file__).resolve().parents[2]
    doc = (repo / "tests/data/local/tiny-pipeline.yaml").read_text().replace("OUT/", f"{tmp_path}/")
    doc = doc.replace("algorithm: reinforce", "algorithm: dpo")
    head, _, tail = doc.partition("  rewardModel:")
    manifest = tmp_path / "p.yaml"
    manifest.write_text(head + "  policy:" + tail.partition("  policy:")[2])  # no reward model stage
    (pipeline,) = load_resources(manifest)
    label, policy = expand_pipeline(pipeline)
    assert upstream_ref(policy) == ("PreferenceLabelJob", label.metadata.name, "labels")
    assert policy.spec.reward is None and policy.spec.evaluation.judge is not None  # the labeler judges
    # dpo without a labeling stage and without preferences is refused, naming the field
    bare = manifest.read_text().partition("  labeling:")[0] + "  policy:" + manifest.read_text().partition(
        "  policy:")[2]
    manifest.write_text(bare.replace("evaluation: {numPrompts: 3}", "evaluation: {enabled: false}"))
    from rlaif_operator.cli import validate_file

    problems = validate_file(str(manifest))
    assert sum("policy.preferences: rl.algorithm dpo trains on preference labels" in p for p in problems) >= 2, problems
