"""`rlaif validate` works after a plain `pip install rlaif` (the core, no extras): the GitOps user's check.

Builds a fresh venv, installs this checkout without extras (from the package index pip is configured
with), and validates every rlaif example, plus an invalid manifest that only a CEL rule of the CRDs
catches (cel-python must come with the core, not only with the test extra).
"""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory) -> Path:
    where = tmp_path_factory.mktemp("core-venv")
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(ROOT)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return where


def _rlaif_manifests() -> list[Path]:
    files = sorted(ROOT.glob("examples/**/*.yaml"))
    return [f for f in files if "apiVersion: rlaif.dev/" in f.read_text(encoding="utf-8")]


def test_validate_every_example_with_the_core_install(core_venv):
    files = _rlaif_manifests()
    assert len(files) >= 8
    done = subprocess.run([str(core_venv / "bin" / "rlaif"), "validate", *map(str, files)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(": ok") == len(files)


def test_cel_rules_run_with_the_core_install(core_venv):
    bad = ROOT / "tests/data/invalid/custom-template-without-placeholder.yaml"
    done = subprocess.run([str(core_venv / "bin" / "rlaif"), "validate", str(bad)], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ModuleNotFoundError" not in done.stdout + done.stderr
    # the CRD's CEL rule (x-kubernetes-validations), as the API server would report it
    assert 'Invalid value: "object": sample must contain the placeholders' in done.stdout


def test_core_install_has_no_workload_or_operator_dependencies(core_venv):
    """The core stays small: the CLI validates without torch, kopf or kubernetes installed."""
    probe = "import importlib.util as u; print([m for m in ('torch', 'kopf', 'kubernetes') if u.find_spec(m)])"
    done = subprocess.run([str(core_venv / "bin" / "python"), "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.fixture(scope="module")
def operator_image_venv(tmp_path_factory) -> Path:
    """A venv installed as the operator image installs itself: its lock as listed (no resolution), then
    the project, then pip check (images/operator/Dockerfile)."""
    where = tmp_path_factory.mktemp("operator-venv")
    venv.EnvBuilder(with_pip=True).create(where)
    pip = [str(where / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps"]
    for step in ([*pip, "-r", str(ROOT / "images/locks/operator.txt")], [*pip, str(ROOT)],
                 [str(where / "bin" / "python"), "-m", "pip", "check"]):
        done = subprocess.run(step, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    return where


def test_the_operator_image_imports_its_entry_points(operator_image_venv):
    """What the operator image runs imports with only its lock installed: the operator (python -m
    rlaif_operator: its handlers, the controller), the CLI's validate and cluster verbs."""
    python = str(operator_image_venv / "bin" / "python")
    probe = ("import rlaif_operator.__main__, rlaif_operator.handlers, rlaif_operator.controller,"
             " rlaif_operator.clusterctl.commands, rlaif_operator.cli")
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for verb in ("validate", "submit", "status", "logs", "wait"):
        done = subprocess.run([str(operator_image_venv / "bin" / "rlaif"), verb, "--help"], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, f"rlaif {verb} --help: {done.stderr}"
    examples = _rlaif_manifests()
    done = subprocess.run([str(operator_image_venv / "bin" / "rlaif"), "validate", *map(str, examples)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.count(": ok") == len(examples), done.stdout + done.stderr
