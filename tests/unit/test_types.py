"""The code type-checks: mypy (configured in pyproject.toml, with pydantic's plugin) over both packages.

A wrong attribute on a typed spec, a None passed where a value is required, a helper called with the
wrong kind of resource: mypy finds these before a cluster does. ~1 minute on 2 cores.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_mypy_finds_no_errors() -> None:
    result = subprocess.run([sys.executable, "-m", "mypy", "operator/rlaif_operator", "jobs/rlaif_jobs"], cwd=REPO,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Success: no issues found" in result.stdout
