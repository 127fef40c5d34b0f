"""The in-process vLLM engine: offline ``vllm.LLM``, batched, automatic prefix caching per the spec.

Scoring asks vLLM for the log-probabilities of exactly the candidate tokens (``logprob_token_ids``,
computed from the raw logits over the full vocabulary), so a label never depends on whether "2" was
among the top-k alternatives. The prompt is handed over as token ids, encoded once by our tokenizer,
so scoring and generation see the same tokens.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rlaif_jobs import kvcache, progress
from rlaif_jobs.config.label import LabelerSpec
from rlaif_jobs.feedback.engines.base import (
    EngineError,
    EngineLoadError,
    Query,
    encode_continuation,
    encode_prompt,
    token_continuation_logprobs,
)
from rlaif_jobs.feedback.engines.loading import load_tokenizer, resolve_checked, resolve_weights
from rlaif_jobs.vllm_support import close_llm, cpu_defaults

log = logging.getLogger(__name__)


CONCURRENT_SEQUENCES = 4  # max-length prompts the CPU KV cache holds at once (scoring is prefill-bound)


def _block_size(on_cpu: bool) -> int | None:
    """KV-cache block size: the prefix cache reuses whole blocks only, and vLLM-CPU's default (128)
    leaves most of a ~150-token labeling prompt uncached; 32 is the smallest the CPU backend accepts
    and made scoring ~3x faster there. GPUs keep vLLM's default (16). RLAIF_VLLM_BLOCK_SIZE overrides."""
    if os.environ.get("RLAIF_VLLM_BLOCK_SIZE"):
        return int(os.environ["RLAIF_VLLM_BLOCK_SIZE"])
    return 32 if on_cpu else None


class VLLMEngine:
    """A labeler served by an offline ``vllm.LLM`` in this process (its engine core may be a child)."""

    def __init__(self, spec: LabelerSpec) -> None:
        path = resolve_weights(spec.model)
        self.model_name = spec.model.uri
        self.tokenizer = load_tokenizer(spec.model, path)
        cpu_defaults()
        try:
            from vllm import LLM
            from vllm.platforms import current_platform
        except Exception as err:  # ImportError, or a broken install (torchvision operators)
            raise EngineLoadError(f"the vllm engine cannot start: importing vllm failed ({err})") from None
        on_cpu = current_platform.is_cpu()
        kwargs: dict[str, Any] = dict(
            model=path,
            tokenizer=spec.model.tokenizer and resolve_checked(spec.model, spec.model.tokenizer),
            revision=spec.model.revision,
            dtype=spec.model.dtype,
            trust_remote_code=spec.model.trust_remote_code,
            max_model_len=spec.max_model_len,
            tensor_parallel_size=spec.tensor_parallel_size,
            enable_prefix_caching=spec.enable_prefix_caching,
            enforce_eager=on_cpu,  # CUDA graphs do not exist on CPU; eager was fastest there
            block_size=_block_size(on_cpu),
            seed=0,
        )
        if not on_cpu:
            kwargs["gpu_memory_utilization"] = spec.gpu_memory_utilization
        elif not kvcache.user_set():
            # KV cache sized to the work: a few max-length prompts (the shared preamble's blocks stay
            # cached across calls); vLLM-CPU's fixed 2 GiB was a quarter of the labeling stage's memory.
            kwargs["kv_cache_memory_bytes"] = kvcache.kv_cache_bytes(
                path, spec.model.dtype, spec.max_model_len * CONCURRENT_SEQUENCES, _block_size(on_cpu) or 16)
        try:
            self.llm: Any = LLM(**{k: v for k, v in kwargs.items() if v is not None})
        except Exception as err:  # vLLM raises many types for a model it cannot load
            raise EngineLoadError(f"labeler model {spec.model.uri}: vLLM cannot load it "
                                  f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
                                  ) from err
        self.max_model_len = spec.max_model_len
        self.prompt_tokens = 0  # prompt tokens sent so far, and how many of them the prefix cache served
        self.cached_tokens = 0

    # -- scoring ---------------------------------------------------------------------------------
    def _next_token_logprobs(self, queries: list[Query]) -> list[dict[int, float]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=ids) for ids, _ in queries]
        params = [SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=wanted, detokenize=False)
                  for _, wanted in queries]
        outputs = self._run(prompts, params)
        answers = []
        for out, (_, wanted) in zip(outputs, queries, strict=True):
            step = out.outputs[0].logprobs[0] if out.outputs[0].logprobs else {}
            answers.append({t: float(step[t].logprob) for t in wanted if t in step})
        return answers

    def continuation_logprobs(self, prompts: list[str], continuations: list[str]) -> list[list[float | None]]:
        prompt_ids = [encode_prompt(self.tokenizer, p) for p in prompts]
        cont_ids = [encode_continuation(self.tokenizer, c) for c in continuations]
        return token_continuation_logprobs(prompt_ids, cont_ids, self._next_token_logprobs)

    # -- generation ------------------------------------------------------------------------------
    def generate(self, prompts: list[str], max_tokens: int, temperature: float = 0.0, top_k: int = 0,
                 seed: int = 0) -> list[tuple[str, int]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        batch = [TokensPrompt(prompt_token_ids=encode_prompt(self.tokenizer, p)) for p in prompts]
        params = SamplingParams(max_tokens=max_tokens, temperature=temperature, top_k=top_k if temperature else 0,
                                seed=seed if temperature else None)
        outputs = self._run(batch, params, "generating")
        return [(o.outputs[0].text, len(o.outputs[0].token_ids)) for o in outputs]

    def _run(self, prompts: list, params: Any, phase: str = "scoring") -> list:
        if not prompts:
            return []
        try:
            # progress within one long call, for the console ("scoring 40/96 prompts")
            outputs = self.llm.generate(prompts, params, use_tqdm=progress.tqdm_class(phase, "prompts"))
        except Exception as err:
            raise EngineError(f"vLLM failed: {type(err).__name__}: {err}") from err
        for out in outputs:
            self.prompt_tokens += len(out.prompt_token_ids or [])
            self.cached_tokens += out.num_cached_tokens or 0
        return outputs

    def prefix_cache_hit_rate(self) -> float | None:
        """Share of prompt tokens served from the prefix cache so far (None before any prompt)."""
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else None

    def close(self) -> None:
        llm, self.llm = getattr(self, "llm", None), None
        close_llm(llm)
