"""Each kind's facts live once, in api/kinds.py; the rest of the operator reads them from there."""

from __future__ import annotations

import kopf

from rlaif_operator import cache, kube
from rlaif_operator.api.common import GROUP
from rlaif_operator.api.kinds import KINDS, STAGE_KINDS, STAGE_MODULES, STAGE_NAMES, UPSTREAMS, StageResource


def test_every_view_derives_from_the_registry() -> None:
    assert STAGE_KINDS == ("PreferenceLabelJob", "RewardModelRun", "PolicyRLRun")
    assert (*STAGE_KINDS, "RLAIFPipeline") == tuple(KINDS)
    for kind, cls in KINDS.items():
        assert kube.PLURALS[kind] == cls.PLURAL
        path = kube.path_of("rlaif.dev/v1alpha1", kind, "ns", "x")
        assert path == f"/apis/rlaif.dev/v1alpha1/namespaces/ns/{cls.PLURAL}/x"
    assert STAGE_NAMES == {"PreferenceLabelJob": "label", "RewardModelRun": "reward", "PolicyRLRun": "policy"}
    assert STAGE_MODULES == {"PreferenceLabelJob": "rlaif_jobs.label", "RewardModelRun": "rlaif_jobs.reward",
                             "PolicyRLRun": "rlaif_jobs.policy"}
    assert [k for k, cls in KINDS.items() if issubclass(cls, StageResource)] == list(STAGE_KINDS)
    assert [k for k in STAGE_KINDS if KINDS[k].TRAINS] == ["RewardModelRun", "PolicyRLRun"]
    assert cache.UPSTREAM_FIELDS == {"RewardModelRun": (("preferences", "fromLabelJob", "PreferenceLabelJob"),),
                                     "PolicyRLRun": (("reward", "fromRewardModelRun", "RewardModelRun"),
                                                     ("preferences", "fromLabelJob", "PreferenceLabelJob"))}
    assert {up.kind for ups in UPSTREAMS.values() for up in ups} <= set(STAGE_KINDS)


def test_kopf_watches_every_kind_of_the_registry() -> None:
    import rlaif_operator.handlers  # noqa: F401 - registers the handlers on kopf's default registry

    registry = kopf.get_default_registry()
    watched = {h.selector.any_name for h in registry._watching.get_all_handlers() if h.selector.group == GROUP}
    assert watched == {cls.PLURAL for cls in KINDS.values()}
