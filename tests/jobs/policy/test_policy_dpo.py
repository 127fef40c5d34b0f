"""rl.algorithm dpo end to end on CPU: ``python -m rlaif_jobs.policy`` trains builtin://tiny-random-llama with
the soft-label DPO loss on a small labels file (the labeling stage's format), the loss falls, the policy
moves towards the preferred responses, and the run ends like an RL run: the exported model, summary.json
with the held-out evaluation pending, then judged (here in-process) into the same evaluation figures.
"""

from __future__ import annotations

import json

import pytest
from policy_helpers import run_cli, steps, write_config

pytestmark = pytest.mark.slow

SUBJECTS = ["The sky", "My car", "The ball", "This flower", "Her hat", "The door", "A cup", "The lamp"]
HELD_OUT = ["What colour is the sea?", "What colour is snow?"]


def _labels(tmp_path):
    """16 pairs: "<subject> is blue." preferred over "<subject> is red." with soft p in (0.5, 1], in
    either position; one tie (p 0.5); one pair on a held-out prompt (left out of training)."""
    rows = []
    for i, subject in enumerate(SUBJECTS * 2):
        good, bad = f"{subject} is blue.", f"{subject} is red."
        p = [0.95, 0.8, 0.7, 1.0][i % 4]
        a_good = i % 2 == 0
        rows.append({"id": f"p{i}", "context": f"What colour is {subject.lower()}? ({i})",
                     "responseA": good if a_good else bad, "responseB": bad if a_good else good,
                     "pA": p if a_good else 1 - p})
    rows[-1]["pA"] = 0.5
    rows.append({"id": "held", "context": HELD_OUT[0], "responseA": "blue", "responseB": "red", "pA": 0.9})
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_dpo_on_soft_labels_lowers_the_loss_and_ends_with_the_evaluation(tmp_path):
    from rlaif_jobs.config.policy import PolicyConfig
    from rlaif_jobs.evaluation.handoff import complete

    out = tmp_path / "run"
    (tmp_path / "prompts.jsonl").write_text(json.dumps({"id": "t", "prompt": "What colour is grass?"}) + "\n")
    (tmp_path / "eval.jsonl").write_text("".join(json.dumps({"id": f"e{i}", "prompt": p}) + "\n"
                                                 for i, p in enumerate(HELD_OUT)))
    judge = {"model": {"uri": "builtin://tiny-random-llama", "dtype": "float32"}, "engine": "transformers"}
    cfg = {
        "policy": {"uri": "builtin://tiny-random-llama"},
        "prompts": {"uri": str(tmp_path / "prompts.jsonl")},
        "preferencesUri": str(_labels(tmp_path)),
        "rl": {"algorithm": "dpo", "dpoBeta": 0.5, "batchSize": 4, "microBatchSize": 2, "maxNewTokens": 8,
               "maxLength": 96, "maxSteps": 8, "learningRate": 1e-3, "warmupRatio": 0.0, "precision": "fp32",
               "checkpointEverySteps": 4, "seed": 0, "deepspeed": {"zeroStage": 0}},
        "rollout": {"engine": "transformers"},
        "evaluation": {"judge": judge, "task": "helpful", "prompts": {"uri": str(tmp_path / "eval.jsonl")},
                       "numPrompts": 2},
        "tracking": {"tensorboard": False},
        "output": {"uri": str(out)},
    }
    proc = run_cli(write_config(tmp_path / "cfg.json", cfg), tmp_path / "log.txt", timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    rows = [r for r in (json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()) if "dpoLoss" in r]
    assert [r["step"] for r in rows] == list(range(1, 9)) and not steps(out)  # no RL rows (meanReward)
    losses = [round(r["dpoLoss"], 4) for r in rows]
    print("dpo losses per step:", losses)
    assert losses[0] == pytest.approx(0.693, abs=0.05)  # the policy starts as its reference: D = 0
    assert sum(losses[-3:]) / 3 < losses[0] - 0.1, losses
    assert rows[-1]["preferenceAccuracy"] >= 0.75 and rows[-1]["rewardMargin"] > 0, rows[-1]

    pending = json.loads((out / "summary.json").read_text())
    assert pending["algorithm"] == "dpo" and pending["reward"].startswith("none")
    assert pending["outputs"]["model"] == f"{out}/model" and (out / "model" / "config.json").exists()
    assert pending["evaluation"]["status"] == "pending"
    m = pending["metrics"]
    assert m["pairsLeftOutAsHeldOut"] == 1 and m["preferencePairs"] == 16 and m["steps"] == 8
    assert m["dpoLoss"] < m["initialDpoLoss"]
    summary = complete(PolicyConfig.model_validate(cfg))  # the judging step, as rlaif_jobs.launch runs it
    m = summary["metrics"]
    for key in ("winRate", "lengthControlledWinRate", "harmlessRate", "sftHarmlessRate"):
        assert 0.0 <= m[key] <= 1.0, key
    assert m["evalPrompts"] == 2 and summary["evaluation"]["status"] == "done"
    assert m["dpoLoss"] < m["initialDpoLoss"]  # the training figures stay beside the evaluation's
    # the report compares it with RL policies: the same evaluation table, DPO's own training curves
    from rlaif_jobs import runreport

    run = runreport.from_outputs([str(out)])
    assert "winRate" in run.of("policy")[0].metrics and "(dpo, reward none" in runreport.evaluation_table(run)
    runreport.write_report(run, str(tmp_path / "report.html"))
    page = (tmp_path / "report.html").read_text()
    assert 'alt="DPO curves"' in page and "DPO on AI labels" in page
