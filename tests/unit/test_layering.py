"""The layering contracts in pyproject.toml ([tool.importlinter]) hold: ``lint-imports`` on this checkout.

api/, builders/ and status.py import neither kopf nor the Kubernetes client (they run in the CLI and
in unit tests without a cluster); rlaif_jobs never imports rlaif_operator (the workload images carry
no operator).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'operator'}{os.pathsep}{REPO / 'jobs'}"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_layering_contracts_are_kept() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_broken_contract_is_caught(tmp_path: Path) -> None:
    """The same tool, on a contract this code breaks on purpose (the handlers are kopf's), says so."""
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_packages = ["rlaif_operator"]\ninclude_external_packages = true\n'
                      '[[tool.importlinter.contracts]]\nname = "handlers without kopf"\ntype = "forbidden"\n'
                      'source_modules = ["rlaif_operator.handlers"]\nforbidden_modules = ["kopf"]\n')
    result = lint_imports("--config", str(config))
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "rlaif_operator.handlers -> kopf" in result.stdout
