"""The Helm chart, rendered by the real Helm engine (helm-python-sdk): valid Kubernetes objects, CRDs
in step with crds/, values mapped one to one onto the operator's settings, values.schema.json enforced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml
from pydantic.alias_generators import to_camel

from rlaif_operator.settings import OperatorSettings

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "rlaif-operator"
NOT_CHART_VALUES = {"liveness_endpoint", "leader_election_namespace"}  # from health.port / the release namespace


def render(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rendered = helm_python.Chart.load(CHART).render(values=values or {}, name="rlaif", namespace="rlaif-system")
    return [doc for text in rendered.values() for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_every_rendered_object_is_valid_kubernetes() -> None:
    docs = render()
    assert {d["kind"] for d in docs} == {"CustomResourceDefinition", "Deployment", "ClusterRole",
                                         "ClusterRoleBinding", "ServiceAccount", "Service", "Role", "RoleBinding"}
    for doc in docs:
        kubernetes_validate.validate(doc, "1.32.0", strict=True)


def test_chart_crds_are_the_generated_ones() -> None:
    rendered = {d["metadata"]["name"]: d for d in by_kind(render(), "CustomResourceDefinition")}
    assert len(rendered) == 4
    for path in sorted((REPO / "crds").glob("*.yaml")):
        source = yaml.safe_load(path.read_text())
        crd = rendered[source["metadata"]["name"]]
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
        crd["metadata"].pop("annotations")
        assert crd == source, "the chart must install the generated CRDs exactly"
    # files/crds is a link to crds/: the chart can never ship stale CRDs.
    assert (CHART / "files" / "crds").resolve() == (REPO / "crds").resolve()


def test_crds_can_be_left_out() -> None:
    docs = render({"crds": {"enabled": False}})
    assert by_kind(docs, "CustomResourceDefinition") == []
    assert by_kind(docs, "Deployment")


def test_values_map_one_to_one_onto_operator_settings() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())["operator"]
    fields = set(OperatorSettings.model_fields) - NOT_CHART_VALUES
    assert set(values) == {to_camel(f) for f in fields}
    custom = {"maxGpusPerNode": 8, "namespaces": ["team-a", "team-b"], "logLevel": "DEBUG", "recheckSeconds": 5,
              "defaultServiceAccount": "workloads"}
    deployment = by_kind(render({"operator": custom}), "Deployment")[0]
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert set(env) == {f"RLAIF_{f.upper()}" for f in fields | NOT_CHART_VALUES}
    settings = OperatorSettings(**{k.removeprefix("RLAIF_").lower(): (json.loads(v) if k == "RLAIF_NAMESPACES" else v)
                                   for k, v in env.items()})
    assert settings.max_gpus_per_node == 8 and settings.namespaces == ["team-a", "team-b"]
    assert settings.log_level == "DEBUG" and settings.recheck_seconds == 5
    assert settings.default_service_account == "workloads"
    assert settings.liveness_endpoint == "http://0.0.0.0:8080/healthz"
    assert settings.leader_election and settings.leader_election_namespace == "rlaif-system"


def test_two_replicas_elect_a_leader_on_a_lease() -> None:
    """replicas: 2 renders with leader election and the Role its Lease calls need (get, create, update)."""
    docs = render({"replicaCount": 2})
    deployment = by_kind(docs, "Deployment")[0]
    assert deployment["spec"]["replicas"] == 2 and deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    (role,) = by_kind(docs, "Role")
    assert role["metadata"]["namespace"] == "rlaif-system"
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["get", "create", "update"]}]
    (binding,) = by_kind(docs, "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    single = render({"operator": {"leaderElection": False}})
    assert by_kind(single, "Role") == [] and by_kind(single, "Deployment")[0]["spec"]["strategy"]["type"] == "Recreate"


def test_every_setting_is_described() -> None:
    for name, field in OperatorSettings.model_fields.items():
        assert field.description and len(field.description) > 10, name


@pytest.mark.parametrize("values", [
    {"replicaCount": 2, "operator": {"leaderElection": False}},
    {"operator": {"logLevel": "LOUD"}},
    {"operator": {"masterPort": 0}},
    {"operator": {"recheckSecond": 5}},
    {"crds": {"enabled": "yes"}},
], ids=["two-replicas-without-leader-election", "bad-log-level", "port-zero", "typo", "string-for-bool"])
def test_values_schema_rejects_bad_values(values: dict[str, Any]) -> None:
    with pytest.raises(helm_python.HelmError):
        render(values)


def test_rbac_grants_what_the_operator_does() -> None:
    rules = by_kind(render(), "ClusterRole")[0]["rules"]

    def allowed(group: str, resource: str, verb: str) -> bool:
        return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)

    for plural in ("preferencelabeljobs", "rewardmodelruns", "policyrlruns", "rlaifpipelines"):
        assert allowed("rlaif.dev", plural, "watch") and allowed("rlaif.dev", plural, "create")
        assert allowed("rlaif.dev", f"{plural}/status", "patch")
    assert allowed("batch", "jobs", "create") and allowed("batch", "jobs", "watch")
    for resource, verb in (("configmaps", "create"), ("services", "create"), ("pods", "list"), ("secrets", "get"),
                           ("events", "create")):
        assert allowed("", resource, verb), resource
    assert not allowed("", "secrets", "list"), "reading one named Secret is enough"


def test_helm_lint_is_clean() -> None:
    report = helm_python.lint(CHART, strict=False)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []
