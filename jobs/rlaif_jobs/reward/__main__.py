"""``python -m rlaif_jobs.reward --config FILE``: train a reward model (run under torchrun for many ranks).

Exit codes: 0 done; 3 bad input (config, labels file, base model, batch arithmetic, a checkpoint of
another world size), reported on stderr naming the field; anything else is a crash worth a retry.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rlaif_jobs.config.reward import RewardConfig
from rlaif_jobs.entry import base_parser, run_main


def parser() -> argparse.ArgumentParser:
    return base_parser("Train a reward model on AI preference labels (RLAIF stage 2) with DeepSpeed.")


def main(config: RewardConfig) -> dict[str, Any]:
    """Runs the whole stage for ``config``; returns the summary (see rlaif_jobs.reward.trainer)."""
    from rlaif_jobs.reward.trainer import train_reward_model

    return train_reward_model(config)


def cli(argv: list[str] | None = None) -> int:
    """Parses ``argv``, runs main, and returns the exit code (3 for bad input)."""
    return run_main(main, RewardConfig, parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(cli())
