"""The chart's RBAC rules against the operator's real API calls: no more, no less.

The test API server records every request (``testapi.audit``) by User-Agent. These tests run after
the rest of the integration suite (``conftest.pytest_collection_modifyitems``) and compare what the
operator called, as verb x apiGroup x resource, with the rules the chart renders for the suite's mode
(a namespace pattern, ``op-*``: a ClusterRole). A rule the code stops using, or a call the chart does not
grant, fails here; adding a call means adding one line to ``templates/_rbac.tpl``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml
from clusterkit import REPO, Cluster, Operator
from testapi.audit import Call

CHART = REPO / "charts" / "rlaif-operator"
OPERATOR_AGENTS = ("kopf/", "rlaif-operator/")  # kopf's own session; the operator's Kube
TEST_AGENTS = ("kubectl/", "rlaif-cli/")  # the user: kubectl, and the rlaif command's cluster verbs
Permission = tuple[str, str, str]  # (verb, apiGroup, resource)


def chart_rules(values: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Rules by kind ("ClusterRole", "Role") as the real Helm engine renders them."""
    rendered = helm_python.Chart.load(CHART).render(values=values, name="rlaif", namespace="rlaif-system")
    found: dict[str, list[dict[str, Any]]] = {}
    for path, text in rendered.items():
        for doc in ([] if path.endswith("NOTES.txt") else yaml.safe_load_all(text)):
            tenant = any(k.startswith("rbac.authorization.k8s.io/aggregate-to-")
                         for k in ((doc or {}).get("metadata") or {}).get("labels", {}))
            if doc and doc["kind"] in ("ClusterRole", "Role") and not tenant:  # the operator's own rules
                found.setdefault(doc["kind"], []).extend(doc["rules"])
    return found


def permissions(rules: list[dict[str, Any]]) -> set[Permission]:
    return {(v, g, r) for rule in rules for v in rule["verbs"] for g in rule["apiGroups"] for r in rule["resources"]}


def operator_calls(cluster: Cluster) -> set[Call]:
    """What the operator called, plus what its code calls on paths no test may reach: ``Kube.create``
    reads the object (``get``) when a create answers 409 Conflict (a race after a restart)."""
    audit = cluster.testapi.handler.audit
    strangers = [a for a in audit.agents() if not a.startswith(OPERATOR_AGENTS + TEST_AGENTS)]
    assert not strangers, f"clients the test cannot attribute (operator or test?): {strangers}"
    calls = audit.by_agents(*OPERATOR_AGENTS)
    conflict_reads = {c._replace(verb="get") for c in calls if c.verb == "create" and c.resource != "events"}
    return calls | conflict_reads  # (events are POSTed by Kube.post_event, which never reads them back)


def whole_suite(session: pytest.Session) -> bool:
    """Whether every integration test was selected (only then must every rule have been used)."""
    here = Path(__file__).parent
    files = {p.name for p in here.glob("test_*.py")}
    selected = {item.path.name for item in session.items if item.path.parent == here}
    option = session.config.option
    return files <= selected and not option.keyword and not option.markexpr and not getattr(option, "lf", False)


@pytest.fixture
def suite_rules(operator: Operator, testapi_only: None) -> list[dict[str, Any]]:
    """The rules the chart renders for the namespace pattern the suite's operator watches: the ClusterRole,
    plus the Role of the leader-election Lease in the operator's own namespace."""
    found = chart_rules({"operator": {"namespaces": [operator.namespaces]}})
    return found["ClusterRole"] + found.get("Role", [])


def test_every_operator_call_is_granted_by_the_chart(cluster: Cluster, suite_rules: list[dict[str, Any]]) -> None:
    calls = operator_calls(cluster)
    assert calls, "the operator made no API call"
    missing = {(c.verb, c.group, c.resource) for c in calls} - permissions(suite_rules)
    assert not missing, f"the operator calls what the chart does not grant; add to templates/_rbac.tpl: {missing}"


def test_cluster_wide_calls_are_only_kopf_discovery(cluster: Cluster, suite_rules: list[dict[str, Any]]) -> None:
    """With exact namespaces the chart grants Roles only: every cluster-scoped call must be one of the
    discovery rules that only the ClusterRole carries (kopf does not scan for exact namespaces)."""
    names_mode = chart_rules({"operator": {"namespaces": ["team-a"]}})
    assert set(names_mode) == {"Role"}, "exact namespaces must not need a ClusterRole"
    discovery = permissions(suite_rules) - permissions(names_mode["Role"])
    assert discovery, "the pattern mode has cluster-only rules"
    cluster_calls = {(c.verb, c.group, c.resource) for c in operator_calls(cluster) if c.scope == "cluster"}
    assert cluster_calls <= discovery, f"cluster-wide calls a Role cannot grant: {cluster_calls - discovery}"


def test_every_granted_rule_is_used(cluster: Cluster, suite_rules: list[dict[str, Any]],
                                    request: pytest.FixtureRequest) -> None:
    if not whole_suite(request.session):
        pytest.skip("run the whole integration suite (pytest tests/integration) to see every rule used")
    used = {(c.verb, c.group, c.resource) for c in operator_calls(cluster)}
    unused = permissions(suite_rules) - used
    assert not unused, f"the chart grants what the operator never called; remove from templates/_rbac.tpl: {unused}"
