"""The NetworkPolicy of a trainer Job: only the Job's own pods may reach them.

torchrun's rendezvous store listens on ``master_port`` of pod 0, and NCCL/Gloo then open ephemeral
ports between the ranks, so the one ingress rule admits the Job's own pods on every port and nothing
else: no other pod of the cluster reaches the rendezvous port. Egress is left alone (pods fetch models
and write artifacts). Where the network plugin enforces no NetworkPolicy, the object is inert.
"""

from __future__ import annotations

from typing import Any

from rlaif_operator.api.kinds import StageResource
from rlaif_operator.builders import names
from rlaif_operator.settings import OperatorSettings


def network_policy_name(resource: StageResource) -> str:
    return f"{names.job_name(resource)}-rendezvous"


def build_network_policy(resource: StageResource, settings: OperatorSettings) -> dict[str, Any] | None:
    """Input: a stage resource (with uid). Output: a networking.k8s.io/v1 NetworkPolicy for a trainer
    Job (reward model or policy: they run torchrun, on one node or several), else None."""
    if not resource.TRAINS:
        return None
    own_pods = {"matchLabels": {names.JOB_NAME_LABEL: names.job_name(resource)}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": names.object_meta(resource, network_policy_name(resource)),
        "spec": {
            "podSelector": own_pods,
            "policyTypes": ["Ingress"],
            # No port list: the rendezvous port (settings.master_port) and NCCL's ephemeral ports alike.
            "ingress": [{"from": [{"podSelector": own_pods}]}],
        },
    }
