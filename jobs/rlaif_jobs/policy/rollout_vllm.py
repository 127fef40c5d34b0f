"""Batched rollouts through vLLM, with the policy's new weights pushed into the engine after each update.

How the weights get there. vLLM 0.32's ``Worker`` (the GPU worker, and ``CPUWorker`` which subclasses
it) has a public ``reload_weights(weights_iterator=...)``: it runs the model's own ``load_weights`` (HF
checkpoint names in, vLLM's fused q/k/v and gate/up layouts out) and then the same post-load
processing as at start-up (the CPU backend repacks linear weights for its kernels, which is why copying
into ``model.parameters()`` directly fails there). We reach the worker through ``LLM.collective_rpc``
and a small worker extension (``WeightSyncExtension`` below, named by import path in
``worker_extension_cls``: vLLM's documented way to add RPC methods to its workers, the one its RLHF
examples used, ``examples/offline_inference/rlhf_utils.py``) that only decodes the payload and calls
the worker's own ``reload_weights``. vLLM's newer weight-transfer API (``weight_transfer_config`` with
the ``nccl`` or ``ipc`` backend, ``examples/rl/rlhf_ipc.py``) moves tensors by NCCL or CUDA IPC: CUDA
only, so it cannot be the one code path for vLLM-CPU and CUDA that this keeps.

- in-process engine core (the default here: ``VLLM_ENABLE_V1_MULTIPROCESSING=0``), the trainer's
  tensors are handed over by reference; the cost is vLLM's copy/repack of each weight, nothing is
  serialised. This is also how TRL's "colocate" mode syncs.
- engine core in a child process (when the environment turns multiprocessing on), tensors would go
  through vLLM's msgpack RPC, which does not carry them as tensors; we send one safetensors blob
  instead (a serialise + copy of the whole model per update).

The cost is measured per step (``syncSeconds`` in metrics.jsonl) and reported in the summary.

Sleep mode (``rollout.sleepMode``): where the trainer and vLLM share a GPU, the engine sleeps (level 1:
weights offloaded to host memory, KV cache dropped) from the end of the rollouts to the next weight
sync, so the update has the GPU memory vLLM held; ``load_weights`` (and ``generate``) wake it first, so
the sync writes into awake weights. vLLM's sleep mode needs CUDA: ``on`` is refused elsewhere, ``auto``
is off there and says so in the summary (``rollout.sleepMode: "off (cpu)"``).

With several training ranks (torchrun), each rank runs its own engine on its own prompts; vLLM then
uses the ``external_launcher`` executor so it joins the trainer's process group instead of creating
one (TRL's colocate set-up). Under ZeRO-3 the weights are gathered layer by layer before the push.

A LoRA policy (``rl.lora``) is served with vLLM's LoRA support instead (``lora_rank``: the engine starts
with ``enable_lora``): each sync writes the adapter (a few MB) to a fresh folder and the next requests
carry a new ``LoRARequest`` id, so vLLM loads it and drops the old one; the base weights never move.
``load_weights`` still means "sample from exactly these weights": it also switches the adapter off
(the evaluation's SFT responses). vLLM-CPU 0.32 serves LoRA on Llama-style models (greedy outputs equal
transformers' on the same adapter: tests/jobs/policy/test_policy_lora.py).
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Iterable
from typing import Any, Protocol, cast

from rlaif_jobs import kvcache
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.policy.rollout import Generation, cut_at_eos, eos_ids
from rlaif_jobs.vllm_support import close_llm, cpu_defaults

log = logging.getLogger(__name__)
EXTENSION = "rlaif_jobs.policy.rollout_vllm.WeightSyncExtension"
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # the max_lora_rank values vLLM accepts


class _ReloadingWorker(Protocol):
    """What WeightSyncExtension needs of the worker it is mixed into (vLLM's ``Worker.reload_weights``)."""

    def reload_weights(self, weights_iterator: Any = None) -> None: ...


def resolve_sleep_mode(mode: str, on_cuda: bool) -> tuple[bool, str]:
    """(sleep between rollouts and sync?, the summary's note) for ``rollout.sleepMode`` on this platform.

    ``auto``: on with CUDA, else off with a note saying why; ``on`` without CUDA: ConfigError naming the field.
    """
    if mode == "off":
        return False, "off"
    if on_cuda:
        return True, "on" if mode == "on" else "on (auto: cuda)"
    if mode == "on":
        raise ConfigError("rollout.sleepMode: on needs CUDA (vLLM's sleep mode frees GPU memory and exists only"
                          " on CUDA); this rollout engine runs on CPU: use auto or off")
    return False, "off (cpu)"


class WeightSyncExtension:
    """Mixed into vLLM's worker class (``worker_extension_cls``): one RPC that reloads the weights."""

    def rlaif_load_weights(self, payload: Any) -> int:
        """``payload``: {HF name: tensor}, or the same as safetensors bytes; returns tensors loaded."""
        if isinstance(payload, (bytes, bytearray, memoryview)):
            from safetensors.torch import load

            payload = load(bytes(payload))
        cast(_ReloadingWorker, self).reload_weights(weights_iterator=list(payload.items()))
        return len(payload)


class RolloutEngineError(RuntimeError):
    """vLLM cannot serve this policy here (not installed, unsupported model or platform)."""


class VLLMRollout:
    """A vLLM engine holding a copy of the policy; ``load_weights`` keeps it equal to the trainer's."""

    name = "vllm"
    needs_sync = True

    def __init__(self, model_path: str, tokenizer: Any, dtype: str, max_model_len: int, seed: int = 0,
                 gpu_memory_utilization: float = 0.3, world_size: int = 1, max_sequences: int = 16,
                 lora_rank: int | None = None, sleep_mode: str = "off"):
        cpu_defaults()
        try:
            from vllm import LLM
            from vllm.platforms import current_platform
        except Exception as err:  # ImportError, or a broken install (e.g. torchvision operators)
            raise RolloutEngineError(f"importing vllm failed ({type(err).__name__}: {err})") from None
        self.on_cpu = current_platform.is_cpu()
        self.sleeps, self.sleep_note = resolve_sleep_mode(sleep_mode, current_platform.is_cuda())
        self.asleep = False
        self.tokenizer = tokenizer
        kwargs: dict[str, Any] = dict(
            model=model_path, tokenizer=model_path, dtype=dtype, seed=seed, max_model_len=max_model_len,
            enforce_eager=self.on_cpu, enable_prefix_caching=True, worker_extension_cls=EXTENSION)
        self.serves_lora = lora_rank is not None  # load_adapter works
        self.lora_request: Any = None  # what requests carry: the current adapter, None for the base weights
        self.lora_versions = 0
        self.lora_dir: str | None = None
        if lora_rank is not None:
            kwargs.update(enable_lora=True, max_loras=1,
                          max_lora_rank=next((r for r in LORA_RANKS if r >= lora_rank), LORA_RANKS[-1]))
        if not self.on_cpu:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        if self.sleeps:
            kwargs["enable_sleep_mode"] = True
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

        self.wake_up()
        # One request per sample, each with its own seed: vLLM gives the n children of a seeded request
        # the same random stream (identical samples), which would leave RLOO's group without variety.
        # The prompt's KV cache is still computed once (prefix caching).
        # Seeds are drawn from a generator seeded once per call: vLLM-CPU gave equal samples for
        # consecutive seeds (s, s + 1) in our trials.
        prompts = [TokensPrompt(prompt_token_ids=list(p)) for p in prompt_ids for _ in range(n)]
        seeds = random.Random(seed).sample(range(1, 2**31 - 1), len(prompts))
        params = [SamplingParams(n=1, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
                                 seed=s, stop_token_ids=sorted(self.stop), detokenize=False) for s in seeds]
        outputs = self.llm.generate(prompts, params, use_tqdm=False, lora_request=self.lora_request)
        samples = []
        for out in outputs:
            tokens, finished = cut_at_eos(list(out.outputs[0].token_ids), self.stop)
            samples.append(Generation(tokens, self.tokenizer.decode(tokens, skip_special_tokens=True), finished))
        return [samples[i * n:(i + 1) * n] for i in range(len(prompt_ids))]

    def load_weights(self, named: Iterable[tuple[str, Any]]) -> float:
        """Pushes the weights into the engine (see the module docstring); returns the seconds taken."""
        start = time.perf_counter()
        self.wake_up()  # the sync writes into awake weights
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
        self._drop_adapter()  # these weights are the whole model: no adapter on top
        self.llm.reset_prefix_cache()  # cached KV blocks were computed with the old weights
        return time.perf_counter() - start

    def load_adapter(self, tensors: dict[str, Any], peft_config: Any) -> float:
        """Samples from the base model plus this LoRA adapter from now on (PEFT's adapter_model keys and
        its LoraConfig): written to a fresh folder, served under a new LoRARequest id. Returns seconds."""
        from safetensors.torch import save_file
        from vllm.lora.request import LoRARequest

        start = time.perf_counter()
        self.wake_up()
        if self.lora_dir is None:
            self.lora_dir = tempfile.mkdtemp(prefix="rlaif-lora-")
        self.lora_versions += 1
        folder = os.path.join(self.lora_dir, f"v{self.lora_versions}")
        os.makedirs(folder)
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()},
                  os.path.join(folder, "adapter_model.safetensors"), metadata={"format": "pt"})
        peft_config.save_pretrained(folder)
        self._drop_adapter()
        self.lora_request = LoRARequest(f"policy-v{self.lora_versions}", self.lora_versions, folder)
        self.llm.reset_prefix_cache()
        return time.perf_counter() - start

    def sleep(self) -> None:
        """Frees the engine's GPU memory until the next sync or generate (``sleeps``: sleep mode on), level 1:
        weights to host memory, KV cache dropped. A no-op when sleep mode is off or it already sleeps."""
        if self.sleeps and not self.asleep:
            self.llm.sleep(level=1)
            self.asleep = True

    def wake_up(self) -> None:
        """Restores what ``sleep`` freed; a no-op when awake."""
        if self.asleep:
            self.llm.wake_up()
            self.asleep = False

    def _drop_adapter(self) -> None:
        old, self.lora_request = self.lora_request, None
        if old is None:
            return
        try:
            self.llm.llm_engine.remove_lora(old.lora_int_id)
        except Exception as err:  # never loaded, or evicted already (max_loras=1): nothing to free
            log.debug("remove_lora(%s): %s", old.lora_int_id, err)
        shutil.rmtree(old.lora_path, ignore_errors=True)

    def close(self) -> None:

        llm, self.llm = getattr(self, "llm", None), None
        close_llm(llm)
        if getattr(self, "lora_dir", None):
            shutil.rmtree(str(self.lora_dir), ignore_errors=True)
