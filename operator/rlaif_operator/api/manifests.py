"""Reads run manifests (multi-document YAML or JSON) into typed resources, with errors naming fields.

Input: a path or text. Output: a list of ``Resource`` models. A bad document raises ManifestError
whose lines say the file, the document's position and kind/name, and each offending field path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rlaif_jobs.config.base import describe_errors
from rlaif_operator.api.common import API_VERSION
from rlaif_operator.api.kinds import KINDS, Resource


class ManifestError(ValueError):
    """A manifest that cannot become a resource; ``problems`` holds one line per offending field."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}:\n  " + "\n  ".join(problems))


def parse_resource(doc: Any, source: str = "<manifest>") -> Resource:
    """Turns one decoded document into its typed resource, or raises ManifestError."""
    if not isinstance(doc, dict):
        raise ManifestError(source, ["(document): expected a mapping with apiVersion, kind, metadata, spec"])
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if api_version != API_VERSION:
        raise ManifestError(source, [f"apiVersion: expected {API_VERSION!r}, got {api_version!r}"])
    if kind not in KINDS:
        raise ManifestError(source, [f"kind: expected one of {', '.join(KINDS)}, got {kind!r}"])
    name = (doc.get("metadata") or {}).get("name", "?")
    try:
        return KINDS[kind].model_validate(doc)
    except ValidationError as err:
        raise ManifestError(f"{source} ({kind}/{name})", describe_errors(err)) from None


def load_documents(path: str | Path) -> list[tuple[str, Any]]:
    """Reads every non-empty YAML document in a file: [(source label, decoded document)]."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ManifestError(str(path), [f"cannot read the file: {err.strerror}"]) from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as err:
        raise ManifestError(str(path), [f"not valid YAML: {err}"]) from None
    if not docs:
        raise ManifestError(str(path), ["the file holds no documents"])
    return [(f"{path} document {i + 1}", d) for i, d in enumerate(docs)]


def load_resources(path: str | Path) -> list[Resource]:
    """Reads a manifest file into typed resources; every document must be a rlaif.dev resource."""
    return [parse_resource(doc, source) for source, doc in load_documents(path)]
