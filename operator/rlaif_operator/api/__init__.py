"""The rlaif.dev/v1alpha1 API: pydantic models that generate the CRDs, plus manifest I/O.

Never imports kopf or kubernetes: the CLI and tests use it without a cluster.
"""

from rlaif_operator.api.kinds import (
    KINDS,
    PolicyRLRun,
    PreferenceLabelJob,
    Resource,
    RewardModelRun,
    RLAIFPipeline,
    StageResource,
)
from rlaif_operator.api.manifests import ManifestError, load_resources, parse_resource

__all__ = [
    "KINDS", "ManifestError", "PolicyRLRun", "PreferenceLabelJob", "RLAIFPipeline", "Resource",
    "RewardModelRun", "StageResource", "load_resources", "parse_resource",
]
