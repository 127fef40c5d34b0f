"""The headless Service of a trainer Job: gives pod 0 the DNS name torchrun's workers dial."""

from __future__ import annotations

from typing import Any

from rlaif_operator.api.kinds import StageResource
from rlaif_operator.builders import names
from rlaif_operator.settings import OperatorSettings


def build_service(resource: StageResource, settings: OperatorSettings) -> dict[str, Any]:
    """Input: a RewardModelRun or PolicyRLRun (with uid). Output: a headless v1 Service manifest.

    ``publishNotReadyAddresses`` matters: pods have no readiness probe during rendezvous, and workers
    must resolve pod 0 before it is "ready".
    """
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": names.object_meta(resource, names.service_name(resource)),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": {names.JOB_NAME_LABEL: names.job_name(resource)},
            "ports": [{"name": "rendezvous", "port": settings.master_port, "targetPort": settings.master_port,
                       "protocol": "TCP"}],
        },
    }
