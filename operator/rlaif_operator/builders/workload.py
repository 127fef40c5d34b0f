"""Turns a stage's resource into its workload config: the file ``python -m rlaif_jobs.STAGE`` reads.

The operator puts this config in a ConfigMap and the local runner writes it to a file, so a stage
computes the same thing on a cluster and on a laptop. Upstream references must already be resolved
into URIs (``upstream_ref`` says what a resource waits for).
"""

from __future__ import annotations

from typing import NamedTuple

from rlaif_jobs.config import LabelConfig, PolicyConfig, RewardConfig
from rlaif_operator.api.kinds import (
    PolicyRLRun,
    PreferenceLabelJob,
    RewardModelRun,
    StageResource,
)


class UpstreamRef(NamedTuple):
    """A dependency: the upstream resource's kind and name, and which of its outputs is consumed."""

    kind: str
    name: str
    output: str


def upstream_ref(resource: StageResource) -> UpstreamRef | None:
    """What this resource waits for, or None if its inputs are all explicit URIs (``Resource.UPSTREAMS``
    says where a kind may name its upstream)."""
    if resource.spec is None:
        return None
    for where in resource.UPSTREAMS:  # the validators let a spec name at most one
        section = getattr(resource.spec, where.section)
        name = getattr(section, where.attr) if section is not None else None
        if name:
            return UpstreamRef(where.kind, name, where.output)
    return None


class MissingInputError(ValueError):
    """The resource needs an upstream output that was not supplied."""


def workload_config(resource: StageResource,
                    upstream_uri: str | None = None) -> LabelConfig | RewardConfig | PolicyConfig:
    """The workload config of a stage resource.

    Inputs: the resource and, when ``upstream_ref(resource)`` is not None, the URI its upstream
    reported. Output: the stage's config model (shard index left unset: pods take it from
    JOB_COMPLETION_INDEX).
    """
    if isinstance(resource, PreferenceLabelJob):
        ls = resource.spec
        return LabelConfig(labeler=ls.labeler, dataset=ls.dataset, prompt=ls.prompt, output=ls.output,
                           output_format=ls.output_format, num_shards=ls.num_shards)
    needs = upstream_ref(resource)
    if needs is not None and not upstream_uri:
        raise MissingInputError(f"{resource.kind}/{resource.metadata.name} needs the {needs.output!r} output"
                                f" of {needs.kind}/{needs.name}")
    if isinstance(resource, RewardModelRun):
        rs = resource.spec
        assert rs.preferences is not None  # the resource model requires it
        preferences_uri = upstream_uri or rs.preferences.uri
        assert preferences_uri is not None  # exactly one of fromLabelJob / uri is set
        return RewardConfig(base_model=rs.base_model, preferences_uri=preferences_uri,
                            training=rs.training, tracking=rs.tracking, output=rs.output)
    if isinstance(resource, PolicyRLRun):
        ps = resource.spec
        if ps.dpo:  # trains on a label job's labels: no reward source
            assert ps.preferences is not None  # the resource model requires it
            preferences_uri = upstream_uri or ps.preferences.uri
            return PolicyConfig(policy=ps.policy, prompts=ps.prompts, preferences_uri=preferences_uri, rl=ps.rl,
                                rollout=ps.rollout, evaluation=ps.evaluation, tracking=ps.tracking,
                                output=ps.output)
        assert ps.reward is not None
        model_uri = upstream_uri or ps.reward.model_uri
        return PolicyConfig(policy=ps.policy, prompts=ps.prompts, reward_model_uri=model_uri,
                            direct_reward=ps.reward.direct, oracle_reward=ps.reward.oracle, rl=ps.rl,
                            rollout=ps.rollout, evaluation=ps.evaluation, tracking=ps.tracking,
                            output=ps.output)
    raise TypeError(f"{resource.kind} has no workload of its own")
