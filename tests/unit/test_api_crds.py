"""The generated CRDs: in sync with the models, structural, and valid Kubernetes objects."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from rlaif_operator.api import KINDS
from rlaif_operator.api.crdgen import build_crd, render_all

REPO = Path(__file__).resolve().parents[2]
CRD_FILES = sorted((REPO / "crds").glob("*.yaml"))


def test_regenerating_crds_gives_no_diff():
    rendered = render_all()
    on_disk = {p.name: p.read_text() for p in CRD_FILES}
    assert set(rendered) == set(on_disk), "crds/ has missing or extra files: run `rlaif crds`"
    for name, text in rendered.items():
        assert on_disk[name] == text, f"crds/{name} is stale: run `rlaif crds` and commit"


def _walk(node, path="schema"):
    yield path, node
    for key, sub in node.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_crd_schema_is_structural(kind):
    schema = build_crd(KINDS[kind])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "type" in node, f"{path} has no type"
        for banned in ("$ref", "anyOf", "allOf", "oneOf", "not", "$defs", "title"):
            assert banned not in node, f"{path} uses {banned}, which a structural schema forbids here"
        if node["type"] == "object" and not node.get("properties") and path not in ("schema.metadata",):
            assert node.get("additionalProperties") or node.get("x-kubernetes-preserve-unknown-fields"), (
                f"{path} is a free-form object without x-kubernetes-preserve-unknown-fields")


@pytest.mark.parametrize("path", CRD_FILES, ids=lambda p: p.name)
def test_crd_is_a_valid_kubernetes_object(path):
    kubernetes_validate.validate(yaml.safe_load(path.read_text()), "1.32.0", strict=True)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_crd_names_status_and_columns(kind):
    crd = build_crd(KINDS[kind])
    names = crd["spec"]["names"]
    version = crd["spec"]["versions"][0]
    assert names["categories"] == ["rlaif"]
    assert names["shortNames"]
    assert version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"]]
    assert columns[0] == "Phase" and columns[-1] == "Age"
    assert len(columns) >= 3, "a key metric column besides phase and age"
    spec_rules = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"]
    assert {"rule": "self == oldSelf", "message": "spec is immutable: create a new resource with a new name"} \
        in spec_rules
