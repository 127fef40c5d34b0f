"""Exact namespaces need Roles only: an operator started as the chart starts it (``python -m
rlaif_operator``, ``RLAIF_NAMESPACES=["<one namespace>"]``) runs a stage to the end against a test API
server of its own, and every call it makes is namespaced and granted by the Role the chart renders for
that namespace (the session-wide audit, test_rbac_audit, covers the ClusterRole modes)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clusterkit import REPO, Cluster, Operator, eventually
from test_operator_pipeline import LABEL_REPORT, LABELING
from test_rbac_audit import OPERATOR_AGENTS, chart_rules, permissions

NAMESPACE = "team-a"


@pytest.fixture
def own_cluster(tmp_path_factory: pytest.TempPathFactory, testapi_only: None) -> Iterator[Cluster]:
    from testapi import TestApiServer

    with TestApiServer(crds=REPO / "crds", node_gpus=4) as api:
        yield Cluster(api.kubeconfig, str(tmp_path_factory.mktemp("kubectl-cache")), testapi=api)


def test_exact_namespaces_need_only_the_chart_roles(own_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
                                                    ) -> None:
    cluster = own_cluster
    cluster.kubectl("create", "namespace", NAMESPACE)
    op = Operator(cluster, tmp_path_factory.mktemp("namespaced") / "operator.log", NAMESPACE, recheck_seconds="1")
    op.start(entry="module")
    try:
        cluster.apply({"apiVersion": "rlaif.dev/v1alpha1", "kind": "PreferenceLabelJob", "metadata": {"name": "one"},
                       "spec": LABELING}, NAMESPACE)
        eventually(lambda: cluster.pods_of("one-label", NAMESPACE), what="the labeling pod")
        assert cluster.finish_pods("one-label", NAMESPACE, 0, LABEL_REPORT) == 1
        eventually(lambda: cluster.phase("plj", "one", NAMESPACE) == "Succeeded", what="Succeeded")
    finally:
        op.stop()
    calls = cluster.testapi.handler.audit.by_agents(*OPERATOR_AGENTS)
    assert calls and {c.scope for c in calls} == {"namespace"}, sorted(c for c in calls if c.scope != "namespace")
    roles = chart_rules({"operator": {"namespaces": [NAMESPACE]}})
    assert set(roles) == {"Role"}
    ungranted = {(c.verb, c.group, c.resource) for c in calls} - permissions(roles["Role"])
    assert not ungranted, f"calls the namespaced Role does not grant: {ungranted}"
    assert "Not enough permissions" not in op.logs(tail=100_000)
