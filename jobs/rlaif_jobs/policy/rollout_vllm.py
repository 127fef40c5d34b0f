"""Batched rollouts through vLLM, with the policy's new weights pushed into the engine after each update.

How the weights get there. vLLM 0.32's workers have ``reload_weights(weights_iterator=...)``: it runs
the model's own ``load_weights`` (HF checkpoint names in, vLLM's fused q/k/v and gate/up layouts out)
and then the same post-load processing as at start-up (the CPU backend repacks linear weights for its
kernels, which is why copying into ``model.parameters()`` directly fails there). We reach the worker
through ``LLM.collective_rpc`` and a small worker extension (``WeightSyncExtension`` below, named by
import path in ``worker_extension_cls``):

- in-process engine core (the default here: ``VLLM_ENABLE_V1_MULTIPROCESSING=0``), the trainer's
  tensors are handed over by reference; the cost is vLLM's copy/repack of each weight, nothing is
  serialised. This is also how TRL's "colocate" mode syncs.
- engine core in a child process (when the environment turns multiprocessing on), tensors would go
  through vLLM's msgpack RPC, which does not carry them as tensors; we send one safetensors blob
  instead (a serialise + copy of the whole model per update).

The cost is measured per step (``syncSeconds`` in metrics.jsonl) and reported in the summary.

With several training ranks (torchrun), each rank runs its own engine on its own prompts; vLLM then
uses the ``external_launcher`` executor so it joins the trainer's process group instead of creating
one (TRL's colocate set-up). Under ZeRO-3 the weights are gathered layer by layer before the push.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Iterable
from typing import Any

from rlaif_jobs import kvcache
from rlaif_jobs.policy.rollout import Generation, cut_at_eos, eos_ids
from rlaif_jobs.vllm_support import close_llm, cpu_defaults

log = logging.getLogger(__name__)
EXTENSION = "rlaif_jobs.policy.rollout_vllm.WeightSyncExtension"


class WeightSyncExtension:
    """Mixed into vLLM's worker class (``worker_extension_cls``): one RPC that reloads the weights."""

    def rlaif_load_weights(self, payload: Any) -> int:
        """``payload``: {HF name: tensor}, or the same as safetensors bytes; returns tensors loaded."""
        if isinstance(payload, (bytes, bytearray, memoryview)):
            from safetensors.torch import load

            payload = load(bytes(payload))
        self.model_runner.reload_weights(weights_iterator=list(payload.items()))  # type: ignore[attr-defined]
        return len(payload)


class RolloutEngineError(RuntimeError):
    """vLLM cannot serve this policy here (not installed, unsupported model or platform)."""


class VLLMRollout:
    """A vLLM engine holding a copy of the policy; ``load_weights`` keeps it equal to the trainer's."""

    name = "vllm"
    needs_sync = True

    def __init__(self, model_path: str, tokenizer: Any, dtype: str, max_model_len: int, seed: int = 0,
                 gpu_memory_utilization: float = 0.3, world_size: int = 1, max_sequences: int = 16):
        cpu_defaults()
        try:
            from vllm import LLM
            from vllm.platforms import current_platform
        except Exception as err:  # ImportError, or a broken install (e.g. torchvision operators)
            raise RolloutEngineError(f"importing vllm failed ({type(err).__name__}: {err})") from None
        self.on_cpu = current_platform.is_cpu()
        self.tokenizer = tokenizer
        kwargs: dict[str, Any] = dict(
            model=model_path, tokenizer=model_path, dtype=dtype, seed=seed, max_model_len=max_model_len,
            enforce_eager=self.on_cpu, enable_prefix_caching=True, worker_extension_cls=EXTENSION)
        if not self.on_cpu:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        elif not kvcache.user_set():
            # one step's sequences at full length (the samples of a prompt share its cached blocks);
            # a bigger batch (evaluation) is scheduled in waves. vLLM-CPU's fixed default was 2-4 GiB.
            kv = kvcache.kv_cache_bytes(model_path, dtype, max_model_len * max(1, max_sequences))
            if kv is not None:
                kwargs["kv_cache_memory_bytes"] = kv
        if world_size > 1:
            kwargs["distributed_executor_backend"] = "external_launcher"
        try:
            self.llm: Any = LLM(**kwargs)
        except Exception as err:
            first = str(err).splitlines()[0] if str(err) else ""
            raise RolloutEngineError(f"vLLM cannot load the policy ({type(err).__name__}: {first})") from err
        self.in_process = os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING", "1") == "0" or world_size > 1
        from transformers import GenerationConfig

        try:
            gen_cfg = GenerationConfig.from_pretrained(model_path)
        except OSError:
            gen_cfg = None
        self.stop = eos_ids(tokenizer, gen_cfg)

    def generate(self, prompt_ids: list[list[int]], n: int, max_new_tokens: int, temperature: float,
                 top_p: float, seed: int) -> list[list[Generation]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        # One request per sample, each with its own seed: vLLM gives the n children of a seeded request
        # the same random stream (identical samples), which would leave RLOO's group without variety.
        # The prompt's KV cache is still computed once (prefix caching).
        # Seeds are drawn from a generator seeded once per call: vLLM-CPU gave equal samples for
        # consecutive seeds (s, s + 1) in our trials.
        prompts = [TokensPrompt(prompt_token_ids=list(p)) for p in prompt_ids for _ in range(n)]
        seeds = random.Random(seed).sample(range(1, 2**31 - 1), len(prompts))
        params = [SamplingParams(n=1, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
                                 seed=s, stop_token_ids=sorted(self.stop), detokenize=False) for s in seeds]
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        samples = []
        for out in outputs:
            tokens, finished = cut_at_eos(list(out.outputs[0].token_ids), self.stop)
            samples.append(Generation(tokens, self.tokenizer.decode(tokens, skip_special_tokens=True), finished))
        return [samples[i * n:(i + 1) * n] for i in range(len(prompt_ids))]

    def load_weights(self, named: Iterable[tuple[str, Any]]) -> float:
        """Pushes the weights into the engine (see the module docstring); returns the seconds taken."""
        start = time.perf_counter()
        weights = {name: tensor.detach() for name, tensor in named}
        if self.in_process:
            payload: Any = weights
        else:
            from safetensors.torch import save

            blob, seen = {}, set()
            for name, tensor in weights.items():
                cpu = tensor.contiguous().cpu()
                if cpu.data_ptr() in seen:  # a tied weight: safetensors refuses shared storage
                    cpu = cpu.clone()
                seen.add(cpu.data_ptr())
                blob[name] = cpu
            payload = save(blob)
        self.llm.collective_rpc("rlaif_load_weights", args=(payload,))
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights
        return time.perf_counter() - start

    def close(self) -> None:

        llm, self.llm = getattr(self, "llm", None), None
        close_llm(llm)
