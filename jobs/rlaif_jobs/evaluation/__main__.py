"""``python -m rlaif_jobs.evaluation --config FILE``: judges a policy run's evaluation samples.

Takes the policy stage's own config. Runs in a fresh process after the trainer exited (``rlaif_jobs.launch``
runs it after torchrun, on node 0), so the judge never shares a process with the training engines; see
``rlaif_jobs.evaluation.handoff``. Nothing pending (evaluation disabled, or already done): exits 0 at once.

Exit codes: 0 done; 3 bad input (a judge that cannot load, samples of another config, no finished trainer
run in output.uri), naming the field; 1 a failure a retry may fix (a judge endpoint that stayed down).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rlaif_jobs.config.policy import PolicyConfig
from rlaif_jobs.entry import base_parser, run_main


def parser() -> argparse.ArgumentParser:
    return base_parser("Judges a policy run's held-out samples against the SFT policy's (the policy stage's"
                       " evaluation, in its own process).")


def main(config: PolicyConfig) -> dict[str, Any]:
    """Judges the pending samples of the run in ``config.output.uri``; returns the completed summary."""
    from rlaif_jobs.evaluation.handoff import complete

    return complete(config)


def cli(argv: list[str] | None = None) -> int:
    """Parses ``argv``, runs main, and returns the exit code (3 for bad input, 1 for a judge endpoint down)."""
    return run_main(main, PolicyConfig, parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(cli())
