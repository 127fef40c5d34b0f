"""The layering contracts in pyproject.toml ([tool.importlinter]) hold: ``lint-imports`` on this checkout.

api/, builders/ and status/ import neither kopf nor the Kubernetes client (they run in the CLI and
in unit tests without a cluster); rlaif_jobs never imports rlaif_operator (the workload images carry
no operator); each package is layered and no module imports one of a layer above it (e.g. evaluation
never imports policy: the trainer's half of the evaluation lives in policy.heldout).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(*args: str, root: Path = REPO) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{root / 'operator'}{os.pathsep}{root / 'jobs'}"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_layering_contracts_are_kept() -> None:
    result = lint_imports()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


def test_an_import_back_up_a_layer_breaks_the_build(tmp_path: Path) -> None:
    """The repository's own contracts, on a copy of the code where evaluation imports the policy trainer
    (the loop the layers contract exists to stop) and the typed API imports the Job builders."""
    for package in ("operator", "jobs"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    run = tmp_path / "jobs/rlaif_jobs/evaluation/run.py"
    run.write_text(run.read_text() + "\n\ndef _planted():\n    from rlaif_jobs.policy import trainer  # noqa: F401\n")
    kinds = tmp_path / "operator/rlaif_operator/api/kinds.py"
    kinds.write_text(kinds.read_text() + "\n\ndef _planted():\n    from rlaif_operator import builders  # noqa: F401\n")
    result = lint_imports(str(REPO / "pyproject.toml"), root=tmp_path)
    assert result.returncode != 0
    assert "3 kept, 2 broken" in result.stdout, result.stdout
    assert "rlaif_jobs.evaluation.run -> rlaif_jobs.policy.trainer" in result.stdout
    assert "rlaif_operator.api.kinds -> rlaif_operator.builders" in result.stdout


def test_a_broken_contract_is_caught(tmp_path: Path) -> None:
    """The same tool, on a contract this code breaks on purpose (the handlers are kopf's), says so."""
    config = tmp_path / "contracts.toml"
    config.write_text('[tool.importlinter]\nroot_packages = ["rlaif_operator"]\ninclude_external_packages = true\n'
                      '[[tool.importlinter.contracts]]\nname = "handlers without kopf"\ntype = "forbidden"\n'
                      'source_modules = ["rlaif_operator.handlers"]\nforbidden_modules = ["kopf"]\n')
    result = lint_imports(str(config))
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and "rlaif_operator.handlers -> kopf" in result.stdout
