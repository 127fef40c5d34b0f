"""RLAIF_VENV: a clone's .venv layered on a shared venv (scripts/layer_venv.sh) runs this checkout's code
and the shared packages and commands, and leaves the shared venv as it was: deleting the clone breaks
nothing (before, the shared venv's console scripts were rewritten to the newest clone's path)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _snapshot(venv: Path) -> dict[str, float]:
    """Every command and top-level site-packages entry of a venv, with its modification time."""
    site = next((venv / "lib").glob("python3*/site-packages"))
    return {str(p.relative_to(venv)): p.lstat().st_mtime for d in (venv / "bin", site) for p in d.iterdir()}


def test_a_layered_venv_runs_this_checkout_and_leaves_the_shared_one_alone(tmp_path: Path) -> None:
    shared = Path(sys.prefix)
    before = _snapshot(shared)
    clone = tmp_path / "clone"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(".venv", ".git", "build", "runs", "*.egg-info",
                                                               "__pycache__", ".*_cache"))
    subprocess.run([str(clone / "scripts/layer_venv.sh"), str(shared), str(clone / ".venv")], check=True)
    python = clone / ".venv/bin/python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e",
                    str(clone)], check=True, cwd=clone, capture_output=True)
    where = subprocess.run([str(python), "-c", "import rlaif_operator, kopf; print(rlaif_operator.__file__)"],
                           check=True, capture_output=True, text=True).stdout
    assert where.startswith(str(clone)), where  # this checkout's code, the shared kopf
    assert subprocess.run([str(clone / ".venv/bin/rlaif"), "--help"], capture_output=True).returncode == 0
    pytest_cmd = clone / ".venv/bin/pytest"  # a shared command, run by the layered python
    assert pytest_cmd.read_text().splitlines()[0] == f"#!{python}"
    assert subprocess.run([str(pytest_cmd), "--version"], capture_output=True).returncode == 0

    shutil.rmtree(clone)
    assert _snapshot(shared) == before  # nothing in the shared venv changed
    shared_code = subprocess.run([str(shared / "bin/python"), "-c", "import rlaif_operator; print('ok')"],
                                 capture_output=True, text=True)
    assert shared_code.stdout.strip() == "ok", shared_code.stderr
