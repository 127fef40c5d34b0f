"""The four custom resources of group rlaif.dev, as pydantic models (the one source of the CRDs).

Each spec composes a workload config from ``rlaif_jobs.config`` (what to compute) with cluster-side
fields from ``common`` (where and how pods run). Upstream stages are referenced either by name
(``fromLabelJob``, ``fromRewardModelRun``) or by an explicit URI, exactly one of the two. A PolicyRLRun
with ``rl.algorithm: dpo`` takes ``preferences`` (a label job's labels) instead of a ``reward``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, NamedTuple

from pydantic import Field, model_validator
from pydantic.json_schema import JsonDict

from rlaif_jobs.config.base import CamelModel
from rlaif_jobs.config.common import DatasetRef, ModelRef, OutputSpec, Uri
from rlaif_jobs.config.label import LabelerSpec, PromptSpec
from rlaif_jobs.config.policy import (
    DPO_WITH_REWARD,
    NO_JUDGE,
    PREFERENCES_WITHOUT_DPO,
    DirectRewardSpec,
    EvaluationSpec,
    OracleRewardSpec,
    RLSpec,
    RolloutSpec,
)
from rlaif_jobs.config.reward import RewardTrainerSpec
from rlaif_jobs.config.tracking import TrackingSpec
from rlaif_jobs.summaries import OUTPUT_LABELS, OUTPUT_MODEL
from rlaif_operator.api.common import DNS_LABEL, ObjectMeta, Resources, Runtime, Status

IMMUTABLE = {"rule": "self == oldSelf", "message": "spec is immutable: create a new resource with a new name"}


def exactly_one(*fields: str) -> JsonDict:
    """A CEL rule (and its message) that exactly one of the named optional fields is set."""
    terms = " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in fields)
    return {"rule": f"{terms} == 1", "message": f"set exactly one of {', '.join(fields)}"}


def judged(path: str) -> str:
    """CEL: the PolicyRLRun spec at ``path`` has a judge if its evaluation is enabled (the default)."""
    return (f"(has({path}.evaluation) && has({path}.evaluation.enabled) && !{path}.evaluation.enabled)"
            f" || (has({path}.evaluation) && has({path}.evaluation.judge))"
            f" || (has({path}.reward) && has({path}.reward.direct))")


def is_dpo(path: str) -> str:
    """CEL: the PolicyRLRun spec at ``path`` trains with rl.algorithm dpo (on preferences, not a reward)."""
    return f"(has({path}.rl) && has({path}.rl.algorithm) && {path}.rl.algorithm == 'dpo')"


def _count_set(model: CamelModel, *fields: str) -> int:
    return sum(getattr(model, f) is not None for f in fields)


class StageSpec(CamelModel):
    """Fields every stage has: pod resources, runtime, and where outputs go."""

    output: OutputSpec = Field(description="Where the stage writes its artifacts.")
    resources: Resources = Field(default_factory=Resources, description="What each pod requests.")
    runtime: Runtime = Field(default_factory=Runtime, description="Image, identity, secrets, retries.")


# --- PreferenceLabelJob -------------------------------------------------------------------------


class PreferenceLabelJobSpec(StageSpec):
    """Stage 1: an off-the-shelf LLM writes soft preference labels for (context, a, b) pairs."""

    labeler: LabelerSpec = Field(description="The labeler LLM and its engine.")
    dataset: DatasetRef = Field(description="Pairs to label.")
    prompt: PromptSpec = Field(default_factory=PromptSpec, description="The paper's prompt knobs.")
    output_format: Literal["jsonl", "parquet"] = Field("jsonl", description="Labels file format.")
    num_shards: int = Field(1, ge=1, le=1000, description="Pods that label disjoint slices in parallel.")


# --- RewardModelRun ------------------------------------------------------------------------------


class PreferenceSource(CamelModel):
    """Where the preferences come from: a PreferenceLabelJob by name, or a labels file URI."""

    model_config = {**CamelModel.model_config, "json_schema_extra": {
        "x-kubernetes-validations": [exactly_one("fromLabelJob", "uri")]}}

    from_label_job: str | None = Field(None, pattern=DNS_LABEL, description="A PreferenceLabelJob's name.")
    uri: Uri | None = Field(None, description="A labels file written by an earlier labeling run.")

    @model_validator(mode="after")
    def _one(self) -> PreferenceSource:
        if _count_set(self, "from_label_job", "uri") != 1:
            raise ValueError("set exactly one of fromLabelJob, uri")
        return self


class RewardModelRunSpec(StageSpec):
    """Stage 2: a DeepSpeed trainer fits a scalar reward model to the soft labels."""

    base_model: ModelRef = Field(description="Initialisation, usually the SFT policy.")
    preferences: PreferenceSource | None = Field(
        None, description="Required, except inside a pipeline (which wires its labeling stage)."
    )
    training: RewardTrainerSpec = Field(default_factory=RewardTrainerSpec, description="Hyperparameters.")
    tracking: TrackingSpec = Field(
        default_factory=TrackingSpec, description="Experiment tracking besides <output>/metrics.jsonl: TensorBoard"
        " (on by default), MLflow, Weights & Biases.")


# --- PolicyRLRun ---------------------------------------------------------------------------------


class RewardSource(CamelModel):
    """The reward: a RewardModelRun by name, a reward model URI, direct labeler scoring (d-RLAIF), or the
    ground-truth oracle (the RL ceiling check)."""

    model_config = {**CamelModel.model_config, "json_schema_extra": {
        "x-kubernetes-validations": [exactly_one("fromRewardModelRun", "modelUri", "direct", "oracle")]}}

    from_reward_model_run: str | None = Field(None, pattern=DNS_LABEL, description="A RewardModelRun's name.")
    model_uri: Uri | None = Field(None, description="A reward model folder (HF format).")
    direct: DirectRewardSpec | None = Field(None, description="d-RLAIF: the labeler scores responses 1-10.")
    oracle: OracleRewardSpec | None = Field(
        None, description="The RL ceiling check: reward 1 when a response meets its prompt's ground truth, else 0"
        " (oracle: {rules: builtin}). Not RLAIF: it shows how far RL can move the oracle in the step budget.")

    @model_validator(mode="after")
    def _one(self) -> RewardSource:
        if _count_set(self, "from_reward_model_run", "model_uri", "direct", "oracle") != 1:
            raise ValueError("set exactly one of fromRewardModelRun, modelUri, direct, oracle")
        return self


MISSING_INPUT = ("spec.reward is required for a standalone PolicyRLRun; with rl.algorithm dpo, spec.preferences"
                 " (fromLabelJob or uri) is, instead of a reward")


class PolicyRLRunSpec(StageSpec):
    """Stage 3: RL fine-tuning of the SFT policy against the reward, with a KL penalty to the SFT; or, with
    rl.algorithm dpo, DPO on the preference labels (no reward, no rollouts)."""

    model_config = {**StageSpec.model_config, "json_schema_extra": {"x-kubernetes-validations": [
        {"rule": f"!{is_dpo('self')} || !has(self.reward)", "message": DPO_WITH_REWARD.format(field="reward")},
        {"rule": f"{is_dpo('self')} || !has(self.preferences)",
         "message": PREFERENCES_WITHOUT_DPO.format(field="preferences")},
    ]}}

    policy: ModelRef = Field(description="The SFT policy (also the KL reference and value init).")
    prompts: DatasetRef = Field(description="Prompts to roll out on (with rl.algorithm dpo: the evaluation's"
                                " held-out prompts are drawn from them).")
    reward: RewardSource | None = Field(
        None, description="Required (except with rl.algorithm dpo), except inside a pipeline (which wires its"
        " reward model stage)."
    )
    preferences: PreferenceSource | None = Field(
        None, description="rl.algorithm dpo only, instead of reward: the preference labels DPO trains on, a"
        " PreferenceLabelJob by name or a labels file URI. Required for dpo, except inside a pipeline (which"
        " wires its labeling stage).")
    rl: RLSpec = Field(default_factory=RLSpec, description="Algorithm and hyperparameters.")
    rollout: RolloutSpec = Field(default_factory=RolloutSpec, description="Rollout engine.")
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec, description="The policy against SFT:"
                                       " judge's win rate, harmless rates, oracle score.")
    tracking: TrackingSpec = Field(
        default_factory=TrackingSpec, description="Experiment tracking besides <output>/metrics.jsonl: TensorBoard"
        " (on by default), MLflow, Weights & Biases.")

    @model_validator(mode="after")
    def _dpo_inputs(self) -> PolicyRLRunSpec:
        if self.rl.algorithm == "dpo" and self.reward is not None:
            raise ValueError(DPO_WITH_REWARD.format(field="reward"))
        if self.rl.algorithm != "dpo" and self.preferences is not None:
            raise ValueError(PREFERENCES_WITHOUT_DPO.format(field="preferences"))
        return self

    @property
    def dpo(self) -> bool:
        """Whether this run trains with DPO on preferences (rl.algorithm dpo) rather than RL on a reward."""
        return self.rl.algorithm == "dpo"

    def has_judge(self) -> bool:
        """Evaluation is off, or it has a judge (its own, or the d-RLAIF labeler)."""
        ev = self.evaluation
        return not ev.enabled or ev.judge is not None or (self.reward is not None and self.reward.direct is not None)


# --- RLAIFPipeline -------------------------------------------------------------------------------


class RLAIFPipelineSpec(CamelModel):
    """All three stages, chained: labels -> reward model -> policy. Each stage is optional as long as
    what a later stage needs is either produced upstream or given explicitly."""

    model_config = {**CamelModel.model_config, "json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "has(self.labeling) || has(self.rewardModel) || has(self.policy)",
         "message": "a pipeline needs at least one of labeling, rewardModel, policy"},
        {"rule": "!has(self.rewardModel) || has(self.rewardModel.preferences) || has(self.labeling)",
         "message": "rewardModel needs preferences: add a labeling stage or set rewardModel.preferences.uri"},
        {"rule": f"!has(self.policy) || has(self.policy.reward) || has(self.rewardModel) || {is_dpo('self.policy')}",
         "message": "policy needs a reward: add a rewardModel stage or set policy.reward"},
        {"rule": f"!has(self.policy) || !{is_dpo('self.policy')} || has(self.policy.preferences)"
                 " || has(self.labeling)",
         "message": "policy.preferences: rl.algorithm dpo trains on preference labels: add a labeling stage or"
                    " set policy.preferences.uri"},
        {"rule": f"!has(self.policy) || has(self.labeling) || {judged('self.policy')}",
         "message": "policy." + NO_JUDGE},
    ]}}

    labeling: PreferenceLabelJobSpec | None = Field(None, description="Stage 1.")
    reward_model: RewardModelRunSpec | None = Field(None, description="Stage 2.")
    policy: PolicyRLRunSpec | None = Field(None, description="Stage 3.")

    @model_validator(mode="after")
    def _chain(self) -> RLAIFPipelineSpec:
        if not (self.labeling or self.reward_model or self.policy):
            raise ValueError("a pipeline needs at least one of labeling, rewardModel, policy")
        if self.reward_model and not (self.reward_model.preferences or self.labeling):
            raise ValueError("rewardModel needs preferences: add a labeling stage or set"
                             " rewardModel.preferences.uri")
        if self.policy and not self.policy.dpo and not (self.policy.reward or self.reward_model):
            raise ValueError("policy needs a reward: add a rewardModel stage or set policy.reward")
        if self.policy and self.policy.dpo and not (self.policy.preferences or self.labeling):
            raise ValueError("policy.preferences: rl.algorithm dpo trains on preference labels: add a labeling"
                             " stage or set policy.preferences.uri")
        if self.policy and self.policy.preferences and self.policy.preferences.from_label_job:
            raise ValueError("policy.preferences.fromLabelJob: inside a pipeline, leave preferences out to use"
                             " the pipeline's labeling stage, or give a uri")
        if self.policy and not self.labeling and not self.policy.has_judge():
            raise ValueError("policy." + NO_JUDGE)
        if self.reward_model and self.reward_model.preferences and self.reward_model.preferences.from_label_job:
            raise ValueError("rewardModel.preferences.fromLabelJob: inside a pipeline, leave preferences"
                             " out to use the pipeline's labeling stage, or give a uri")
        if self.policy and self.policy.reward and self.policy.reward.from_reward_model_run:
            raise ValueError("policy.reward.fromRewardModelRun: inside a pipeline, leave reward out to use"
                             " the pipeline's rewardModel stage")
        return self


# --- the resource envelopes and the per-kind registry ------------------------------------------------


class Upstream(NamedTuple):
    """Where a stage's spec may name its upstream: ``spec.<section>.<alias>`` (the model attribute
    ``attr``), a resource of ``kind``, whose ``status.outputs[output]`` it consumes. A kind may list
    several (``Resource.UPSTREAMS``); its validators let a spec set at most one of them."""

    section: str
    attr: str
    alias: str
    kind: str
    output: str


class Resource(CamelModel):
    """A custom resource: apiVersion, kind, metadata, spec, status. Subclasses fix kind and spec type.

    The class variables are the per-kind registry: every other part of the operator (API paths, kopf
    handler registration, Job names and labels, the workload module, the upstream wiring) derives from
    them through ``KINDS``, so a kind's facts live in one place."""

    KIND: ClassVar[str]
    PLURAL: ClassVar[str]
    SHORT_NAMES: ClassVar[list[str]]
    PRINTER_COLUMNS: ClassVar[list[dict[str, Any]]]
    STAGE: ClassVar[str | None] = None  # a stage's short name: Job suffix, component label, pipeline child suffix
    MODULE: ClassVar[str | None] = None  # the workload its pods run: python -m MODULE --config ...
    UPSTREAMS: ClassVar[tuple[Upstream, ...]] = ()  # where the spec may name the stage it waits for
    MAX_NAME: ClassVar[int] = 40  # children add suffixes such as "-label-merge"; Job names cap at 63
    REQUIRED_IN_SPEC: ClassVar[list[str]] = []
    SPEC_RULES: ClassVar[list[dict[str, str]]] = []  # CEL rules on a standalone resource's spec

    api_version: Literal["rlaif.dev/v1alpha1"] = Field("rlaif.dev/v1alpha1")
    kind: str
    metadata: ObjectMeta
    status: Status = Field(default_factory=Status)
    spec: CamelModel  # each kind narrows it to its own spec type

    @model_validator(mode="after")
    def _envelope(self) -> Resource:
        if self.kind != self.KIND:
            raise ValueError(f"kind must be {self.KIND}")
        if len(self.metadata.name) > self.MAX_NAME:
            raise ValueError(f"metadata.name must be at most {self.MAX_NAME} characters")
        for f in self.REQUIRED_IN_SPEC:
            if getattr(self.spec, f) is None:
                alias = type(self.spec).model_fields[f].alias
                raise ValueError(f"spec.{alias} is required for a standalone {self.KIND}")
        return self


class StageResource(Resource):
    """A stage: labeling, reward model or policy. Its spec is a StageSpec (output, resources, runtime),
    so builders, ensure, observe and guardrails read those fields typed; a pipeline is not a stage."""

    TRAINS: ClassVar[bool] = True  # a DeepSpeed trainer under torchrun (may span nodes); False: the labeler
    spec: StageSpec


def _age() -> dict[str, Any]:
    return {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}


def _phase() -> dict[str, Any]:
    return {"name": "Phase", "type": "string", "jsonPath": ".status.phase"}


def _progress() -> list[dict[str, Any]]:
    """While running: what the workload does and how far it is, and the time left in that phase."""
    return [{"name": "Progress", "type": "string", "jsonPath": ".status.progress.summary"},
            {"name": "ETA", "type": "string", "jsonPath": ".status.progress.eta"}]


class PreferenceLabelJob(StageResource):
    """Labels pairs with an AI labeler; outputs: labels, summary."""

    TRAINS = False
    KIND = "PreferenceLabelJob"
    PLURAL = "preferencelabeljobs"
    SHORT_NAMES = ["plj"]
    STAGE = "label"
    MODULE = "rlaif_jobs.label"
    PRINTER_COLUMNS = [
        _phase(),
        *_progress(),
        {"name": "Labeled", "type": "integer", "jsonPath": ".status.metrics.labeled"},
        {"name": "Alignment", "type": "number", "jsonPath": ".status.metrics.alignment"},
        {"name": "SamePosition", "type": "number", "jsonPath": ".status.metrics.samePositionRate",
         "priority": 1},
        _age(),
    ]
    kind: Literal["PreferenceLabelJob"] = "PreferenceLabelJob"
    spec: PreferenceLabelJobSpec


class RewardModelRun(StageResource):
    """Trains a reward model on AI preferences; outputs: model, summary."""

    KIND = "RewardModelRun"
    PLURAL = "rewardmodelruns"
    SHORT_NAMES = ["rmr"]
    STAGE = "reward"
    MODULE = "rlaif_jobs.reward"
    UPSTREAMS = (Upstream("preferences", "from_label_job", "fromLabelJob", "PreferenceLabelJob", OUTPUT_LABELS),)
    REQUIRED_IN_SPEC = ["preferences"]
    PRINTER_COLUMNS = [
        _phase(),
        *_progress(),
        # the paper's headline: accuracy against held-out HUMAN labels; against AI labels is secondary
        {"name": "Accuracy", "type": "number", "jsonPath": ".status.metrics.evalAccuracyHuman"},
        {"name": "AIAccuracy", "type": "number", "jsonPath": ".status.metrics.evalAccuracyAi", "priority": 1},
        {"name": "Loss", "type": "number", "jsonPath": ".status.metrics.evalLoss", "priority": 1},
        _age(),
    ]
    kind: Literal["RewardModelRun"] = "RewardModelRun"
    spec: RewardModelRunSpec


class PolicyRLRun(StageResource):
    """RL fine-tunes a policy against a reward model or the labeler; outputs: model, summary."""

    KIND = "PolicyRLRun"
    PLURAL = "policyrlruns"
    SHORT_NAMES = ["prl"]
    STAGE = "policy"
    MODULE = "rlaif_jobs.policy"
    UPSTREAMS = (Upstream("reward", "from_reward_model_run", "fromRewardModelRun", "RewardModelRun", OUTPUT_MODEL),
                 Upstream("preferences", "from_label_job", "fromLabelJob", "PreferenceLabelJob", OUTPUT_LABELS))
    SPEC_RULES = [{"rule": judged("self"), "message": "spec." + NO_JUDGE},
                  {"rule": f"{is_dpo('self')} ? has(self.preferences) : has(self.reward)",
                   "message": MISSING_INPUT}]
    PRINTER_COLUMNS = [
        _phase(),
        *_progress(),
        {"name": "Reward", "type": "number", "jsonPath": ".status.metrics.meanReward"},
        {"name": "KL", "type": "number", "jsonPath": ".status.metrics.kl"},
        {"name": "WinRate", "type": "number", "jsonPath": ".status.metrics.winRate"},
        {"name": "Oracle", "type": "number", "jsonPath": ".status.metrics.oracleScore"},
        {"name": "SFTOracle", "type": "number", "jsonPath": ".status.metrics.sftOracleScore"},
        {"name": "Judge", "type": "string",
         "jsonPath": '.status.conditions[?(@.type=="JudgeIndependent")].reason'},
        _age(),
    ]
    kind: Literal["PolicyRLRun"] = "PolicyRLRun"
    spec: PolicyRLRunSpec

    @model_validator(mode="after")
    def _judge(self) -> PolicyRLRun:
        if (self.spec.preferences if self.spec.dpo else self.spec.reward) is None:
            raise ValueError(MISSING_INPUT)
        if not self.spec.has_judge():
            raise ValueError("spec." + NO_JUDGE)
        return self


class RLAIFPipeline(Resource):
    """Creates and chains the three stages as owned children; reports one phase and each stage's."""

    KIND = "RLAIFPipeline"
    PLURAL = "rlaifpipelines"
    SHORT_NAMES = ["rlp"]
    MAX_NAME = 32  # stage children are named "<pipeline>-<stage>"
    PRINTER_COLUMNS = [
        _phase(),
        *_progress(),
        {"name": "Stage", "type": "string", "jsonPath": ".status.currentStage"},
        {"name": "WinRate", "type": "number", "jsonPath": ".status.metrics.winRate"},
        {"name": "Oracle", "type": "number", "jsonPath": ".status.metrics.oracleScore"},
        {"name": "SFTOracle", "type": "number", "jsonPath": ".status.metrics.sftOracleScore"},
        {"name": "JudgeIsRewardSource", "type": "number", "jsonPath": ".status.metrics.judgeIsRewardSource",
         "priority": 1},
        _age(),
    ]
    kind: Literal["RLAIFPipeline"] = "RLAIFPipeline"
    spec: RLAIFPipelineSpec


KINDS: dict[str, type[Resource]] = {
    k.KIND: k for k in (PreferenceLabelJob, RewardModelRun, PolicyRLRun, RLAIFPipeline)
}
# Derived views of the registry.
STAGE_KINDS: tuple[str, ...] = tuple(k for k, cls in KINDS.items() if cls.STAGE)  # run order
STAGE_NAMES: dict[str, str] = {k: cls.STAGE for k, cls in KINDS.items() if cls.STAGE}
STAGE_MODULES: dict[str, str] = {k: cls.MODULE for k, cls in KINDS.items() if cls.MODULE}
UPSTREAMS: dict[str, tuple[Upstream, ...]] = {k: cls.UPSTREAMS for k, cls in KINDS.items() if cls.UPSTREAMS}
