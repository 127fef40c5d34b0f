"""Where the test API server once hid bugs: CEL equality across int and double, numbers stored as Go
stores them, and an immutable nested field of a child that the operator (not kubectl) created.

The first two are contracts (they hold on a real cluster too); the last drives the real operator.
"""

from __future__ import annotations

import pytest
from clusterkit import Cluster, Operator, eventually
from test_operator_pipeline import pipeline

from rlaif_operator.api import crdschema

IMMUTABLE = "spec is immutable"


@pytest.mark.parametrize(("rule", "self_", "old", "holds"), [
    ("self == oldSelf", 5, 3.0, False),  # cel-python raised "no such overload: IntType(5) != DoubleType(3.0)"
    ("self == oldSelf", 3, 3.0, True),   # CEL's heterogeneous equality: numbers compare by value
    ("self == oldSelf", {"a": [1, 2.5]}, {"a": [1.0, 2.5]}, True),
    ("self == oldSelf", {"a": 1}, {"a": "1"}, False),  # different types: unequal, not an error
    ("self != oldSelf", 2, 2.0, False),
    ("self == oldSelf", True, 1, False),
])
def test_cel_equality_is_heterogeneous(rule, self_, old, holds) -> None:
    schema = {"x-kubernetes-validations": [{"rule": rule, "message": "broken"}],
              "x-kubernetes-preserve-unknown-fields": True}
    assert (crdschema.validate(schema, self_, "v", old=old) == []) is holds


def test_a_number_field_is_a_double_in_cel() -> None:
    """The API server types CEL values by the schema: ``epochs: 3`` in a ``type: number`` field is 3.0."""
    schema = {"type": "object", "properties": {"epochs": {"type": "number"}},
              "x-kubernetes-validations": [{"rule": "self.epochs == 3.0 && type(self.epochs) == double"}]}
    assert crdschema.validate(schema, {"epochs": 3}) == []


def rmr(name: str, epochs: float) -> dict:
    return {"apiVersion": "rlaif.dev/v1alpha1", "kind": "RewardModelRun", "metadata": {"name": name},
            "spec": {"baseModel": {"uri": "builtin://smollm2-135m-instruct"},
                     "preferences": {"uri": "/data/labels.jsonl"}, "training": {"epochs": epochs},
                     "output": {"uri": "/data/out"}}}


def test_a_double_written_as_integral_reads_back_as_an_integer(cluster: Cluster, ns: str) -> None:
    """Go decodes ``3.0`` to a float64 and stores it as ``3``: readers get an integer back."""
    cluster.apply(rmr("by-hand", 3.0), ns)
    stored = cluster.get("rmr", "by-hand", ns)
    assert stored["spec"]["training"]["epochs"] == 3 and isinstance(stored["spec"]["training"]["epochs"], int)
    result = cluster.kubectl("patch", "rmr", "by-hand", "-n", ns, "--type=merge", "-p",
                             '{"spec":{"training":{"epochs":5.5}}}', check=False)
    assert result.returncode != 0 and IMMUTABLE in result.stderr, result.stderr


@pytest.mark.usefixtures("testapi_only")
def test_patching_a_nested_field_of_a_pipeline_child_is_refused(cluster: Cluster, operator: Operator,
                                                                  ns: str) -> None:
    """The issue's reproduction: the operator writes ``epochs`` as 3.0 (a float in the API model); a
    merge patch of ``epochs: 5`` must answer "spec is immutable", not a CEL evaluation error."""
    cluster.apply(pipeline("tldr", rewardModel={**pipeline("x")["spec"]["rewardModel"],
                                                "training": {"epochs": 3}}), ns)
    child = eventually(lambda: cluster.get("rmr", "tldr-reward", ns), what="the pipeline's RewardModelRun")
    assert child["spec"]["training"]["epochs"] == 3
    for patch in ('{"spec":{"training":{"epochs":5}}}', '{"spec":{"training":{"epochs":5.0}}}'):
        result = cluster.kubectl("patch", "rmr", "tldr-reward", "-n", ns, "--type=merge", "-p", patch, check=False)
        assert result.returncode != 0, result.stdout
        assert IMMUTABLE in result.stderr and "no such overload" not in result.stderr, result.stderr
    # The same value again is no change, so it is allowed (self == oldSelf holds across int and double).
    same = cluster.kubectl("patch", "rmr", "tldr-reward", "-n", ns, "--type=merge", "-p",
                           '{"spec":{"training":{"epochs":3}}}', check=False)
    assert same.returncode == 0, same.stderr
