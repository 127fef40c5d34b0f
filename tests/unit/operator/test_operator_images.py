"""Static checks of images/ (no container engine here to build them): what each image runs exists,
the pins agree with pyproject's, bases are pinned by digest, every image runs as a non-root user, one
bake file builds them all, and tags, chart values and the operator's default images share the chart's
appVersion."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
import yaml

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


BAKE = (IMAGES / "docker-bake.hcl").read_text()


def chart_app_version() -> str:
    return yaml.safe_load((REPO / "charts" / "rlaif-operator" / "Chart.yaml").read_text())["appVersion"]


@pytest.mark.parametrize("name", ["operator", "labeler", "trainer"])
def test_bases_are_pinned_by_digest(name: str) -> None:
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile(name), re.M)
    assert bases
    for base in bases:
        assert re.fullmatch(r"[\w.\-/:]+@sha256:[0-9a-f]{64}", base), f"{name}: {base} is not pinned by digest"


def test_one_bake_file_builds_every_image() -> None:
    built = {m for m in re.findall(r'dockerfile\s*=\s*"images/(\w+)/Dockerfile"', BAKE)}
    assert built == {p.parent.name for p in IMAGES.glob("*/Dockerfile")}
    default = re.search(r'group "default" \{\s*targets = \[([^\]]*)\]', BAKE)
    assert default and set(re.findall(r'"(\w+)"', default.group(1))) == built


def test_tags_follow_the_chart_app_version() -> None:
    version = chart_app_version()
    assert re.search(r'variable "VERSION" \{\s*default = "([^"]+)"', BAKE).group(1) == version  # type: ignore[union-attr]
    assert re.search(r'variable "REGISTRY" \{\s*default = "ghcr.io/rlaif"', BAKE)
    for name in ("operator", "labeler", "trainer"):
        assert f'tags       = ["${{REGISTRY}}/{name}:${{VERSION}}"]' in BAKE
    values = yaml.safe_load((REPO / "charts" / "rlaif-operator" / "values.yaml").read_text())
    assert values["image"]["repository"] == "ghcr.io/rlaif/operator" and values["image"]["tag"] == ""  # = appVersion
    assert values["operator"]["labelerImage"] == f"ghcr.io/rlaif/labeler:{version}"
    assert values["operator"]["trainerImage"] == f"ghcr.io/rlaif/trainer:{version}"
    settings = OperatorSettings()
    assert settings.labeler_image == f"ghcr.io/rlaif/labeler:{version}"
    assert settings.trainer_image == f"ghcr.io/rlaif/trainer:{version}"
