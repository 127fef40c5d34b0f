"""The shared shape of every workload entrypoint: ``python -m rlaif_jobs.STAGE --config FILE``.

``load_config`` reads a JSON or YAML file into the stage's config model; a bad file is reported field
by field and the process exits with EXIT_CONFIG_ERROR (3), which the Job's podFailurePolicy treats as
"do not retry": retrying cannot fix a bad config.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rlaif_jobs.config.base import describe_errors
from rlaif_jobs.report import EXIT_CONFIG_ERROR

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """Input the workload cannot run with; the message names the field and the fix."""


def load_config(path: str | Path, model: type[M]) -> M:
    """Reads and validates a config file; raises ConfigError with one line per bad field."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"--config {path}: cannot read it ({err.strerror})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"--config {path}: not valid JSON/YAML ({err})") from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(f"--config {path}:\n  " + "\n  ".join(describe_errors(err))) from None


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", required=True, help="the stage's config file (JSON or YAML)")
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser


def run_main(main: Callable[[M], object], model: type[M], args: argparse.Namespace,
             config_errors: tuple[type[BaseException], ...] = ()) -> int:
    """Loads the config, runs ``main(config)``, maps input errors to exit code 3 with a clear message."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    caught: tuple[type[BaseException], ...] = (ConfigError, *config_errors)
    try:
        main(load_config(args.config, model))
    except caught as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    return 0
