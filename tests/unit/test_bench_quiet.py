"""bench/quiet.py: the benches' wait for a quiet machine ends at its limit and says what happened."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from quiet import add_settle_option, settle, settle_and_announce  # noqa: E402


def test_a_machine_under_any_threshold_above_its_load_is_quiet_at_once() -> None:
    waited, quiet = settle(0, per_cpu=1e9)
    assert quiet and waited < 1


def test_the_wait_ends_at_its_limit_when_the_load_never_falls_below_the_threshold() -> None:
    waited, quiet = settle(0, per_cpu=0)  # a load average is never below 0
    assert not quiet and waited < 1


def test_settle_zero_starts_at_once_and_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert settle_and_announce(0, "bench") is False
    assert capsys.readouterr().out == ""


def test_a_negative_settle_is_refused_by_name() -> None:
    with pytest.raises(SystemExit, match="--settle must be 0 or more"):
        settle_and_announce(-1, "bench")


def test_the_option_parses_seconds_with_the_bench_default() -> None:
    parser = argparse.ArgumentParser()
    add_settle_option(parser, default=120)
    assert parser.parse_args([]).settle == 120
    assert parser.parse_args(["--settle", "0"]).settle == 0
