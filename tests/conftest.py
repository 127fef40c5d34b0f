"""Project-wide test settings: the repository root, and offline hub access."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No model or dataset may come from a hub at test time: fail fast instead of hanging on the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO
