"""The shared shape of every workload entrypoint: ``python -m rlaif_jobs.STAGE --config FILE``.

``load_config`` reads a JSON or YAML file into the stage's config model; a bad file is reported field
by field as a ``ConfigError``. ``run_main`` turns the exception that ended a workload into its exit code
(``rlaif_jobs.errors``: 3 for a ConfigError, which the Job's podFailurePolicy does not retry; 1 else).
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
from rlaif_jobs.errors import EXIT_OK, ConfigError, RetryableError, exit_code

M = TypeVar("M", bound=BaseModel)

__all__ = ["base_parser", "load_config", "run_main"]


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


def run_main(main: Callable[[M], object], model: type[M], args: argparse.Namespace) -> int:
    """Loads the config, runs ``main(config)`` and returns the exit code: 0, 3 for a ConfigError, 1 for a
    RetryableError (each printed as one ``error:`` line); any other exception propagates (a crash with
    its traceback, exit code 1)."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        main(load_config(args.config, model))
    except (ConfigError, RetryableError) as err:
        print(f"error: {err}", file=sys.stderr)
        return exit_code(err)
    return EXIT_OK
