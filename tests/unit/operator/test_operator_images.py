"""Static checks of images/ (no container engine here to build them): what each image runs exists,
the pins agree with pyproject's, every image runs as a non-root user, and the operator's default
image names are the ones the images are built as."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest

from rlaif_operator.settings import OperatorSettings

REPO = Path(__file__).resolve().parents[3]
IMAGES = REPO / "images"


def dockerfile(name: str) -> str:
    return (IMAGES / name / "Dockerfile").read_text()


@pytest.mark.parametrize("name", ["operator", "labeler", "trainer"])
def test_image_runs_as_non_root_and_installs_the_project(name: str) -> None:
    text = dockerfile(name)
    assert re.search(r"^USER 10001$", text, re.M)
    assert "COPY pyproject.toml" in text and "COPY jobs ./jobs" in text
    assert (IMAGES / name / "Dockerfile.dockerignore").read_text().startswith("**\n")


def test_entrypoints_exist() -> None:
    assert 'ENTRYPOINT ["python", "-m", "rlaif_operator"]' in dockerfile("operator")
    assert importlib.util.find_spec("rlaif_operator.__main__") is not None
    for module in re.findall(r"import (rlaif_jobs\.\w+)", dockerfile("labeler") + dockerfile("trainer")):
        assert importlib.util.find_spec(module) is not None, module


def test_pins_agree_with_pyproject() -> None:
    cuda = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["cuda"]
    pins = dict(re.match(r"([\w-]+)==([\w.]+)", dep).groups() for dep in cuda if "==" in dep)  # type: ignore[union-attr]
    for name in ("labeler", "trainer"):
        assert f"ARG VLLM_VERSION={pins['vllm']}" in dockerfile(name)
    assert f"ARG DEEPSPEED_VERSION={pins['deepspeed']}" in dockerfile("trainer")


def test_default_workload_images_are_the_built_ones() -> None:
    settings = OperatorSettings()
    assert settings.labeler_image.startswith("ghcr.io/rlaif/labeler:")
    assert settings.trainer_image.startswith("ghcr.io/rlaif/trainer:")
    readme = (IMAGES / "README.md").read_text()
    assert "-t ghcr.io/rlaif/labeler:" in readme and "-t ghcr.io/rlaif/trainer:" in readme
