"""What a report shows, read from the stages' outputs.

Input: a local ``rlaif run`` workdir (``<workdir>/<stage>/config.json`` names each stage's output URI),
or the output URIs themselves (a cluster run: ``s3://.../labels``, a PVC path ...). Each output holds the
stage's ``summary.json`` (its ``stage`` says which), and, by stage: the labels file (labeling),
``metrics.jsonl`` (reward model and policy, one row per logged step) and ``eval.jsonl`` (the policy's
held-out prompts with both responses and the judge's verdicts). Output: a ``Run``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlaif_jobs import io, summaries

MAX_ROWS = 200_000  # a labels file of a large run: enough for a histogram


@dataclass
class Stage:
    """One stage's record: name, kind (label / reward / policy), where its outputs are, what it wrote."""

    name: str
    kind: str
    output_uri: str
    summary: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)  # metrics.jsonl (reward, policy) or labels (label)
    samples: list[dict] = field(default_factory=list)  # eval.jsonl (policy)

    @property
    def metrics(self) -> dict[str, float]:
        return self.summary.get("metrics", {})


@dataclass
class Run:
    """A run's stages in pipeline order, and what could not be read (shown in the report, never hidden)."""

    stages: list[Stage]
    problems: list[str] = field(default_factory=list)

    def of(self, kind: str) -> list[Stage]:
        return [s for s in self.stages if s.kind == kind]


def read_jsonl(uri: str, limit: int = MAX_ROWS) -> list[dict]:
    """Records of a JSONL (or Parquet) file at any URI; [] when absent."""
    if not io.exists(uri):
        return []
    if uri.endswith(".parquet"):
        import pyarrow.parquet as pq

        with io.open_read(uri, "rb") as f:
            return pq.read_table(f).slice(0, limit).to_pylist()
    out = []
    with io.open_read(uri) as f:
        for line in f:
            if line.strip():
                out.append(json.loads(line))
                if len(out) >= limit:
                    break
    return out


def load_stage(output_uri: str, name: str | None = None, config: dict | None = None) -> Stage | None:
    """The stage whose outputs are at ``output_uri``, or None when it wrote no summary (not finished)."""
    summary = summaries.read_summary(output_uri)
    if summary is None:
        return None
    kind = str(summary.get("stage", "?"))
    stage = Stage(name or output_uri.rstrip("/").rsplit("/", 1)[-1], kind, output_uri, summary, config or {})
    if kind == "label":
        labels = summary.get("outputs", {}).get(summaries.OUTPUT_LABELS)
        stage.rows = read_jsonl(labels) if labels else []
    elif kind in ("reward", "policy"):
        stage.rows = read_jsonl(io.join(output_uri, "metrics.jsonl"))
    if kind == "policy":
        stage.samples = read_jsonl(io.join(output_uri, "eval.jsonl"))
    return stage


ORDER = {"label": 0, "reward": 1, "policy": 2}


def from_outputs(uris: list[str]) -> Run:
    """A Run from stage output URIs (any order)."""
    run = Run([])
    for uri in uris:
        stage = load_stage(uri)
        if stage is None:
            run.problems.append(f"{uri}: no summary.json (the stage has not finished, or this is not an output)")
        else:
            run.stages.append(stage)
    run.stages.sort(key=lambda s: ORDER.get(s.kind, 9))
    return run


def from_workdir(workdir: str | Path, names: list[str] | None = None) -> Run:
    """A Run from an ``rlaif run`` workdir: each ``<stage>/config.json`` names the stage's output URI.
    ``names`` keeps only those stages (a workdir shared by several manifests)."""
    root = Path(workdir)
    run = Run([])
    for cfg_path in sorted(root.glob("*/config.json")):
        name = cfg_path.parent.name
        if names is not None and name not in names:
            continue
        config = json.loads(cfg_path.read_text())
        uri = config.get("output", {}).get("uri")
        if not uri:
            continue
        stage = load_stage(uri, name, config)
        if stage is None:
            run.problems.append(f"{name}: no summary.json under {uri} (the stage did not finish)")
        else:
            run.stages.append(stage)
    if not run.stages and not run.problems:
        run.problems.append(f"{root}: no stage folders (<stage>/config.json); is this an rlaif run workdir?")
    run.stages.sort(key=lambda s: (ORDER.get(s.kind, 9), s.name))
    return run
