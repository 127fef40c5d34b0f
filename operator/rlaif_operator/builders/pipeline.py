"""Expands an RLAIFPipeline into its stage resources, wired to each other by name.

Pure: the pipeline in, the child resources out (named ``<pipeline>-label``, ``-reward``, ``-policy``).
The policy's evaluation judge defaults to the labeling stage's labeler (``with_default_judge``).
The operator creates them as owned children; the local runner runs them in order.
"""

from __future__ import annotations

from typing import Any

from rlaif_operator.api.common import ObjectMeta
from rlaif_operator.api.kinds import (
    KINDS,
    PolicyRLRun,
    PolicyRLRunSpec,
    PreferenceLabelJob,
    PreferenceLabelJobSpec,
    PreferenceSource,
    RewardModelRun,
    RewardSource,
    RLAIFPipeline,
    StageResource,
)
from rlaif_operator.builders.names import LABEL_PIPELINE


def child_name(pipeline_name: str, kind: str) -> str:
    return f"{pipeline_name}-{KINDS[kind].STAGE}"


def with_default_judge(pol: PolicyRLRunSpec, labeling: PreferenceLabelJobSpec | None) -> PolicyRLRunSpec:
    """The policy spec with the evaluation defaults a pipeline gives: the judge is the labeling stage's
    labeler and the rubric its prompt.task, unless the policy names its own (explicit fields win)."""
    ev = pol.evaluation
    if labeling is None or not ev.enabled:
        return pol
    update: dict[str, Any] = {}
    if ev.judge is None:
        update["judge"] = labeling.labeler
    if ev.task is None and labeling.prompt.task != "custom":
        update["task"] = labeling.prompt.task
    return pol.model_copy(update={"evaluation": ev.model_copy(update=update)}) if update else pol


def expand_pipeline(pipeline: RLAIFPipeline) -> list[StageResource]:
    """The pipeline's stages in run order, each with its upstream reference filled in."""
    meta = pipeline.metadata
    spec = pipeline.spec

    def child_meta(kind: str) -> ObjectMeta:
        return ObjectMeta(name=child_name(meta.name, kind), namespace=meta.namespace,
                          labels={**meta.labels, LABEL_PIPELINE: meta.name})

    children: list[StageResource] = []
    if spec.labeling is not None:
        children.append(PreferenceLabelJob(metadata=child_meta("PreferenceLabelJob"), spec=spec.labeling))
    if spec.reward_model is not None:
        rm = spec.reward_model
        if rm.preferences is None:
            rm = rm.model_copy(update={"preferences": PreferenceSource(
                from_label_job=child_name(meta.name, "PreferenceLabelJob"))})
        children.append(RewardModelRun(metadata=child_meta("RewardModelRun"), spec=rm))
    if spec.policy is not None:
        pol = spec.policy
        if pol.dpo:  # DPO trains on the labeling stage's labels, not on a reward model
            if pol.preferences is None:
                pol = pol.model_copy(update={"preferences": PreferenceSource(
                    from_label_job=child_name(meta.name, "PreferenceLabelJob"))})
        elif pol.reward is None:
            pol = pol.model_copy(update={"reward": RewardSource(
                from_reward_model_run=child_name(meta.name, "RewardModelRun"))})
        pol = with_default_judge(pol, spec.labeling)
        children.append(PolicyRLRun(metadata=child_meta("PolicyRLRun"), spec=pol))
    return children
