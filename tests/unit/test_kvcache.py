"""KV-cache bytes from a model's config.json (the CPU engines size their cache to the work with it)."""

import json

from rlaif_jobs.kvcache import SLACK_BLOCKS, bytes_per_token, kv_cache_bytes


def test_bytes_per_token_follow_layers_kv_heads_head_dim_and_dtype(tmp_path) -> None:
    # Qwen2.5-1.5B's shape: 28 layers, 12 heads of 128, 2 key/value heads
    (tmp_path / "config.json").write_text(json.dumps({
        "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2, "hidden_size": 1536,
        "torch_dtype": "bfloat16"}))
    assert bytes_per_token(str(tmp_path), "float32") == 2 * 28 * 2 * 128 * 4
    assert bytes_per_token(str(tmp_path), "auto") == 2 * 28 * 2 * 128 * 2
    assert kv_cache_bytes(str(tmp_path), "float32", 1000, block_size=32) == 57344 * (1000 + SLACK_BLOCKS * 32)


def test_an_unreadable_config_leaves_the_engine_default(tmp_path) -> None:
    assert kv_cache_bytes(str(tmp_path), "float32", 1000) is None
    assert kv_cache_bytes("HuggingFaceTB/SmolLM2-135M", "float32", 1000) is None
