"""The feedback engines: one interface over the LLM that gives AI feedback (labels, rewards, verdicts).

``open_engine(spec)`` returns an ``Engine`` for ``spec.engine``: ``vllm`` (in-process offline vLLM),
``openai`` (an OpenAI-compatible endpoint) or ``transformers`` (plain transformers). See base.py for
the interface's contract. Engines are heavy (a model in memory): open one, reuse it, ``close()`` it.
(``rlaif_jobs.train.build_engine`` is something else: the DeepSpeed training engine.)
"""

from __future__ import annotations

from rlaif_jobs.config.label import LabelerSpec
from rlaif_jobs.feedback.engines.base import Engine, EngineError, EngineLoadError


def open_engine(spec: LabelerSpec) -> Engine:
    """Loads the labeler named by ``spec``; raises EngineLoadError (one line) if it cannot."""
    if spec.engine == "vllm":
        from rlaif_jobs.feedback.engines.vllm_engine import VLLMEngine

        return VLLMEngine(spec)
    if spec.engine == "openai":
        from rlaif_jobs.feedback.engines.openai_engine import OpenAIEngine

        return OpenAIEngine(spec)
    if spec.engine == "transformers":
        from rlaif_jobs.feedback.engines.hf_engine import TransformersEngine

        return TransformersEngine(spec)
    raise EngineLoadError(f"unknown labeler engine {spec.engine!r}; use vllm, openai or transformers")


__all__ = ["Engine", "EngineError", "EngineLoadError", "LabelerSpec", "open_engine"]
