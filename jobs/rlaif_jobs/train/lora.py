"""LoRA through PEFT (``lora:`` in the trainers' specs): wrap a model, read its weights back, export it.

``apply_lora(model, spec, field)`` wraps an HF model with low-rank adapters before its DeepSpeed engine
is built: the base weights are frozen, so ``param_groups`` (train/engine.py) gives the optimizer the
adapters only (and, for a reward model, its score head, which PEFT's SEQ_CLS task keeps trainable).
What the rest of a run needs from a wrapped model, without a second copy of the weights:

- ``AdapterOff(peft_model)``: the same model with its adapters switched off (``disable_adapter``), the
  policy's frozen KL reference; its ``state_dict()`` is the base weights under HF names;
- ``merged_state_dict(peft_model)``: W + (alpha / r) B A under HF names, computed without touching the
  model (a rollout engine without LoRA support, the merged export);
- ``save_adapter(peft_model, folder, base_uri)``: the PEFT adapter folder (adapter_config.json,
  adapter_model.safetensors) plus ``base_model.json`` naming the base model (vLLM's LoRARequest reads
  the folder; ``load_adapter_folder`` and ``peft.PeftModel.from_pretrained`` load it back);
- ``export_lora(engine, out, env, tokenizer, spec, base_uri)``: ``<output>/model`` as a merged HF
  folder or as the adapter folder (``lora.export``).

Checkpoints stay DeepSpeed's (train/checkpoint.py): the engine saves the wrapped module (adapters and
frozen base) and the optimizer state of the adapters, so a resumed run continues with both.
Under ZeRO-3 the partitions are gathered (one full copy of the model for a moment), as for a full run.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rlaif_jobs import io
from rlaif_jobs.config.training import ALL_LINEAR, LoraSpec
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.train.dist import DistEnv, barrier

log = logging.getLogger(__name__)
ADAPTER = "default"  # PEFT's name for the one adapter
BASE_NOTE = "base_model.json"  # the adapter export's note of the base model it applies to


def lora_config(spec: LoraSpec, task_type: str | None) -> Any:
    from peft import LoraConfig

    targets: list[str] | str = ALL_LINEAR if spec.target_modules == [ALL_LINEAR] else list(spec.target_modules)
    alpha: Any = spec.alpha  # PEFT types it int; a float scales alike (alpha / r)
    return LoraConfig(r=spec.rank, lora_alpha=alpha, lora_dropout=spec.dropout, target_modules=targets,
                      bias="none", task_type=task_type)


def apply_lora(model: Any, spec: LoraSpec, field: str, task_type: str | None = "CAUSAL_LM") -> Any:
    """``model`` wrapped with LoRA adapters (a PeftModel; only the adapters require grad). ``field`` is
    the config path named in errors (``rl.lora``). ``task_type`` None: adapters injected into a plain
    module (the value model's backbone), which is returned itself. ConfigError for unknown targets."""
    from peft import get_peft_model, inject_adapter_in_model

    cfg = lora_config(spec, task_type)
    try:
        if task_type is None:
            wrapped = inject_adapter_in_model(cfg, model)
            for name, p in wrapped.named_parameters():
                p.requires_grad_("lora_" in name)
        else:
            wrapped = get_peft_model(model, cfg)
    except ValueError as err:
        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if _is_linear(m)})
        raise ConfigError(f"{field}.targetModules: {' '.join(str(err).split())[:300]}; this model's linear layers"
                          f" are {names} (or use [all-linear])") from None
    trainable = sum(p.numel() for p in wrapped.parameters() if p.requires_grad)
    total = sum(p.numel() for p in wrapped.parameters())
    log.info("%s: rank %d adapters on %s: %d trainable parameters of %d (%.2f%%)", field, spec.rank,
             spec.target_modules, trainable, total, 100 * trainable / max(1, total))
    return wrapped


def _is_linear(module: Any) -> bool:
    import torch

    return isinstance(module, torch.nn.Linear)


def is_peft(module: Any) -> bool:
    """Whether ``module`` is a PeftModel (a LoRA-wrapped model)."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(module, PeftModel)


def hf_name(peft_name: str) -> str | None:
    """The HF checkpoint name of a PeftModel state-dict key, or None for a key that is no base weight
    (an adapter's, or the frozen original of a module PEFT trains a copy of)."""
    name = peft_name.removeprefix("base_model.model.")
    if "lora_" in name or ".original_module." in name:
        return None
    return name.replace(".base_layer.", ".").replace(f".modules_to_save.{ADAPTER}.", ".")


@contextlib.contextmanager
def _gathered(module: Any) -> Iterator[None]:
    """Full parameters inside (ZeRO-3 partitions gathered); a no-op otherwise."""
    if any(hasattr(p, "ds_id") for p in module.parameters()):
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(module.parameters())):
            yield
    else:
        yield


def _hf_weights(peft_model: Any) -> dict[str, Any]:
    """The base weights (adapters left out) under HF names, detached; the caller gathers them."""
    out = {}
    for key, tensor in peft_model.state_dict().items():
        name = hf_name(key)
        if name is not None:
            out[name] = tensor.detach()
    return out


def base_state_dict(peft_model: Any) -> dict[str, Any]:
    """The base weights (adapters left out) under HF names; tensors are the model's own, detached."""
    with _gathered(peft_model):
        return _hf_weights(peft_model)


def merged_state_dict(peft_model: Any) -> dict[str, Any]:
    """HF-named weights with every adapter merged (W + scale * B @ A), the model left untouched."""
    from peft.tuners.lora import LoraLayer

    with _gathered(peft_model):
        out = _hf_weights(peft_model)
        for mod_name, module in peft_model.named_modules():
            if isinstance(module, LoraLayer) and ADAPTER in getattr(module, "lora_A", {}):
                name = hf_name(f"{mod_name}.base_layer.weight")
                if name is not None and name in out:
                    base = out[name]
                    delta = module.get_delta_weight(ADAPTER)  # type: ignore[attr-defined]
                    out[name] = (base.float() + delta.detach().float()).to(base.dtype)
        return out


def adapter_state_dict(peft_model: Any) -> dict[str, Any]:
    """The adapters' weights as PEFT saves them (adapter_model.safetensors keys), on the CPU."""
    from peft.utils import get_peft_model_state_dict

    with _gathered(peft_model):
        state = get_peft_model_state_dict(peft_model, adapter_name=ADAPTER)
        return {k: v.detach().cpu().clone().contiguous() for k, v in state.items()}


def save_adapter(peft_model: Any, folder: str | Path, base_uri: str | None = None) -> Path:
    """Writes the PEFT adapter folder (adapter_config.json, adapter_model.safetensors) and, with
    ``base_uri``, base_model.json naming the base model. Rank-local: the caller picks the rank."""
    from safetensors.torch import save_file

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    state = adapter_state_dict(peft_model)
    save_file(state, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    peft_model.peft_config[ADAPTER].save_pretrained(str(out))
    if base_uri is not None:
        (out / BASE_NOTE).write_text(json.dumps({"baseModel": base_uri}, indent=2) + "\n")
    return out


def is_adapter_folder(path: str | Path) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def adapter_base(path: str | Path) -> str | None:
    """The base model an adapter folder applies to: base_model.json's, else PEFT's own record."""
    note = Path(path) / BASE_NOTE
    if note.is_file():
        return str(json.loads(note.read_text())["baseModel"])
    cfg = json.loads((Path(path) / "adapter_config.json").read_text())
    return cfg.get("base_model_name_or_path")


class AdapterOff:
    """The LoRA-wrapped policy with its adapters switched off: the frozen SFT reference, sharing every
    weight with the policy. Quacks like the HF model where the trainer uses one (forward, generate,
    config, parameters, eval/train, state_dict: the base weights under HF names)."""

    def __init__(self, peft_model: Any):
        self.model = peft_model

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.model.disable_adapter():
            return self.model(*args, **kwargs)

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        with self.model.disable_adapter():
            return self.model.generate(*args, **kwargs)

    @property
    def forward(self) -> Any:  # what packing inspects for position_ids: the base model's signature
        return self.model.get_base_model().forward

    @property
    def config(self) -> Any:
        return self.model.get_base_model().config

    @property
    def generation_config(self) -> Any:
        return getattr(self.model.get_base_model(), "generation_config", None)

    @property
    def training(self) -> bool:
        return bool(self.model.training)

    def parameters(self) -> Any:
        return self.model.parameters()

    def eval(self) -> AdapterOff:
        self.model.eval()
        return self

    def train(self, mode: bool = True) -> AdapterOff:
        self.model.train(mode)
        return self

    def state_dict(self) -> dict[str, Any]:
        return base_state_dict(self.model)


def export_lora(engine: Any, out_dir: str | Path, env: DistEnv, tokenizer: Any, spec: LoraSpec,
                base_uri: str) -> Path:
    """``out_dir`` as lora.export says: a merged HF model folder, or the adapter folder (with the
    tokenizer and base_model.json). Atomic like export_hf_model; every rank calls it."""
    out = Path(out_dir)
    model = engine.module
    state = merged_state_dict(model) if spec.export == "merged" else None
    if env.is_main:
        with io.atomic_dir(out) as tmp:
            if state is not None:
                _save_merged(model, state, tmp)
            else:
                save_adapter(model, tmp, base_uri)
            if tokenizer is not None:
                tokenizer.save_pretrained(tmp)
        log.info("%s model written to %s", "merged" if state is not None else "LoRA adapter", out)
    barrier()
    return out


def _save_merged(peft_model: Any, state: dict[str, Any], folder: Path) -> None:
    """A plain HF folder from merged weights: a fresh model of the base's class and config on the meta
    device takes the tensors (no copy), then saves as any HF model would."""
    import torch

    base = peft_model.get_base_model()
    config = base.config
    was_cache = getattr(config, "use_cache", None)
    if was_cache is not None:
        config.use_cache = True  # gradient checkpointing turned it off; inference wants it
    dtypes = {v.dtype for v in state.values() if v.is_floating_point()}
    if len(dtypes) == 1:
        config.dtype = next(iter(dtypes))
    with torch.device("meta"):
        plain = type(base)(config)
    plain.load_state_dict(state, strict=False, assign=True)
    if getattr(base, "generation_config", None) is not None:
        plain.generation_config = base.generation_config
    plain.save_pretrained(folder)
    if was_cache is not None:
        config.use_cache = was_cache


def load_adapter_folder(path: str | Path, base_path: str, dtype: Any = None, merge: bool = True) -> Any:
    """An exported adapter folder on its base model (a local folder): merged into a plain HF causal
    LM (``merge``), else the PeftModel."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=dtype or torch.float32)
    model = PeftModel.from_pretrained(base, str(path))
    return model.merge_and_unload() if merge else model
