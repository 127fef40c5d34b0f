"""Config of the policy workload (stage 3): RL fine-tuning against a reward model or the labeler, or DPO
directly on the labeling stage's soft preferences (rl.algorithm dpo)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rlaif_jobs.config.base import CamelModel
from rlaif_jobs.config.common import DatasetRef, ModelRef, OutputSpec, Uri
from rlaif_jobs.config.label import LabelerSpec
from rlaif_jobs.config.tracking import TrackingSpec
from rlaif_jobs.config.training import TrainerSpec
from rlaif_jobs.errors import ConfigError

Algorithm = Literal["reinforce", "rloo", "ppo", "dpo"]


class DirectRewardSpec(CamelModel):
    """d-RLAIF: the labeler rates each response 1-10; the expected score is rescaled to [-1, 1]."""

    labeler: LabelerSpec = Field(description="The LLM that scores responses.")
    template: str | None = Field(
        None, description="Scoring prompt with {prompt} and {response}; default: the task's rating prompt."
    )
    task: Literal["summarization", "helpful", "harmless"] = Field("summarization", description="Rubric.")


class OracleRewardSpec(CamelModel):
    """The RL ceiling check: reward 1 when a response meets its prompt's ground truth (the evaluation's
    judge-free oracle, rlaif_jobs.evaluation.oracle), else 0. No labeler and no reward model: it shows how
    far RL can move the oracle in a step budget, so a flat RLAIF result can be told apart from an RL that
    cannot move. The prompts must carry ground truth (answer, keyFact or mustDecline)."""

    rules: Literal["builtin"] = Field(
        "builtin", description="Which rules score a response: builtin, the evaluation's own oracle (the rules are"
        " documented in rlaif_jobs.evaluation.oracle).")


class RLSpec(TrainerSpec):
    """RL knobs, paper defaults: beta 0.05, temperature 0.9, batch 128, lr 1e-5, 8 epochs."""

    model_config = {**TrainerSpec.model_config, "json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "!has(self.algorithm) || self.algorithm != 'rloo' || !has(self.samplesPerPrompt)"
                 " || self.samplesPerPrompt >= 2",
         "message": "samplesPerPrompt must be at least 2 for rloo (it is the leave-one-out group)"}]}}

    algorithm: Algorithm = Field(
        "reinforce", description="reinforce (paper: value baseline), rloo or ppo against a reward; or dpo: no"
        " reward and no rollouts, the policy trains on the preference labels themselves (preferences).")
    kl_coef: float = Field(0.05, ge=0, lt=1, description="beta in (1 - beta) * r - beta * KL(pi || SFT).")
    temperature: float = Field(0.9, gt=0, le=2, description="Sampling temperature of rollouts.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling of rollouts.")
    max_new_tokens: int = Field(64, ge=1, le=8192, description="Response length cap.")
    samples_per_prompt: int = Field(2, ge=1, le=64, description="Responses per prompt (RLOO needs >= 2).")
    value_learning_rate: float | None = Field(None, gt=0, description="Value model lr; default learningRate.")
    clip_range: float = Field(0.2, gt=0, description="PPO ratio clip.")
    ppo_epochs: int = Field(1, ge=1, description="PPO passes over each rollout batch.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many updates (overrides epochs).")
    dpo_beta: float = Field(
        0.1, gt=0, le=10, description="dpo only: beta of the soft-label DPO loss -[p log sigmoid(beta D) + (1 - p)"
        " log sigmoid(-beta D)], D the policy's log-ratio to the SFT reference on response a minus that on b;"
        " batchSize and microBatchSize count pairs.")

    @model_validator(mode="after")
    def _rloo_needs_group(self) -> RLSpec:
        if self.algorithm == "rloo" and self.samples_per_prompt < 2:
            raise ValueError("samplesPerPrompt must be at least 2 for rloo (it is the leave-one-out group)")
        return self


class RolloutSpec(CamelModel):
    """Which engine generates rollouts, and how new weights reach it."""

    engine: Literal["vllm", "transformers"] = Field("vllm", description="vllm where it runs, else transformers.")
    gpu_memory_utilization: float = Field(0.3, gt=0, le=1, description="vLLM's share when colocated.")
    sleep_mode: Literal["auto", "on", "off"] = Field(
        "auto", description="vLLM sleep mode around each policy update (weights offloaded to host memory, KV"
        " cache freed, woken before the weight sync), so trainer and vLLM share a GPU. auto: on with CUDA,"
        " off elsewhere (the summary says so); on: refused without CUDA (vLLM's sleep mode needs it).")


class EvaluationSpec(CamelModel):
    """The trained policy against the SFT policy on held-out prompts: an AI judge's win rate (both orders,
    length-controlled), harmless rates, and a judge-free oracle score where prompts carry ground truth."""

    enabled: bool = Field(True, description="Run the evaluation after training.")
    judge: LabelerSpec | None = Field(
        None, description="The judge LLM. Default: in a pipeline, the labeling stage's labeler; with"
        " reward.direct, the scoring labeler. Either default is the model the policy was trained to please"
        " (recorded as judgeIsRewardSource): prefer a judge of another model family.")
    task: Literal["summarization", "helpful", "harmless"] | None = Field(
        None, description="The judge's rubric for prompts without a task field. Default: the labeling"
        " stage's prompt.task in a pipeline, else reward.direct.task, else helpful.")
    prompts: DatasetRef | None = Field(None, description="Held-out prompts; default: part of the prompts.")
    num_prompts: int = Field(64, ge=1, description="Prompts to compare on.")
    temperature: float = Field(
        0.0, ge=0, le=2, description="Decoding of both policies' held-out responses (the same for each): 0 is"
        " greedy, the default, so each prompt is scored on the policy's most likely answer (one sample at"
        " the rollout temperature is noise that swamps an effect on a small model); above 0 samples.")
    length_controlled: bool = Field(True, description="Also report the length-controlled win rate.")
    compare_with: Uri | None = Field(
        None, description="Another policy run's output folder: its eval.jsonl (responses on the same held-out"
        " prompts: same prompts, rl.seed and numPrompts) is judged against this policy's, head to head"
        " (winRateVsOther, oracleDeltaVsOther). It must exist when this run evaluates.")


class PolicyConfig(CamelModel):
    """Everything `python -m rlaif_jobs.policy` needs. Input: SFT model, prompts, reward; output: policy."""

    policy: ModelRef = Field(description="The SFT policy; also the frozen KL reference and value init.")
    prompts: DatasetRef = Field(description="Prompts to roll out on (field: prompt).")
    reward_model_uri: Uri | None = Field(None, description="A reward model folder (canonical RLAIF).")
    direct_reward: DirectRewardSpec | None = Field(None, description="Labeler scoring (d-RLAIF).")
    oracle_reward: OracleRewardSpec | None = Field(None, description="Ground-truth reward (the RL ceiling check).")
    preferences_uri: Uri | None = Field(
        None, description="rl.algorithm dpo only, instead of a reward: a labels file (the labeling stage's"
        " labels.jsonl or .parquet: context, responseA, responseB, pA); the policy trains on it directly.")
    rl: RLSpec = Field(default_factory=RLSpec)
    rollout: RolloutSpec = Field(default_factory=RolloutSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    tracking: TrackingSpec = Field(
        default_factory=TrackingSpec, description="Experiment tracking besides <output>/metrics.jsonl: TensorBoard"
        " (on by default), MLflow, Weights & Biases.")
    output: OutputSpec

    @model_validator(mode="after")
    def _one_reward(self) -> PolicyConfig:
        rewards = sum(x is not None for x in (self.reward_model_uri, self.direct_reward, self.oracle_reward))
        if self.rl.algorithm == "dpo":
            if rewards:
                raise ValueError(DPO_WITH_REWARD.format(field="rewardModelUri, directReward, oracleReward"))
            if self.preferences_uri is None:
                raise ValueError("preferencesUri: rl.algorithm dpo trains on preference labels; set preferencesUri"
                                 " to a labeling stage's labels file (or choose an RL algorithm and a reward)")
        elif self.preferences_uri is not None:
            raise ValueError(PREFERENCES_WITHOUT_DPO.format(field="preferencesUri"))
        elif rewards != 1:
            raise ValueError("set exactly one of rewardModelUri, directReward and oracleReward")
        if self.evaluation.enabled and self.evaluation.judge is None and self.direct_reward is None:
            raise ValueError(NO_JUDGE)
        return self

    def judge_spec(self) -> LabelerSpec:
        """Who judges the evaluation: evaluation.judge, else the d-RLAIF labeler (the one rule; the
        operator's pipeline builder fills evaluation.judge with the labeling stage's labeler).
        ConfigError (naming evaluation.judge) when there is none."""
        judge = self.evaluation.judge or (self.direct_reward.labeler if self.direct_reward is not None else None)
        if judge is None:  # the validator refuses this at parse time; kept for configs built in code
            raise ConfigError(NO_JUDGE)
        return judge


DPO_WITH_REWARD = ("{field}: rl.algorithm dpo trains on preference labels, not against a reward; remove the"
                   " reward and set the preferences, or choose reinforce, rloo or ppo to use the reward")
PREFERENCES_WITHOUT_DPO = ("{field}: only rl.algorithm dpo trains on preferences; set rl.algorithm: dpo (and no"
                           " reward), or remove the preferences and give a reward")
NO_JUDGE = ("evaluation.judge: evaluation is enabled (the default) but there is no judge; set evaluation.judge"
            " (an LLM, ideally of another model family than the labeler), run the policy inside a pipeline"
            " with a labeling stage (its labeler judges), or set evaluation.enabled: false")
