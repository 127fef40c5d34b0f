"""bench/bench_api_client.py runs against the test API server and prints both clients' CPU per call."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_api_client  # noqa: E402


def test_each_call_kind_is_timed_on_both_clients_with_their_ratio(capsys: pytest.CaptureFixture[str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The kubernetes package fixes its default kubeconfig when first imported (in a suite, long before):
    # the bench must read its own server's file, whatever that default is.
    from kubernetes.config import kube_config

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", "/nonexistent")
    assert bench_api_client.main(["--calls", "3", "--block", "2", "--settle", "0"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if " ours " in line]
    assert [row.split(" ours ")[0].strip() for row in rows] == [
        "GET a custom resource", "PATCH its status", "POST a ConfigMap", "LIST pods by label", "POST an Event"]
    for row in rows:
        ours, official, ratio = map(float, re.findall(r"([\d.]+) ms, official client ([\d.]+) ms: ([\d.]+)x", row)[0])
        assert ours > 0 and official > 0 and ratio == pytest.approx(official / ours, abs=0.02)


def test_sizes_below_one_are_refused_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        bench_api_client.main(["--calls", "0", "--settle", "0"])
    assert "--calls and --block must be at least 1" in capsys.readouterr().err
