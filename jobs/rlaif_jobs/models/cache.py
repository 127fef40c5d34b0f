"""Where models and downloads are kept: ``$RLAIF_CACHE`` (default ``~/.cache/rlaif``)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache folder; created on first use."""
    root = Path(os.environ.get("RLAIF_CACHE", Path.home() / ".cache" / "rlaif"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def models_dir() -> Path:
    path = cache_root() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path
