"""The Helm chart, rendered by the real Helm engine (helm-python-sdk) with the default values and with a
non-default set: valid Kubernetes objects, lint clean, CRDs in step with crds/, values mapped one to one
onto the operator's settings, values.schema.json enforced (the restricted securityContext included),
RBAC by watch mode (tests/integration/test_rbac_audit.py checks the rules against the real calls)."""

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
DIGEST = "sha256:" + "0123456789abcdef" * 4
# Every optional part on, RBAC per namespace, guardrails set.
NON_DEFAULT: dict[str, Any] = {
    "image": {"digest": DIGEST, "tag": "0.1.0"},
    "crds": {"keep": False},
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/rlaif"}},
    "operator": {"namespaces": ["team-a", "team-b"], "allowedImagePrefixes": ["ghcr.io/rlaif/", "registry.local/ml/"],
                 "allowedServiceAccounts": ["rlaif-workload"], "defaultServiceAccount": "rlaif-workload",
                 "maxGpusPerNode": 8, "labelerImage": f"ghcr.io/rlaif/labeler:0.1.0@{DIGEST}"},
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
                "grafanaDashboard": {"enabled": True, "namespace": "monitoring",
                                     "annotations": {"grafana_folder": "rlaif"}}},
    "networkPolicy": {"enabled": True, "metricsFrom": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]},
    "podSecurityContext": {"runAsNonRoot": True, "runAsUser": 20000, "fsGroup": 20000,
                           "seccompProfile": {"type": "RuntimeDefault"}},
    "nodeSelector": {"kubernetes.io/os": "linux"},
}
VALUE_SETS = {"default": {}, "non-default": NON_DEFAULT}


def render(values: dict[str, Any] | None = None, chart: Path = CHART) -> list[dict[str, Any]]:
    rendered = helm_python.Chart.load(chart).render(values=values or {}, name="rlaif", namespace="rlaif-system")
    return [doc for path, text in rendered.items() if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


def notes(values: dict[str, Any] | None = None) -> str:
    rendered = helm_python.Chart.load(CHART).render(values=values or {}, name="rlaif", namespace="rlaif-system")
    return next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_rendered_object_is_valid_kubernetes(name: str) -> None:
    docs = render(VALUE_SETS[name])
    # ClusterRole: the tenants' aggregated roles, in every mode (rbac.tenantRoles)
    kinds = {"CustomResourceDefinition", "Deployment", "ServiceAccount", "Service", "Role", "RoleBinding",
             "ClusterRole"}
    kinds |= {"ClusterRoleBinding"} if name == "default" else {"ServiceMonitor", "NetworkPolicy", "ConfigMap"}
    assert {d["kind"] for d in docs} == kinds
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":  # prometheus-operator's kind: not in the Kubernetes schemas
            assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["spec"]["endpoints"][0]["port"] == "metrics"
            continue
        kubernetes_validate.validate(doc, "1.32.0", strict=True)


@pytest.mark.parametrize("name", VALUE_SETS)
def test_helm_lint_is_clean(name: str) -> None:
    report = helm_python.lint(CHART, VALUE_SETS[name], strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_operator_pod_is_restricted_probed_and_pinned() -> None:
    spec = by_kind(render(NON_DEFAULT), "Deployment")[0]["spec"]["template"]["spec"]
    container = spec["containers"][0]
    assert container["image"] == f"ghcr.io/rlaif/operator:0.1.0@{DIGEST}"
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    default = by_kind(render(), "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
    assert default["image"] == "ghcr.io/rlaif/operator:0.1.0"  # the chart's appVersion


@pytest.mark.parametrize("name", VALUE_SETS)
def test_operator_pod_passes_pod_security_restricted(name: str) -> None:
    from testapi.admission import violations  # the test API server's Pod Security admission

    spec = by_kind(render(VALUE_SETS[name]), "Deployment")[0]["spec"]["template"]["spec"]
    assert violations(spec, "restricted") == []


def test_pod_disruption_budget_only_with_several_replicas() -> None:
    assert by_kind(render(), "PodDisruptionBudget") == []
    pdb = by_kind(render({"replicaCount": 2}), "PodDisruptionBudget")
    assert len(pdb) == 1 and pdb[0]["spec"]["maxUnavailable"] == 1
    kubernetes_validate.validate(pdb[0], "1.32.0", strict=True)


def test_operator_network_policy_admits_only_the_named_scrapers() -> None:
    policy = by_kind(render(NON_DEFAULT), "NetworkPolicy")[0]["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    health, metrics = policy["ingress"]
    assert health == {"ports": [{"port": "health", "protocol": "TCP"}]}
    assert metrics["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert metrics["from"] == NON_DEFAULT["networkPolicy"]["metricsFrom"]


def test_a_service_monitor_without_its_service_is_an_error() -> None:
    with pytest.raises(helm_python.HelmError, match="metrics.serviceMonitor.enabled needs metrics.service.enabled"):
        render({"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}})


def test_notes_say_how_to_start_and_what_is_watched() -> None:
    text = notes()
    assert "kubectl apply -f examples/quickstart-pipeline.yaml" in text and "every namespace" in text
    text = notes(NON_DEFAULT)
    assert "team-a, team-b only" in text and "ghcr.io/rlaif/, registry.local/ml/" in text


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
              "defaultServiceAccount": "workloads", "allowedServiceAccounts": ["workloads"],
              "allowedImagePrefixes": ["ghcr.io/rlaif/"]}
    deployment = by_kind(render({"operator": custom}), "Deployment")[0]
    env = {e["name"]: e["value"] for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert set(env) == {f"RLAIF_{f.upper()}" for f in fields | NOT_CHART_VALUES}
    lists = {"RLAIF_NAMESPACES", "RLAIF_ALLOWED_IMAGE_PREFIXES", "RLAIF_ALLOWED_SERVICE_ACCOUNTS"}
    settings = OperatorSettings(**{k.removeprefix("RLAIF_").lower(): (json.loads(v) if k in lists else v)
                                   for k, v in env.items()})
    assert settings.max_gpus_per_node == 8 and settings.namespaces == ["team-a", "team-b"]
    assert settings.log_level == "DEBUG" and settings.recheck_seconds == 5
    assert settings.default_service_account == "workloads" and settings.allowed_service_accounts == ["workloads"]
    assert settings.allowed_image_prefixes == ["ghcr.io/rlaif/"]
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
    {"image": {"digest": "latest"}},
    {"operator": {"allowedImagePrefixes": ["ghcr.io/rlaif"]}},
    {"podSecurityContext": {"runAsNonRoot": False, "seccompProfile": {"type": "RuntimeDefault"}}},
    {"podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "Unconfined"}}},
    {"podSecurityContext": {"runAsNonRoot": True, "runAsUser": 0, "seccompProfile": {"type": "RuntimeDefault"}}},
    {"securityContext": {"allowPrivilegeEscalation": True, "capabilities": {"drop": ["ALL"]}}},
    {"securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["NET_RAW"]}}},
    {"securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"], "add": ["SYS_ADMIN"]}}},
    {"securityContext": {"allowPrivilegeEscalation": False, "privileged": True, "capabilities": {"drop": ["ALL"]}}},
], ids=["two-replicas-without-leader-election", "bad-log-level", "port-zero", "typo", "string-for-bool",
        "digest-not-sha256",
        "prefix-without-separator", "root-allowed", "seccomp-unconfined", "uid-0", "privilege-escalation",
        "capabilities-kept", "capability-added", "privileged"])
def test_values_schema_rejects_bad_values(values: dict[str, Any]) -> None:
    with pytest.raises(helm_python.HelmError):
        render(values)


def rbac(values: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The operator's RBAC objects by kind (the leader-election Lease Role and the tenants' aggregated
    roles are tested on their own)."""
    docs = [d for d in render(values) if not d["metadata"]["name"].endswith("-leader-election")
            and not any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in d["metadata"]["labels"])]
    return {kind: by_kind(docs, kind) for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")}


def allowed(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)


def test_rbac_is_namespaced_when_namespaces_are_named() -> None:
    found = rbac({"operator": {"namespaces": ["team-a", "team-b"]}})
    assert found["ClusterRole"] == found["ClusterRoleBinding"] == []
    assert [r["metadata"]["namespace"] for r in found["Role"]] == ["team-a", "team-b"]
    assert [b["metadata"]["namespace"] for b in found["RoleBinding"]] == ["team-a", "team-b"]
    binding = found["RoleBinding"][0]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": "rlaif-rlaif-operator"}
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "rlaif-rlaif-operator", "namespace": "rlaif-system"}]
    rules = found["Role"][0]["rules"]
    assert not allowed(rules, "apiextensions.k8s.io", "customresourcedefinitions", "watch")
    assert not allowed(rules, "", "namespaces", "list")


@pytest.mark.parametrize("namespaces", [[], ["team-*"]], ids=["all", "pattern"])
def test_rbac_is_a_cluster_role_for_all_namespaces_or_patterns(namespaces: list[str]) -> None:
    found = rbac({"operator": {"namespaces": namespaces}})
    assert found["Role"] == found["RoleBinding"] == [] and len(found["ClusterRole"]) == 1
    rules = found["ClusterRole"][0]["rules"]
    assert allowed(rules, "apiextensions.k8s.io", "customresourcedefinitions", "watch")
    # kopf scans namespaces only to match patterns.
    assert allowed(rules, "", "namespaces", "watch") == bool(namespaces)


def test_rbac_least_privilege() -> None:
    rules = rbac({})["ClusterRole"][0]["rules"]
    assert [r for r in rules if "secrets" in r["resources"]] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}], "one named Secret at a time, never listed"
    for plural in ("preferencelabeljobs", "rewardmodelruns", "policyrlruns", "rlaifpipelines"):
        # blockOwnerDeletion on the children needs it where owner references are enforced (OpenShift)
        assert allowed(rules, "rlaif.dev", f"{plural}/finalizers", "update")
        assert not allowed(rules, "rlaif.dev", plural, "patch") and not allowed(rules, "rlaif.dev", plural, "update")
    # Deleting is for Jobs alone (an explicit rlaif.dev/restart, or a failed multi-node group restarted whole).
    assert [r["resources"] for r in rules if "delete" in r["verbs"]] == [["jobs"]]
    assert not any(v in r["verbs"] for r in rules for v in ("deletecollection", "*"))
    assert not any("*" in r["resources"] or "*" in r["apiGroups"] for r in rules)




def test_tenants_get_runs_through_the_built_in_roles() -> None:
    """Namespace editors (admin/edit) may create and change every rlaif.dev kind, viewers may read them:
    two ClusterRoles aggregated into Kubernetes' own roles, covering exactly the registry's kinds."""
    from rlaif_operator.api.kinds import KINDS

    plurals = {cls.PLURAL for cls in KINDS.values()}
    roles = {d["metadata"]["name"]: d for d in render() if d["kind"] == "ClusterRole"
             and any(k.startswith("rbac.authorization.k8s.io/aggregate-to-") for k in d["metadata"]["labels"])}
    edit, view = roles["rlaif-rlaif-operator-edit"], roles["rlaif-rlaif-operator-view"]
    assert {k for k, v in edit["metadata"]["labels"].items() if v == "true"} >= {
        "rbac.authorization.k8s.io/aggregate-to-admin", "rbac.authorization.k8s.io/aggregate-to-edit"}
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    writes = next(r for r in edit["rules"] if "create" in r["verbs"])
    assert set(writes["resources"]) == plurals and writes["apiGroups"] == ["rlaif.dev"]
    assert {"create", "update", "patch", "delete"} <= set(writes["verbs"])
    for role in (edit, view):  # status is read by both, written by neither (the operator owns it)
        status_rules = [r for r in role["rules"] if any(x.endswith("/status") for x in r["resources"])]
        assert {x for r in status_rules for x in r["resources"] if x.endswith("/status")} == {
            f"{p}/status" for p in plurals}
        assert all(set(r["verbs"]) == {"get", "list", "watch"} for r in status_rules)
    assert set(view["rules"][0]["verbs"]) == {"get", "list", "watch"}
    assert not [d for d in render({"rbac": {"tenantRoles": False}}) if d["kind"] == "ClusterRole"
                and d["metadata"]["name"].endswith(("-edit", "-view"))]


def _metric_names() -> set[str]:
    """Every series name the operator's /metrics can carry (rlaif_operator.metrics and .reaction, registered
    on import)."""
    from prometheus_client import REGISTRY

    from rlaif_operator import metrics, reaction  # noqa: F401 - registers them

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    return {family.name + suffix for family in REGISTRY.collect() if family.name.startswith("rlaif_")
            for suffix in suffixes.get(family.type, ("",))}


def test_grafana_dashboard_only_when_enabled_and_queries_only_real_metrics() -> None:
    """metrics.grafanaDashboard: a ConfigMap the Grafana sidecar picks up by its label, holding valid
    dashboard JSON whose every query names a metric the operator exports."""
    import re

    assert by_kind(render(), "ConfigMap") == []
    maps = by_kind(render({"metrics": {"grafanaDashboard": {"enabled": True}}}), "ConfigMap")
    assert len(maps) == 1
    cm = maps[0]
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "rlaif-system"
    placed = by_kind(render(NON_DEFAULT), "ConfigMap")[0]["metadata"]
    assert placed["namespace"] == "monitoring" and placed["annotations"] == {"grafana_folder": "rlaif"}
    assert list(cm["data"]) == ["rlaif-operator.json"]
    dashboard = json.loads(cm["data"]["rlaif-operator.json"])
    assert dashboard == json.loads((CHART / "files" / "grafana-dashboard.json").read_text())  # verbatim
    assert dashboard["uid"] and dashboard["title"]
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    known = _metric_names()
    queried: set[str] = set()
    for panel in panels:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            names = set(re.findall(r"\brlaif_[a-z_]+", target["expr"]))
            assert names, (panel["title"], target["expr"])
            assert names <= known, (panel["title"], names - known)
            queried |= names
    # what the dashboard promises: runs by phase, progress and ETA, stage durations, reconciles, hand-off, watch
    assert {"rlaif_run_phase", "rlaif_run_progress_ratio", "rlaif_run_eta_seconds",
            "rlaif_operator_stage_duration_seconds_bucket", "rlaif_operator_reconciles_total",
            "rlaif_operator_reconcile_seconds_bucket", "rlaif_operator_handoff_seconds_bucket",
            "rlaif_operator_watch_events_total", "rlaif_operator_reaction_seconds_bucket"} <= queried


def test_service_monitor_keeps_the_runs_namespace_label() -> None:
    monitor = by_kind(render(NON_DEFAULT), "ServiceMonitor")[0]
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True
