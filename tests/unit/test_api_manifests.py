"""Every example is accepted and every invalid manifest is rejected naming its field, both by the API
models (as `rlaif run` and the operator read them) and by the CRD schema (as the API server would)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from rlaif_operator.api import KINDS, ManifestError, load_resources, parse_resource
from rlaif_operator.api.crdgen import build_crd
from rlaif_operator.api.crdschema import crd_schema, validate
from rlaif_operator.cli import main as cli_main

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
INVALID = sorted((REPO / "tests" / "data" / "invalid").glob("*.yaml"))


def _schema(kind: str) -> dict:
    return crd_schema(build_crd(KINDS[kind]))


def test_there_is_an_example_per_kind():
    kinds = {doc["kind"] for p in EXAMPLES for doc in yaml.safe_load_all(p.read_text()) if doc}
    assert kinds == set(KINDS)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path):
    resources = load_resources(path)
    assert resources
    for doc in yaml.safe_load_all(path.read_text()):
        assert validate(_schema(doc["kind"]), doc) == []


def _expectations(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"crd": [], "model": []}
    for m in re.finditer(r"^# expect-(crd|model): (.+)$", path.read_text(), re.M):
        found[m.group(1)].append(m.group(2).strip())
    return found


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_invalid_manifest_is_rejected_naming_the_field(path):
    expect = _expectations(path)
    assert expect["model"], f"{path.name} must say what the model rejects it with (# expect-model:)"
    doc = yaml.safe_load(path.read_text())
    with pytest.raises(ManifestError) as err:
        parse_resource(doc, path.name)
    for text in expect["model"]:
        assert any(text in line for line in err.value.problems), (text, err.value.problems)
    if expect["crd"]:
        errors = validate(_schema(doc["kind"]), doc)
        for text in expect["crd"]:
            assert any(text in e for e in errors), (text, errors)


def test_spec_is_immutable_but_status_may_change():
    doc = yaml.safe_load((REPO / "examples" / "reward-model-run.yaml").read_text())
    schema = _schema("RewardModelRun")
    changed = copy.deepcopy(doc)
    changed["spec"]["training"]["epochs"] = 3
    assert validate(schema, changed, old=doc) == [
        'spec: Invalid value: "object": spec is immutable: create a new resource with a new name']
    with_status = copy.deepcopy(doc)
    with_status["status"] = {"phase": "Running", "conditions": [{"type": "Running", "status": "True"}]}
    assert validate(schema, with_status, old=doc) == []


def test_cli_validate_reports_each_problem(capsys):
    assert cli_main(["validate", str(EXAMPLES[0])]) == 0
    assert cli_main(["validate", str(REPO / "tests/data/invalid/zero-stage-four.yaml")]) == 1
    out = capsys.readouterr().out
    assert "spec.training.deepspeed.zeroStage" in out


def test_unreadable_and_empty_manifest_files(tmp_path):
    with pytest.raises(ManifestError, match="cannot read the file"):
        load_resources(tmp_path / "missing.yaml")
    (tmp_path / "empty.yaml").write_text("---\n")
    with pytest.raises(ManifestError, match="holds no documents"):
        load_resources(tmp_path / "empty.yaml")
    (tmp_path / "broken.yaml").write_text("spec: [unclosed\n")
    with pytest.raises(ManifestError, match="not valid YAML"):
        load_resources(tmp_path / "broken.yaml")
