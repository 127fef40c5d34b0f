"""Config of the labeling workload (stage 1): which LLM labels, how it is prompted, where labels go.

Every knob of the paper's labeling method is here: preamble variant, few-shot exemplars, two-step
chain-of-thought, both candidate orders, and the labeler's engine (in-process vLLM, an
OpenAI-compatible endpoint, or plain transformers).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rlaif_jobs.config.base import CamelModel
from rlaif_jobs.config.common import DatasetRef, ModelRef, OutputSpec, SecretKeyRef

Engine = Literal["vllm", "openai", "transformers"]
Task = Literal["summarization", "helpful", "harmless", "custom"]


class EndpointSpec(CamelModel):
    """An OpenAI-compatible endpoint (a vLLM server or a hosted model), reached with the openai SDK."""

    url: str = Field(min_length=1, description="Base URL, e.g. http://labeler:8000/v1.")
    api: Literal["completions", "chat"] = Field(
        "completions", description="completions: /v1/completions with logprobs; the prompt is sent as text,"
        " in the chat template when useChatTemplate (vLLM, and servers of base models). chat:"
        " /v1/chat/completions with top_logprobs; the prompt goes as one user message, the server applies"
        " the model's chat template (useChatTemplate is then moot), and only the first answer token is read"
        " (most hosted models)."
    )
    served_model: str | None = Field(None, description="Model name the server expects; default: model.uri.")
    api_key_secret: SecretKeyRef | None = Field(
        None, description="Secret holding the API key; the pod gets it in a variable of its own (rlaif_jobs.apikeys)."
    )
    max_concurrency: int = Field(8, ge=1, le=1024, description="Requests in flight at once.")
    timeout_seconds: float = Field(60.0, gt=0, description="Per-request timeout.")
    max_retries: int = Field(5, ge=0, le=20, description="Retries on 408, 409, 429, 5xx, timeouts and dropped"
                             " connections, with backoff (Retry-After honoured).")
    top_logprobs: int = Field(
        20, ge=1, le=20, description="Alternatives per position the endpoint returns (logprobs with"
        " completions, top_logprobs with chat; vLLM and OpenAI allow 20, some hosted APIs 5); a candidate"
        " token outside them is unknown: the pair abstains, a d-RLAIF score counts it as probability 0."
    )


class LabelerSpec(CamelModel):
    """The off-the-shelf LLM that judges, and the engine that serves it."""

    model_config = {**CamelModel.model_config, "json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "!has(self.engine) || self.engine != 'openai' || has(self.endpoint)",
         "message": "endpoint is required when engine is 'openai': set endpoint.url"}]}}

    model: ModelRef = Field(description="The labeler LLM.")
    engine: Engine = Field("vllm", description="vllm (in-process), openai (an endpoint) or transformers.")
    endpoint: EndpointSpec | None = Field(None, description="Required when engine is openai.")
    use_chat_template: bool = Field(True, description="Wrap the prompt in the model's chat template (with"
                                    " endpoint.api chat the server does, whatever this says).")
    max_model_len: int = Field(4096, ge=128, description="Context length the engine reserves.")
    batch_size: int = Field(64, ge=1, description="Prompts per engine call.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one vLLM engine spans.")
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1, description="vLLM's share of GPU memory.")
    enable_prefix_caching: bool = Field(True, description="Reuse the KV cache of the shared preamble.")

    @property
    def api(self) -> str:
        """How prompts reach the model: "chat" for an openai engine on endpoint.api chat, else "completions"."""
        return self.endpoint.api if self.engine == "openai" and self.endpoint is not None else "completions"

    @model_validator(mode="after")
    def _endpoint_for_openai(self) -> LabelerSpec:
        if self.engine == "openai" and self.endpoint is None:
            raise ValueError("endpoint is required when engine is 'openai': set endpoint.url")
        return self


class Exemplar(CamelModel):
    """A few-shot example shown to the labeler before the sample."""

    context: str = Field(description="The text or conversation.")
    response_a: str = Field(description="Candidate shown as 1.")
    response_b: str = Field(description="Candidate shown as 2.")
    preferred: Literal[1, 2] = Field(description="Which candidate is better.")
    rationale: str | None = Field(None, description="Why, shown when chain-of-thought is on.")


class CustomTemplate(CamelModel):
    """A user-written prompt; {context}, {response1} and {response2} are filled in."""

    model_config = {**CamelModel.model_config, "json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "self.sample.contains('{context}') && self.sample.contains('{response1}')"
                 " && self.sample.contains('{response2}')",
         "message": "sample must contain the placeholders {context}, {response1} and {response2}"}]}}

    preamble: str = Field(min_length=1, description="Task description for the labeler.")
    sample: str = Field(
        min_length=1, description="Sample block with {context}, {response1} and {response2} placeholders."
    )
    ending: str = Field("Preferred Response=", min_length=1, description="Text after which 1 or 2 is scored.")
    asks: Literal["better", "worse"] = Field(
        "better", description="Which candidate the question asks for. 'worse' (e.g. 'which response is more"
        " harmful?', the paper's harmlessness wording) inverts the answer, so the label is still"
        " P(response 1 is better).")

    @model_validator(mode="after")
    def _placeholders(self) -> CustomTemplate:
        missing = [p for p in ("{context}", "{response1}", "{response2}") if p not in self.sample]
        if missing:
            raise ValueError(f"sample must contain the placeholders {', '.join(missing)}")
        return self


class ChainOfThought(CamelModel):
    """Two-step labeling: decode a rationale (greedy by default), then score 1/2 after it.

    Self-consistency (paper, App. M): ``samples`` rationales sampled at ``temperature`` (top-K
    ``topK``), each scored, and the preference distributions averaged. The paper found it lowered
    alignment; one greedy rationale stays the default.
    """

    model_config = {**CamelModel.model_config, "json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "!has(self.samples) || self.samples == 1 || (has(self.temperature) && self.temperature > 0)",
         "message": "samples > 1 (self-consistency) needs temperature > 0: greedy rationales are all the same"}]}}

    enabled: bool = Field(False, description="Ask for a rationale before the answer.")
    max_tokens: int = Field(512, ge=1, le=8192, description="Rationale length cap (paper: 512).")
    temperature: float = Field(0.0, ge=0, le=2, description="0 is greedy, the paper's choice.")
    samples: int = Field(1, ge=1, le=64, description="Rationales per pair and order; above 1 is"
                         " self-consistency (paper: 4 or 16 at temperature 0.3-1.0), needs temperature > 0.")
    top_k: int = Field(40, ge=0, le=100000, description="Sample rationales from the K most likely tokens"
                       " (paper: 40) when temperature > 0; 0 is the whole vocabulary.")

    @model_validator(mode="after")
    def _sampling_for_self_consistency(self) -> ChainOfThought:
        if self.samples > 1 and self.temperature <= 0:
            raise ValueError(f"samples {self.samples} (self-consistency) needs temperature > 0: greedy"
                             " rationales are all the same; set chainOfThought.temperature, e.g. 0.7, or samples: 1")
        return self


class PromptSpec(CamelModel):
    """How the labeler is asked: the paper's four-part prompt."""

    model_config = {**CamelModel.model_config, "json_schema_extra": {"x-kubernetes-validations": [
        {"rule": "!has(self.task) || self.task != 'custom' || has(self.template)",
         "message": "template is required when task is 'custom'"}]}}

    task: Task = Field("summarization", description="Which task wording to use; custom needs template.")
    preamble: Literal["base", "detailed"] = Field("base", description="Base asks which is better; detailed"
                                                  " gives full rater instructions.")
    template: CustomTemplate | None = Field(None, description="The prompt when task is custom.")
    few_shot: list[Exemplar] = Field(default_factory=list, description="Exemplars before the sample.")
    chain_of_thought: ChainOfThought = Field(default_factory=ChainOfThought, description="Two-step CoT.")
    both_orders: bool = Field(True, description="Label each pair in both orders and average (position bias).")
    task_from_record: bool = Field(
        True, description="Use a record's own task field (summarization, helpful, harmless) for its wording"
        " when it has one, so one dataset can mix tasks; task applies to the rest. Ignored for custom."
    )

    @model_validator(mode="after")
    def _template_for_custom(self) -> PromptSpec:
        if self.task == "custom" and self.template is None:
            raise ValueError("template is required when task is 'custom'")
        return self


class LabelConfig(CamelModel):
    """Everything `python -m rlaif_jobs.label` needs. Input: pairs; output: soft labels + summary."""

    labeler: LabelerSpec
    dataset: DatasetRef
    prompt: PromptSpec = Field(default_factory=PromptSpec)
    output: OutputSpec
    output_format: Literal["jsonl", "parquet"] = Field("jsonl", description="Labels file format.")
    num_shards: int = Field(1, ge=1, le=10000, description="Pods that label disjoint slices.")
    shard_index: int | None = Field(
        None, ge=0, description="This process's slice; default JOB_COMPLETION_INDEX or 0."
    )

    @model_validator(mode="after")
    def _shard_in_range(self) -> LabelConfig:
        if self.shard_index is not None and self.shard_index >= self.num_shards:
            raise ValueError(f"shardIndex {self.shard_index} must be below numShards {self.num_shards}")
        return self
