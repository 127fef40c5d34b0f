"""Runs the policy trainer in this process with a programmatic reward: ``run_programmatic.py CONFIG WORD``.

The reward is 1 when a response contains WORD, else 0 (rlaif_jobs.policy.rewards.contains_word). A
PolicyRLRun cannot select it; tests use this script to run the real trainer, in its own process as a
Job would, on a reward whose optimum is known.
"""

from __future__ import annotations

import logging
import sys

from rlaif_jobs.entry import load_config

if __name__ == "__main__":  # vLLM's engine may start worker processes: keep the guard
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from rlaif_jobs.config.policy import PolicyConfig
    from rlaif_jobs.policy.rewards import contains_word
    from rlaif_jobs.policy.trainer import train_policy

    train_policy(load_config(sys.argv[1], PolicyConfig), reward=contains_word(sys.argv[2]))
