"""Fixtures for the reward workload's tests (plain helpers live in reward_helpers.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_model() -> str:
    """builtin://tiny-random-llama, built into the model cache if it is not there yet."""
    from rlaif_jobs.models.install import ensure_builtin

    ensure_builtin("tiny-random-llama")
    return "builtin://tiny-random-llama"
