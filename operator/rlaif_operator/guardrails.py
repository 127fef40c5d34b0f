"""Admin guardrails: which images and service accounts a run may ask for (operator settings
``allowed_image_prefixes`` / ``allowed_service_accounts``, chart values ``operator.allowed*``).

Pure: a resource and the settings in, one problem per offending field out (each names the field, what
is allowed and the fix). The reconcile reports them as ``Failed/InvalidSpec``; a pipeline is checked
as a whole before its first stage starts, so a disallowed policy image does not surface hours later.
"""

from __future__ import annotations

from rlaif_operator.api.kinds import Resource, RLAIFPipeline, StageResource
from rlaif_operator.settings import OperatorSettings

PIPELINE_STAGES = (("labeling", "spec.labeling"), ("reward_model", "spec.rewardModel"), ("policy", "spec.policy"))


def _stage_problems(runtime: object, where: str, settings: OperatorSettings) -> list[str]:
    problems = []
    image = getattr(runtime, "image", None)
    prefixes = settings.allowed_image_prefixes
    if image and prefixes and not image.startswith(tuple(prefixes)):
        problems.append(f"{where}.runtime.image {image!r} is not allowed on this cluster: use an image under"
                        f" {', '.join(prefixes)} (operator setting allowedImagePrefixes), or leave it out for the"
                        " default image")
    account = getattr(runtime, "service_account_name", None)
    accounts = settings.allowed_service_accounts
    if account and accounts and account not in accounts:
        problems.append(f"{where}.runtime.serviceAccountName {account!r} is not allowed on this cluster: use one"
                        f" of {', '.join(accounts)} (operator setting allowedServiceAccounts), or leave it out")
    return problems


def guardrail_problems(resource: Resource, settings: OperatorSettings) -> list[str]:
    """Input: a parsed stage resource or pipeline, the settings. Output: its guardrail violations."""
    if resource.spec is None:  # the schema already refused it
        return []
    if isinstance(resource, RLAIFPipeline):
        return [p for attr, where in PIPELINE_STAGES if (stage := getattr(resource.spec, attr)) is not None
                for p in _stage_problems(stage.runtime, where, settings)]
    assert isinstance(resource, StageResource)  # the other kinds are stages
    return _stage_problems(resource.spec.runtime, "spec", settings)
