"""Artifact I/O that never leaves a corrupt file: atomic writes, local or object-store URIs.

A local write goes to a temporary file in the same folder, is fsynced, then renamed over the
target (rename is atomic on POSIX). Object stores are written whole in one PUT by fsspec, which is
atomic from a reader's point of view.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

REMOTE = ("s3://", "gs://", "gcs://", "az://", "abfs://", "http://", "https://", "memory://")


def is_remote(uri: str) -> bool:
    return uri.startswith(REMOTE)


def local_path(uri: str) -> Path:
    return Path(uri.removeprefix("file://"))


def join(uri: str, *parts: str) -> str:
    """Joins path parts onto a folder URI, keeping the scheme."""
    return "/".join([uri.rstrip("/"), *parts])


@contextmanager
def atomic_open(uri: str, mode: str = "w") -> Iterator[IO[Any]]:
    """Opens ``uri`` for writing; the content appears at ``uri`` only if the block finishes."""
    if is_remote(uri):
        import fsspec

        with fsspec.open(uri, mode) as f:
            yield f
        return
    path = local_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yields an empty temporary sibling of the local folder ``path`` to fill; when the block finishes it
    replaces ``path`` (the old folder moved aside first, then removed), so a reader sees the old folder
    or the new one, never half of one. On an error the temporary folder goes and ``path`` stays."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def write_json(uri: str, obj: Any) -> None:
    """Writes one JSON document atomically."""
    with atomic_open(uri) as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def write_jsonl(uri: str, records: Iterable[dict]) -> int:
    """Writes records as JSON lines atomically; returns how many."""
    n = 0
    with atomic_open(uri) as f:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            n += 1
    return n


def open_read(uri: str, mode: str = "r") -> IO[Any]:
    """Opens a local path or any fsspec URI for reading."""
    if is_remote(uri):
        import fsspec

        return fsspec.open(uri, mode).open()
    return open(local_path(uri), mode)


def exists(uri: str) -> bool:
    if is_remote(uri):
        import fsspec

        fs, path = fsspec.core.url_to_fs(uri)
        return fs.exists(path)
    return local_path(uri).exists()


def read_json(uri: str) -> Any:
    with open_read(uri) as f:
        return json.load(f)
