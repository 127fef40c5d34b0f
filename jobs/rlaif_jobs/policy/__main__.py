"""``python -m rlaif_jobs.policy --config FILE``: RL fine-tuning of the policy (run under torchrun for many ranks).

Exit codes: 0 done; 3 bad input (config, prompt set, reward model, policy model, batch arithmetic, a
checkpoint of another world size), reported on stderr naming the field; 1 a failure a retry may fix
(a labeler endpoint that stayed down after its retries): the checkpoints written so far are kept and
the rerun resumes from the last one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from rlaif_jobs.config.policy import PolicyConfig
from rlaif_jobs.entry import base_parser, run_main

log = logging.getLogger("rlaif_jobs.policy")


def parser() -> argparse.ArgumentParser:
    return base_parser("RL fine-tuning of the SFT policy against AI feedback (RLAIF stage 3) with DeepSpeed.")


def main(config: PolicyConfig) -> dict[str, Any]:
    """Runs the whole stage for ``config``; returns the summary (see rlaif_jobs.policy.trainer)."""
    from rlaif_jobs.policy.trainer import train_policy

    return train_policy(config)


def cli(argv: list[str] | None = None) -> int:
    """Parses ``argv``, runs main, and returns the exit code (3 for bad input, 1 for a retryable failure)."""
    return run_main(main, PolicyConfig, parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(cli())
