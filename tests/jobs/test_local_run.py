"""`rlaif run` end to end: a whole pipeline through the real entrypoints, then a resumed re-run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _rlaif(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rlaif_operator.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("local")
    manifest = work / "pipeline.yaml"
    manifest.write_text((REPO / "tests/data/local/tiny-pipeline.yaml").read_text().replace("OUT/", f"{work}/out/"))
    proc = _rlaif("run", str(manifest), "--workdir", str(work / "runs"), cwd=work)
    return work, manifest, proc


def test_every_stage_succeeds_and_hands_its_output_on(tiny_run):
    work, _, proc = tiny_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    statuses = {n: json.loads((work / "runs" / n / "status.json").read_text())
                for n in ("tiny-label", "tiny-reward", "tiny-policy")}
    assert all(s["phase"] == "Succeeded" for s in statuses.values()), statuses
    labels = statuses["tiny-label"]["outputs"]["labels"]
    assert Path(labels).exists() and statuses["tiny-label"]["metrics"]["labeled"] > 0
    # the reward stage was configured with the labeling stage's reported output, the policy with the RM's
    reward_cfg = json.loads((work / "runs/tiny-reward/config.json").read_text())
    assert reward_cfg["preferencesUri"] == labels
    policy_cfg = json.loads((work / "runs/tiny-policy/config.json").read_text())
    assert policy_cfg["rewardModelUri"] == statuses["tiny-reward"]["outputs"]["model"]
    assert (Path(statuses["tiny-policy"]["outputs"]["model"]) / "config.json").exists()
    assert "Summary:" in proc.stdout


def test_the_console_shows_progress_per_stage_and_keeps_engine_logs_in_the_log_files(tiny_run):
    work, _, proc = tiny_run
    assert proc.returncode == 0
    out = proc.stdout
    for line in ("labeling 12/12 pairs", "reward 2/2 steps", "policy 2/2 steps"):
        assert line in out, out
    assert " INFO " not in out + proc.stderr, out
    for stage in ("tiny-label", "tiny-reward", "tiny-policy"):
        assert " INFO " in (work / "runs" / stage / "log.txt").read_text()


EVALUATION = ("winRate", "lengthControlledWinRate", "harmlessRate", "sftHarmlessRate", "oracleScore",
              "sftOracleScore")


def test_the_pipeline_is_evaluated_and_reported(tiny_run):
    """Every evaluation figure, with intervals, in the summary and the console table; the report page has
    its plots embedded; the judge (the labeler, by default) is flagged as the reward source."""
    import base64
    from html.parser import HTMLParser

    work, _, proc = tiny_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((work / "out/policy/summary.json").read_text())
    m = summary["metrics"]
    for key in EVALUATION:
        assert 0.0 <= m[key] <= 1.0 and m[f"{key}Low"] <= m[key] <= m[f"{key}High"], key
    assert m["evalPrompts"] == 3 and m["oraclePrompts"] == 3 and m["judgeIsRewardSource"] == 1.0
    ev = summary["evaluation"]
    assert ev["judge"] == "builtin://tiny-random-llama" and ev["judgeIsRewardSource"] is True
    assert ev["rubric"] == "helpful"  # the labeling stage's prompt.task
    # judged in a fresh process after the trainer exited (the judge never shares its memory)
    assert ev["status"] == "done" and ev["evaluatorPid"] != ev["trainerPid"], ev
    samples = [json.loads(x) for x in (work / "out/policy/eval.jsonl").read_text().splitlines()]
    assert len(samples) == 3 and all({"policy", "sft", "pPolicyBetter", "oraclePolicy"} <= s.keys() for s in samples)
    status = json.loads((work / "runs/tiny-policy/status.json").read_text())
    assert {"type": "JudgeIndependent", "status": "False", "reason": "JudgeIsRewardSource"}.items() <= next(
        c for c in status["conditions"] if c["type"] == "JudgeIndependent").items()
    for label in ("win rate vs SFT (judge)", "length-controlled win rate", "harmless rate (policy)",
                  "harmless rate (SFT)", "oracle score (policy)", "oracle score (SFT)"):
        line = next(x for x in proc.stdout.splitlines() if label in x)
        assert "not measured" not in line and "[" in line, line

    class Page(HTMLParser):
        images: list[str] = []

        def handle_starttag(self, tag, attrs):
            if tag == "img":
                self.images.append(dict(attrs)["src"])

    page = Page()
    page.feed((work / "runs/report.html").read_text())
    assert len(page.images) >= 6
    assert all(base64.b64decode(src.removeprefix("data:image/png;base64,"))[:4] == b"\x89PNG"
               for src in page.images)


def test_a_rerun_skips_what_already_succeeded(tiny_run):
    work, manifest, first = tiny_run
    assert first.returncode == 0
    again = _rlaif("run", str(manifest), "--workdir", str(work / "runs"), cwd=work)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already succeeded with this config, skipping") == 3


def test_a_dangling_reference_is_a_clear_error(tmp_path):
    manifest = tmp_path / "rm.yaml"
    manifest.write_text((REPO / "examples/reward-model-run.yaml").read_text())
    proc = _rlaif("run", str(manifest), "--workdir", str(tmp_path / "runs"), cwd=tmp_path)
    assert proc.returncode == 3
    assert "spec.preferences.fromLabelJob names 'checkable-labels'" in proc.stderr


def test_an_invalid_manifest_names_the_field(tmp_path):
    proc = _rlaif("run", str(REPO / "tests/data/invalid/zero-stage-four.yaml"), cwd=tmp_path)
    assert proc.returncode == 3
    assert "spec.training.deepspeed.zeroStage" in proc.stderr


def test_a_rerun_after_a_failed_evaluation_judges_without_retraining(tiny_run):
    """Training finished, the judging did not (the summary is left pending): the launcher, as ``rlaif run``
    and the pod run it, skips torchrun and runs only the evaluation. Runs last: it rewrites the run."""
    from rlaif_jobs.evaluation.handoff import SAMPLES

    work, _, proc = tiny_run
    assert proc.returncode == 0
    out = work / "out/policy"
    summary = json.loads((out / "summary.json").read_text())
    ev = summary["evaluation"]
    summary["evaluation"] = {"status": "pending", "samples": SAMPLES, "trainerPid": ev["trainerPid"],
                             "configDigest": ev["configDigest"]}
    summary["metrics"] = {k: v for k, v in summary["metrics"].items() if k in ("meanReward", "kl", "steps")}
    (out / "summary.json").write_text(json.dumps(summary))
    (out / "eval.jsonl").unlink()
    metrics_before = (out / "metrics.jsonl").read_text()
    rerun = subprocess.run([sys.executable, "-m", "rlaif_jobs.launch", "--standalone", "--nproc_per_node=1",
                            "-m", "rlaif_jobs.policy", "--config", str(work / "runs/tiny-policy/config.json")],
                           cwd=work, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "only rlaif_jobs.evaluation is left" in rerun.stdout
    assert (out / "metrics.jsonl").read_text() == metrics_before  # no step trained again
    again = json.loads((out / "summary.json").read_text())
    assert again["evaluation"]["status"] == "done" and again["metrics"]["evalPrompts"] == 3
    assert len((out / "eval.jsonl").read_text().splitlines()) == 3
