"""`rlaif report` on a run's outputs written by hand: the page is one parseable HTML file with its plots
embedded, every evaluation figure and the paper's beside them; the console table names every figure."""

from __future__ import annotations

import base64
import json
from html.parser import HTMLParser
from pathlib import Path

from rlaif_jobs import io, summaries
from rlaif_jobs.runreport import evaluation_table, from_outputs, from_workdir, write_report
from rlaif_operator.cli import main

EVAL = {"winRate": 0.6, "winRateLow": 0.4, "winRateHigh": 0.8, "lengthControlledWinRate": 0.55,
        "lengthControlledWinRateLow": 0.3, "lengthControlledWinRateHigh": 0.75, "harmlessRate": 0.5,
        "harmlessRateLow": 0.2, "harmlessRateHigh": 0.8, "sftHarmlessRate": 0.25, "sftHarmlessRateLow": 0.0,
        "sftHarmlessRateHigh": 0.5, "oracleScore": 0.7, "oracleScoreLow": 0.5, "oracleScoreHigh": 0.9,
        "sftOracleScore": 0.4, "sftOracleScoreLow": 0.2, "sftOracleScoreHigh": 0.6, "oracleDelta": 0.3,
        "oracleDeltaLow": 0.1, "oracleDeltaHigh": 0.5, "evalPrompts": 10.0, "judgeIsRewardSource": 1.0}


class _Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[str] = []
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def _fake_run(root: Path) -> Path:
    """A workdir as `rlaif run` leaves it, with outputs as the three stages write them."""
    work = root / "runs"
    out = root / "out"
    labels = [{"id": f"p{i}", "task": ["summarization", "helpful", "harmless"][i % 3], "pA": 0.5 + (i % 5) / 10,
               "pAOrderAB": 0.7, "pAOrderBA": 0.4 if i % 2 else 0.6, "humanPreference": "a",
               "chosen": "a" if i % 4 else "b"} for i in range(30)]
    io.write_jsonl(str(out / "label/labels.jsonl"), labels)
    summaries.write_summary(str(out / "label"), "label", {"labels": str(out / "label/labels.jsonl")},
                         {"labeled": 30, "alignment": 0.75, "samePositionRate": 0.5},
                         {"labeler": "builtin://qwen2.5-coder-1.5b-instruct"})
    io.write_jsonl(str(out / "reward/metrics.jsonl"), [{"step": s, "trainLoss": 0.7 - s / 100,
                                                         "evalAccuracyHuman": 0.5 + s / 100} for s in range(1, 6)])
    summaries.write_summary(str(out / "reward"), "reward", {"model": str(out / "reward/model")},
                         {"evalAccuracyHuman": 0.8, "evalAccuracyAi": 0.9},
                         {"baseModel": "builtin://smollm2-135m-instruct"})
    io.write_jsonl(str(out / "policy/metrics.jsonl"), [{"step": s, "meanReward": s / 10, "kl": s / 100,
                                                         "objective": s / 11} for s in range(1, 5)])
    io.write_jsonl(str(out / "policy/eval.jsonl"), [
        {"id": "help-1", "task": "helpful", "prompt": "What is 2 plus 2? <b>", "policy": "4", "sft": "5",
         "pPolicyBetter": 0.8, "oraclePolicy": 1.0, "oracleSft": 0.0}])
    summaries.write_summary(str(out / "policy"), "policy", {"model": str(out / "policy/model")}, EVAL, {
        "policy": "builtin://smollm2-135m-instruct", "algorithm": "rloo", "reward": "reward-model",
        "evaluation": {"judge": "builtin://qwen2.5-coder-1.5b-instruct", "judgeIsRewardSource": True,
                       "notes": ["the judge is the reward source"]}})
    for name, kind in (("q-label", "label"), ("q-reward", "reward"), ("q-policy", "policy")):
        (work / name).mkdir(parents=True)
        (work / name / "config.json").write_text(json.dumps({"output": {"uri": str(out / kind)}}))
    return work


def test_report_is_one_html_file_with_embedded_plots(tmp_path):
    work = _fake_run(tmp_path)
    run = from_workdir(work)
    assert [s.kind for s in run.stages] == ["label", "reward", "policy"] and not run.problems
    page = write_report(run, str(tmp_path / "report.html"))
    parser = _Page()
    parser.feed((tmp_path / "report.html").read_text())
    # confidence, position bias, alignment per task, RM loss, RM accuracy, RL curves, evaluation bars
    assert len(parser.images) == 7
    for src in parser.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http" not in "".join(parser.images)  # self-contained
    assert "What is 2 plus 2? &lt;b&gt;" in page  # samples escaped, side by side
    assert "[0.400, 0.800]" in page and "[0.100, 0.500]" in page  # intervals
    assert "PaLM 2 L" in page and "SmolLM2 135M" in page and "Qwen2.5-Coder 1.5B" in page
    assert "not independent evidence" in page and "Policies compared" in page


def test_console_table_names_every_figure_and_what_is_missing(tmp_path):
    run = from_workdir(_fake_run(tmp_path))
    table = evaluation_table(run)
    for text in ("win rate vs SFT (judge)", "0.600  [0.400, 0.800]", "length-controlled win rate",
                 "harmless rate (SFT)", "oracle score (SFT)", "reward model accuracy (human labels)",
                 "note: the judge is the reward source"):
        assert text in table, table
    assert "length-controlled harmless rate        not measured" in table


def test_report_from_output_uris_and_the_cli(tmp_path, capsys):
    work = _fake_run(tmp_path)
    run = from_outputs([str(tmp_path / "out/policy"), str(tmp_path / "out/label"), str(tmp_path / "nothing")])
    assert [s.kind for s in run.stages] == ["label", "policy"] and "nothing" in run.problems[0]
    assert main(["report", str(work)]) == 0
    assert (work / "report.html").exists() and "oracle score (policy)" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "empty")]) == 1


def test_a_policy_whose_judge_step_has_not_finished_says_pending_not_disabled(tmp_path):
    work = _fake_run(tmp_path)
    out = tmp_path / "out/policy"
    summary = json.loads((out / "summary.json").read_text())
    summary["metrics"] = {"meanReward": 0.3}  # training metrics only: the evaluator has not written its figures
    summary["evaluation"] = {"status": "pending", "judge": "builtin://qwen2.5-coder-1.5b-instruct"}
    (out / "summary.json").write_text(json.dumps(summary))
    run = from_workdir(work)
    assert "evaluation pending" in evaluation_table(run) and "enabled: false" not in evaluation_table(run)
    assert "evaluation pending" in write_report(run, str(tmp_path / "report.html"))
    summary["evaluation"] = None
    (out / "summary.json").write_text(json.dumps(summary))
    assert "evaluation did not run (evaluation.enabled: false)" in evaluation_table(from_workdir(work))
