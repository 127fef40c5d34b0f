"""KV-cache memory sized to the work, for vLLM on CPU (where a fixed few GiB dominated small models).

``kv_cache_bytes(model_path, dtype, tokens)``: the bytes that ``tokens`` cached tokens take for the HF
model in ``model_path`` (its config.json: layers x 2 (K and V) x key/value heads x head dim x the
dtype's size), plus a few blocks of slack. The engines pass it as vLLM's ``kv_cache_memory_bytes``
instead of setting ``VLLM_CPU_KVCACHE_SPACE`` (whole GiB); a user's ``VLLM_CPU_KVCACHE_SPACE`` still
wins (vLLM's CPU platform applies it over the argument).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

_SIZES = {"float32": 4, "float": 4, "bfloat16": 2, "float16": 2, "half": 2}
SLACK_BLOCKS = 8  # whole blocks are allocated; a few spare keep one max-length sequence schedulable


def bytes_per_token(model_path: str, dtype: str = "auto") -> int:
    """K and V bytes of one token over all layers; ValueError when config.json lacks the sizes."""
    cfg = json.loads((Path(model_path) / "config.json").read_text())
    cfg = cfg.get("text_config", cfg)
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    if dtype in ("auto", None):
        dtype = str(cfg.get("torch_dtype") or cfg.get("dtype") or "float32")
    size = _SIZES.get(str(dtype).removeprefix("torch."), 4)
    return 2 * cfg["num_hidden_layers"] * kv_heads * head_dim * size


def kv_cache_bytes(model_path: str, dtype: str, tokens: int, block_size: int = 32) -> int | None:
    """Bytes for ``tokens`` cached tokens of the model (plus SLACK_BLOCKS blocks); None when the model's
    config.json is not a local file with the usual size fields (vLLM's own default then applies)."""
    try:
        return bytes_per_token(model_path, dtype) * (tokens + SLACK_BLOCKS * block_size)
    except (OSError, KeyError, TypeError, ValueError):
        return None


def user_set() -> bool:
    """The user chose the CPU KV-cache size themselves (VLLM_CPU_KVCACHE_SPACE)."""
    return bool(os.environ.get("VLLM_CPU_KVCACHE_SPACE"))
