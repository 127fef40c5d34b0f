"""The test API server's fast path for built-in objects (fastjsonschema, compiled from the same Kubernetes
schemas) gives jsonschema's verdict: on the objects the operator builds, and on a few thousand seeded
mutations of them (a value of another type, an unknown field, a required field dropped). It must never
accept what jsonschema refuses: the server would then store an object a real API server rejects."""

from __future__ import annotations

import copy
import random
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))
from testapi import schemas  # noqa: E402

GOLDEN = TESTS / "unit" / "operator" / "golden"
MUTATIONS = 250  # per object


def corpus() -> list[dict[str, Any]]:
    """Every built-in object of the golden manifests, and a Pod from each Job's template."""
    found = []
    for path in sorted(GOLDEN.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and "." not in doc["apiVersion"].split("/")[0] and doc["apiVersion"] != "rlaif.dev/v1alpha1":
                found.append(doc)
                if doc["kind"] == "Job":
                    template = doc["spec"]["template"]
                    found.append({"apiVersion": "v1", "kind": "Pod", "metadata": {
                        "name": "p", "namespace": "ns", **template.get("metadata", {})}, "spec": template["spec"]})
    return found


def verdicts(obj: dict[str, Any], kind: str, api_version: str) -> tuple[bool, bool]:
    """(fastjsonschema accepts it, jsonschema accepts it), by the schema of that kind."""
    import fastjsonschema

    fast = schemas._fast_validator(kind, api_version)
    full = schemas._builtin_validator(kind, api_version)
    try:
        fast(obj)
        fast_ok = True
    except fastjsonschema.JsonSchemaValueException:
        fast_ok = False
    return fast_ok, full.is_valid(obj)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths(v, prefix + (i,))
    return out


def mutate(obj: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    path = rng.choice([p for p in paths(out)[1:] if p not in (("kind",), ("apiVersion",))])
    parent = out
    for part in path[:-1]:
        parent = parent[part]
    how = rng.randrange(3)
    if how == 0:  # a value of another type
        parent[path[-1]] = rng.choice(["x", 7, 2.5, True, None, [], {}, ["x"], {"k": "v"}])
    elif how == 1 and isinstance(parent[path[-1]], dict):  # an unknown field
        parent[path[-1]]["notAField"] = "x"
    elif isinstance(parent, dict):  # a field dropped (required ones must be missed)
        del parent[path[-1]]
    return out


OBJECTS = corpus()


@pytest.mark.parametrize("obj", OBJECTS, ids=[f"{o['kind']}-{o['metadata']['name']}" for o in OBJECTS])
def test_the_fast_path_gives_jsonschemas_verdict(obj: dict[str, Any]) -> None:
    kind, api_version = obj["kind"], obj["apiVersion"]
    assert verdicts(obj, kind, api_version) == (True, True)
    rng = random.Random(f"{obj['kind']}/{obj['metadata']['name']}")
    refused = 0
    for _ in range(MUTATIONS):
        mutated = mutate(obj, rng)
        fast_ok, full_ok = verdicts(mutated, kind, api_version)
        assert fast_ok == full_ok, (fast_ok, full_ok, mutated)
        refused += not full_ok
    assert refused > MUTATIONS // 4  # the mutations do reach the schema's rules


def test_an_invalid_object_still_gets_every_error_in_the_api_servers_words() -> None:
    job = next(o for o in OBJECTS if o["kind"] == "Job")
    bad = copy.deepcopy(job)
    bad["spec"]["parallelism"] = "two"
    bad["spec"]["template"]["spec"]["notAField"] = 1
    errors, unknown = schemas.validate_builtin(bad)
    assert unknown == ["spec.template.spec.notAField"]
    assert len(errors) == 1 and errors[0].startswith("spec.parallelism: Invalid value: \"two\"")
