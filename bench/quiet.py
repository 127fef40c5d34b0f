"""Waiting for a quiet machine before a benchmark measures: these machines are shared and noisy.

``settle(limit)`` waits until the 1-minute load average falls below half a CPU per CPU (a previous
benchmark's own load decays with a one-minute time constant), at most ``limit`` seconds;
``settle_and_announce`` also prints what happened, so a figure measured on a busy machine says so
next to it.
"""

from __future__ import annotations

import argparse
import os
import time

QUIET_PER_CPU = 0.5  # the 1-minute load average per CPU below which the machine counts as quiet


def settle(limit: float, per_cpu: float = QUIET_PER_CPU) -> tuple[float, bool]:
    """Waits (at most ``limit`` seconds) until the 1-minute load average is below ``per_cpu`` per CPU.
    Returns (seconds waited, whether it got there)."""
    began = time.monotonic()
    while os.getloadavg()[0] >= per_cpu * (os.cpu_count() or 1):
        if time.monotonic() - began >= limit:
            return time.monotonic() - began, False
        time.sleep(5)
    return time.monotonic() - began, True


def add_settle_option(parser: argparse.ArgumentParser, default: float) -> None:
    """The benches' common ``--settle SECONDS`` option (0: start at once)."""
    parser.add_argument("--settle", type=float, default=default,
                        help=f"before measuring, wait up to this many seconds for the 1-minute load average to fall"
                        f" below {QUIET_PER_CPU} per CPU (a previous run's own load decays with a 1-minute time"
                        f" constant); 0: start at once (default {default:g})")


def settle_and_announce(limit: float, what: str) -> bool:
    """``settle(limit)`` and one line that says how long it waited for ``what`` and whether the machine got
    quiet (nothing printed when ``limit`` is 0). Returns whether it got quiet (False: it did not wait)."""
    if limit < 0:
        raise SystemExit(f"--settle must be 0 or more seconds, got {limit:g}")
    if not limit:
        return False
    waited, quiet = settle(limit)
    print(f"== {what}: waited {waited:.0f} s for the load average to settle"
          + ("" if quiet else f" (it did not within {limit:g} s: another job shares the machine)"), flush=True)
    return quiet
