"""Fixtures: one cluster per session (the test API server, or KUBECONFIG's cluster), one operator
process per session, and a fresh namespace per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from clusterkit import REPO, Cluster, Operator

NODE_GPUS = 4  # the test API server's one node; the operator is told nodes have 8 (see test_bad_input)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cache = str(tmp_path_factory.mktemp("kubectl-cache"))
    real = os.environ.get("KUBECONFIG")
    if real:
        c = Cluster(real, cache)
        c.kubectl("apply", "-f", str(REPO / "crds"))
        yield c
        return
    from testapi import TestApiServer

    with TestApiServer(crds=REPO / "crds", node_gpus=NODE_GPUS) as api:
        yield Cluster(api.kubeconfig, cache, testapi=api)


@pytest.fixture
def testapi_only(cluster: Cluster) -> None:
    if cluster.testapi is None:
        pytest.skip("plays the kubelet: only against the test API server (tests/e2e covers real clusters)")


@pytest.fixture(scope="session")
def operator(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    logs = tmp_path_factory.mktemp("operator")
    op = Operator(cluster, logs / "operator.log", OPERATOR_NAMESPACES, trace_file=str(logs / "trace.jsonl"),
                  recheck_seconds="1", max_gpus_per_node="8", log_level="INFO",
                  unschedulable_after_seconds="0", progress_interval_seconds="1")
    op.start()
    yield op
    op.stop()


OPERATOR_NAMESPACES = "op-*"  # the operator watches these only: the contract tests' namespaces are its own


@pytest.fixture
def ns(cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    prefix = "op" if "operator" in request.fixturenames else "ct"
    slug = request.node.name.split("[")[0].replace("_", "-")[5:28].strip("-") or "t"
    name = cluster.new_namespace(f"{prefix}-{slug}")
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The RBAC audit reads the API calls of every test before it: it runs last."""
    items.sort(key=lambda item: item.path.name == "test_rbac_audit.py")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed and "operator" in item.fixturenames:
        op = item.funcargs.get("operator")
        if op is not None:
            report.sections.append(("operator log (tail)", op.logs(80)))
