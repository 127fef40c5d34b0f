"""Workload configs: the file each entrypoint reads (``--config``), one model per stage."""

from rlaif_jobs.config.label import LabelConfig
from rlaif_jobs.config.policy import PolicyConfig
from rlaif_jobs.config.reward import RewardConfig

__all__ = ["LabelConfig", "PolicyConfig", "RewardConfig"]
