"""Generates the CustomResourceDefinitions in crds/ from the pydantic models (never edit them by hand).

The pydantic JSON schema is rewritten into a Kubernetes *structural* schema: ``$ref`` inlined,
``Optional`` unions collapsed, JSON-Schema-2020 exclusive bounds turned into OpenAPI v3.0 booleans,
free-form maps marked ``x-kubernetes-preserve-unknown-fields``, and CEL rules carried through.

Usage: ``python -m rlaif_operator.api.crdgen [--out crds] [--check]``.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

from rlaif_operator.api.common import GROUP, VERSION, Status
from rlaif_operator.api.kinds import IMMUTABLE, KINDS, Resource

# Keys of pydantic's JSON schema that have no place in a CRD schema.
_DROP = {"title", "$defs", "discriminator"}


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        target.update(extra)  # a field's own description wins over the model's docstring
        return target
    return node


def structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Returns the structural-schema form of one pydantic JSON-schema node (recursively)."""
    node = _resolve(node, defs)
    # Optional[X] is anyOf [X, null]: the field is simply not required.
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"unions other than Optional cannot be expressed structurally: {node}")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        merged = _resolve(options[0], defs) | {k: v for k, v in rest.items() if k != "default"}
        if rest.get("default") is not None:
            merged["default"] = rest["default"]
        node = merged
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "default" and (value is None or value == {} or value == []):
            continue  # empty defaults add noise; absent means the same to every reader
        if key == "properties":
            out[key] = {name: structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = structural(value, defs)
        elif key == "additionalProperties":
            if value is True or value == {}:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif value is not False:
                out[key] = structural(value, defs)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            out[bound] = value
            out[key] = True
        elif key == "description":
            out[key] = " ".join(value.split())
        elif key == "const":  # a one-value Literal: OpenAPI v3 in a CRD has no const, only enum
            out["enum"] = [value]
        else:
            out[key] = value
    if "enum" in out and "type" not in out:
        kinds = {type(v) for v in out["enum"]}
        out["type"] = "integer" if kinds == {int} else "string"
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out["type"] = "object"
        out.pop("additionalProperties", None)
    if "type" not in out:
        raise ValueError(f"schema node without a type: {node}")
    return out


def _schema_of(model: type, mode: str = "validation") -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode=mode)  # type: ignore[attr-defined]
    return structural(raw, raw.get("$defs", {}))


def openapi_schema(kind: type[Resource]) -> dict[str, Any]:
    """The openAPIV3Schema of one kind: apiVersion, kind, metadata, spec (immutable), status."""
    spec_model: Any = kind.model_fields["spec"].annotation
    spec = _schema_of(spec_model)
    rules = spec.setdefault("x-kubernetes-validations", [])
    for field in kind.REQUIRED_IN_SPEC:
        alias = spec_model.model_fields[field].alias  # type: ignore[union-attr]
        rules.append({"rule": f"has(self.{alias})",
                      "message": f"spec.{alias} is required for a standalone {kind.KIND}"})
    rules.extend(kind.SPEC_RULES)
    rules.append(IMMUTABLE)
    return {
        "type": "object",
        "description": " ".join((kind.__doc__ or "").split()),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": _schema_of(Status, mode="serialization"),
        },
        "x-kubernetes-validations": [{
            "rule": f"size(self.metadata.name) <= {kind.MAX_NAME}",
            "message": f"metadata.name must be at most {kind.MAX_NAME} characters"
                       " (child resources add suffixes)",
        }],
    }


def build_crd(kind: type[Resource]) -> dict[str, Any]:
    """One CustomResourceDefinition manifest for a kind."""
    singular = kind.KIND.lower()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{kind.PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "rlaif", "app.kubernetes.io/part-of": "rlaif"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.KIND,
                "listKind": f"{kind.KIND}List",
                "plural": kind.PLURAL,
                "singular": singular,
                "shortNames": kind.SHORT_NAMES,
                "categories": ["rlaif"],
            },
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": kind.PRINTER_COLUMNS,
                "schema": {"openAPIV3Schema": openapi_schema(kind)},
            }],
        },
    }


HEADER = "# Generated by `python -m rlaif_operator.api.crdgen` from rlaif_operator/api. Do not edit.\n"


def render_all() -> dict[str, str]:
    """File name -> YAML text, for every kind."""
    return {
        f"{GROUP}_{k.PLURAL}.yaml": HEADER + yaml.safe_dump(build_crd(k), sort_keys=False, width=100)
        for k in KINDS.values()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="crds", help="folder to write into (default: crds)")
    parser.add_argument("--check", action="store_true", help="exit 1 if the folder is out of date")
    args = parser.parse_args(argv)
    out = Path(args.out)
    stale = []
    for name, text in render_all().items():
        path = out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("out of date (run `python -m rlaif_operator.api.crdgen`):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
