"""The ConfigMap that hands a stage its workload config: the same file ``rlaif run`` writes locally."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from rlaif_operator.api.kinds import StageResource
from rlaif_operator.builders import names

CONFIG_KEY = "config.json"
CONFIG_DIR = "/etc/rlaif"
CONFIG_PATH = f"{CONFIG_DIR}/{CONFIG_KEY}"


def config_json(config: BaseModel) -> str:
    """The config as the workload reads it: camelCase JSON, unset optionals left out, stable order."""
    data = config.model_dump(by_alias=True, exclude_none=True, mode="json")
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def build_config_map(resource: StageResource, config: BaseModel) -> dict[str, Any]:
    """Input: the stage resource (with uid) and its workload config. Output: a v1 ConfigMap manifest."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": names.object_meta(resource, names.config_map_name(resource)),
        "data": {CONFIG_KEY: config_json(config)},
    }
