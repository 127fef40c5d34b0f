"""The feedback engines: one interface over the LLM that gives AI feedback (labels, rewards, verdicts).

``open_engine(spec)`` returns an ``Engine`` for ``spec.engine``: ``vllm`` (in-process offline vLLM),
``openai`` (an OpenAI-compatible endpoint) or ``transformers`` (plain transformers). See base.py for
the interface's contract. Engines are heavy (a model in memory): open one, reuse it, ``close()`` it.
(``rlaif_jobs.train.build_engine`` is something else: the DeepSpeed training engine.)
"""

from __future__ import annotations

from rlaif_jobs.config.label import LabelerSpec
from rlaif_jobs.feedback.engines.base import EndpointUnavailableError, Engine, EngineError, EngineLoadError


def open_engine(spec: LabelerSpec, where: str = "labeler") -> Engine:
    """Loads the labeler named by ``spec``, the config field ``where`` (e.g. ``evaluation.judge``).

    Raises EngineLoadError (exit 3) when it cannot load, EndpointUnavailableError (exit 1, retried) when
    its endpoint cannot be reached; either message starts with ``where``.
    """
    try:
        return _open(spec, where)
    except EngineLoadError as err:
        raise EngineLoadError(_prefixed(where, err)) from None
    except EndpointUnavailableError as err:
        raise EndpointUnavailableError(_prefixed(where, err)) from None


def _prefixed(where: str, err: Exception) -> str:
    text = str(err)
    return text if text.startswith(where) else f"{where}: {text}"


def _open(spec: LabelerSpec, where: str) -> Engine:
    if spec.engine == "vllm":
        from rlaif_jobs.feedback.engines.vllm_engine import VLLMEngine

        return VLLMEngine(spec)
    if spec.engine == "openai":
        from rlaif_jobs.feedback.engines.openai_engine import OpenAIEngine

        return OpenAIEngine(spec, where)
    if spec.engine == "transformers":
        from rlaif_jobs.feedback.engines.hf_engine import TransformersEngine

        return TransformersEngine(spec)
    raise EngineLoadError(f"unknown labeler engine {spec.engine!r}; use vllm, openai or transformers")


__all__ = ["EndpointUnavailableError", "Engine", "EngineError", "EngineLoadError", "LabelerSpec", "open_engine"]
