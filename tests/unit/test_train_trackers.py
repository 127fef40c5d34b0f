"""Experiment tracking (rlaif_jobs.train.trackers) with the real packages, offline: TensorBoard event files,
an MLflow file store, W&B offline runs, each read back; a resumed stage continues the same MLflow and W&B
run; a missing package, a bad setting and a server that does not answer are clear errors at the start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rlaif_jobs.config import PolicyConfig, RewardConfig
from rlaif_jobs.config.tracking import MlflowSpec, TrackingSpec, WandbSpec
from rlaif_jobs.errors import EXIT_CONFIG_ERROR, EXIT_RETRYABLE, ConfigError, exit_code
from rlaif_jobs.train import trackers as trackers_mod
from rlaif_jobs.train.metrics import MetricsLogger, read_metrics
from rlaif_jobs.train.trackers import STATE_FILE, Tracker, Trackers, TrackingError, check_tracking

PARAMS = {"training": {"learningRate": 1e-5, "deepspeed": {"config": {}}}, "baseModel": {"uri": "builtin://x"}}


def attempt(out: Path, spec: TrackingSpec, steps: range, resume_step: int | None,
            summary: dict[str, Any] | None = None) -> MetricsLogger:
    """One attempt of a stage as TrainingRun drives it: trackers start, steps are logged, all is closed."""
    logger = MetricsLogger(out / "metrics.jsonl", resume_step=resume_step,
                           trackers=Trackers(spec, out, resume_step, PARAMS, stage="reward", run_name="rm"))
    if resume_step is not None:
        logger.log(resume_step, event="resumed", checkpoint=f"step-{resume_step}")
    for step in steps:
        logger.log(step, trainLoss=1.0 / step + (0.5 if resume_step else 0.0), evalAccuracy=float("nan"), ok=True)
    logger.close(summary=summary)
    return logger


# --- TensorBoard ----------------------------------------------------------------------------------------


def tb_scalars(log_dir: Path, tag: str) -> dict[int, float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir))
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars(tag)}


def test_tensorboard_events_read_back_and_a_resume_replaces_the_steps_after_the_checkpoint(tmp_path):
    attempt(tmp_path, TrackingSpec(), range(1, 6), None)
    assert tb_scalars(tmp_path / "tensorboard", "trainLoss") == pytest.approx({s: 1.0 / s for s in range(1, 6)})
    attempt(tmp_path, TrackingSpec(), range(4, 7), resume_step=3)  # killed after step 5, resumed from 3
    expected = {1: 1.0, 2: 0.5, 3: 1 / 3, 4: 0.75, 5: 0.7, 6: 1 / 6 + 0.5}
    assert tb_scalars(tmp_path / "tensorboard", "trainLoss") == pytest.approx(expected)
    assert [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl")] == [1, 2, 3, 3, 4, 5, 6]  # JSONL as before


def test_tracking_off_writes_the_jsonl_only(tmp_path):
    attempt(tmp_path, TrackingSpec(tensorboard=False), range(1, 3), None)
    assert not (tmp_path / "tensorboard").exists()
    assert json.loads((tmp_path / STATE_FILE).read_text()) == {}
    assert len(read_metrics(tmp_path / "metrics.jsonl")) == 2


# --- MLflow ---------------------------------------------------------------------------------------------


@pytest.fixture
def mlflow_spec(tmp_path, monkeypatch) -> TrackingSpec:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses file stores unless asked
    uri = (tmp_path / "mlruns").as_uri()
    return TrackingSpec(tensorboard=False, mlflow=MlflowSpec(tracking_uri=uri, experiment="rlaif-test"))


def mlflow_history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    from mlflow.tracking import MlflowClient

    return [(m.step, m.value) for m in MlflowClient(tracking_uri=uri).get_metric_history(run_id, key)]


def test_mlflow_logs_metrics_at_their_steps_params_and_the_summary(tmp_path, mlflow_spec):
    from mlflow.tracking import MlflowClient

    out = tmp_path / "rm"
    attempt(out, mlflow_spec, range(1, 4), None, summary={"evalAccuracy": 0.75, "note": "text"})
    state = json.loads((out / STATE_FILE).read_text())["mlflow"]
    uri = mlflow_spec.mlflow.tracking_uri  # type: ignore[union-attr]
    run = MlflowClient(tracking_uri=uri).get_run(state["runId"])
    assert run.info.status == "FINISHED" and run.info.run_name == "rm"
    assert run.data.params["training.learningRate"] == "1e-05" and run.data.tags["rlaif.stage"] == "reward"
    assert dict(mlflow_history(uri, state["runId"], "trainLoss")) == pytest.approx({1: 1.0, 2: 0.5, 3: 1 / 3})
    assert run.data.metrics["final/evalAccuracy"] == 0.75  # the final figure, beside the per-step curves
    assert "evalAccuracy" not in run.data.metrics  # NaN at every step: JSONL only
    assert not {"ok", "final/note"} & set(run.data.metrics)  # neither bools nor text


def test_mlflow_resume_continues_the_same_run_and_a_fresh_start_begins_a_new_one(tmp_path, mlflow_spec):
    from mlflow.tracking import MlflowClient

    out = tmp_path / "rm"
    attempt(out, mlflow_spec, range(1, 4), None)
    first = json.loads((out / STATE_FILE).read_text())["mlflow"]["runId"]
    attempt(out, mlflow_spec, range(3, 5), resume_step=2)
    assert json.loads((out / STATE_FILE).read_text())["mlflow"]["runId"] == first
    uri = mlflow_spec.mlflow.tracking_uri  # type: ignore[union-attr]
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("rlaif-test")
    assert len(client.search_runs([exp.experiment_id])) == 1  # no second run
    steps = sorted(step for step, _ in mlflow_history(uri, first, "trainLoss"))
    assert steps == [1, 2, 3, 3, 4]  # step 3 trained (and logged) again after the resume
    assert client.get_run(first).info.status == "FINISHED"
    attempt(out, mlflow_spec, range(1, 2), None)  # no checkpoint: a new run
    assert json.loads((out / STATE_FILE).read_text())["mlflow"]["runId"] != first
    assert len(client.search_runs([exp.experiment_id])) == 2


def test_mlflow_store_it_refuses_is_a_config_error_naming_the_field(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    spec = TrackingSpec(tensorboard=False, mlflow=MlflowSpec(tracking_uri=(tmp_path / "m").as_uri()))
    with pytest.raises(TrackingError) as err:
        MetricsLogger(tmp_path / "metrics.jsonl", trackers=Trackers(spec, tmp_path, None))
    assert str(err.value).startswith("tracking.mlflow: could not start")
    assert "MLFLOW_ALLOW_FILE_STORE" in str(err.value) and "remove tracking.mlflow" in str(err.value)
    assert exit_code(err.value) == EXIT_CONFIG_ERROR
    assert not (tmp_path / "metrics.jsonl").exists()  # nothing written before the trackers started


def test_mlflow_server_that_does_not_answer_is_retryable(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    spec = TrackingSpec(tensorboard=False, mlflow=MlflowSpec(tracking_uri="http://127.0.0.1:9"))  # discard port
    with pytest.raises(trackers_mod.TrackingUnavailable, match=r"^tracking\.mlflow: could not start") as err:
        Trackers(spec, tmp_path, None).start()
    assert exit_code(err.value) == EXIT_RETRYABLE


# --- Weights & Biases -----------------------------------------------------------------------------------


@pytest.fixture
def wandb_env(tmp_path, monkeypatch) -> None:
    """Offline, silent, and nothing written outside tmp_path (no network is needed or reached)."""
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb-home" / var.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    monkeypatch.setenv("WANDB_DISABLE_CODE", "true")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)


def wandb_records(path: Path) -> list[Any]:
    """The records of a run-*.wandb file (LevelDB-style log: 7-byte header, then 32 KiB blocks of
    checksum(4) length(2) type(1) chunks; types FULL=1 or FIRST/MIDDLE/LAST=2/3/4)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, buf, records = 7, b"", []
    while pos + 7 <= len(data):
        if 32768 - pos % 32768 < 7:
            pos += 32768 - pos % 32768
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        buf += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            rec = pb.Record()  # type: ignore[attr-defined]
            rec.ParseFromString(buf)
            records.append(rec)
            buf = b""
    return records


def items(entries: Any) -> dict[str, Any]:
    return {e.key or "/".join(e.nested_key): json.loads(e.value_json) for e in entries}


def wandb_history(run_dir: Path) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    """(run id, history rows, last summary) of one offline run folder."""
    (file,) = run_dir.glob("run-*.wandb")
    run_id, rows, summary = "", [], {}
    for rec in wandb_records(file):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            run_id = rec.run.run_id
        elif kind == "history":
            rows.append({k: v for k, v in items(rec.history.item).items() if not k.startswith("_")})
        elif kind == "summary":
            summary.update(items(rec.summary.update))
    return run_id, rows, summary


@pytest.mark.usefixtures("wandb_env")
def test_wandb_offline_writes_the_run_and_a_resume_continues_it(tmp_path):
    spec = TrackingSpec(tensorboard=False, wandb=WandbSpec(project="rlaif-test", mode="offline"))
    out = tmp_path / "rm"
    attempt(out, spec, range(1, 4), None, summary={"evalAccuracy": 0.75})
    first = json.loads((out / STATE_FILE).read_text())["wandb"]
    attempt(out, spec, range(3, 5), resume_step=2)
    assert json.loads((out / STATE_FILE).read_text())["wandb"]["runId"] == first["runId"]
    runs = sorted((out / "wandb").glob("offline-run-*"))
    assert len(runs) == 2  # one folder per attempt, both of the one run id (wandb sync them in order)
    (id1, rows1, summary1), (id2, rows2, _) = (wandb_history(r) for r in runs)
    assert id1 == id2 == first["runId"]
    assert {r["step"]: r["trainLoss"] for r in rows1} == pytest.approx({1: 1.0, 2: 0.5, 3: 1 / 3})
    assert [r["step"] for r in rows1] == [1, 2, 3]
    assert "evalAccuracy" not in rows1[0] and "ok" not in rows1[0]  # NaN and bools stay in the JSONL
    assert summary1["evalAccuracy"] == 0.75
    assert [r["step"] for r in rows2] == [3, 4]  # our step, not W&B's own: the resumed steps go in


@pytest.mark.usefixtures("wandb_env")
def test_wandb_online_without_a_key_is_a_config_error_naming_the_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc from a `wandb login`
    monkeypatch.delenv("NETRC", raising=False)
    spec = TrackingSpec(tensorboard=False, wandb=WandbSpec(project="p"))
    with pytest.raises(TrackingError, match=r"^tracking\.wandb: could not start \(UsageError: No API key") as err:
        Trackers(spec, tmp_path, None).start()
    assert "tracking.wandb.apiKeySecret" in str(err.value) and "WANDB_API_KEY" in str(err.value)


# --- errors and the config ------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "package", "hint"), [
    (TrackingSpec(), "tensorboard", "or set tracking.tensorboard: false"),
    (TrackingSpec(tensorboard=False, mlflow=MlflowSpec(tracking_uri="http://m")), "mlflow",
     "or remove tracking.mlflow"),
    (TrackingSpec(tensorboard=False, wandb=WandbSpec(project="p")), "wandb", "or remove tracking.wandb"),
])
def test_missing_package_is_a_config_error_naming_the_field_and_the_fix(spec, package, hint, monkeypatch, tmp_path):
    real = trackers_mod.importlib.util.find_spec
    monkeypatch.setattr(trackers_mod.importlib.util, "find_spec", lambda name: None if name == package else real(name))
    field = f"tracking.{package}"
    expected = f"{field}: {package} is not installed in this image; install the `tracking` extra"
    with pytest.raises(ConfigError, match=f"^{expected}") as err:
        check_tracking(spec)
    assert str(err.value).endswith(hint) and exit_code(err.value) == EXIT_CONFIG_ERROR
    with pytest.raises(TrackingError, match=f"^{expected}"):  # the logger's start checks too
        MetricsLogger(tmp_path / "m.jsonl", trackers=Trackers(spec, tmp_path, None))
    check_tracking(TrackingSpec(tensorboard=False))  # nothing enabled: nothing needed


class _Flaky(Tracker):
    field, package, disable_hint = "tracking.flaky", "json", "remove it"

    def __init__(self) -> None:
        self.logged: list[int] = []
        self.finished = False

    def start(self, previous, params):
        return {}

    def log(self, step, metrics):
        self.logged.append(step)
        raise OSError("server hiccup")

    def finish(self, summary, ok):
        self.finished = True


def test_a_tracker_failing_mid_run_is_skipped_and_training_goes_on(tmp_path, caplog):
    trackers = Trackers(TrackingSpec(tensorboard=False), tmp_path, None)
    flaky = _Flaky()
    trackers.trackers.append(flaky)
    logger = MetricsLogger(tmp_path / "m.jsonl", trackers=trackers)
    for step in (1, 2, 3):
        logger.log(step, trainLoss=0.1)
    assert logger.close() == ["tracking.flaky"]  # the summary names it (TrainingRun.report)
    assert flaky.logged == [1] and flaky.finished  # warned once, then left out; still finished
    assert [r["step"] for r in read_metrics(tmp_path / "m.jsonl")] == [1, 2, 3]
    assert sum("tracking.flaky: logging failed" in r.message for r in caplog.records) == 1


def test_other_ranks_start_no_tracker(tmp_path):
    trackers = Trackers(TrackingSpec(), tmp_path, None)
    MetricsLogger(tmp_path / "m.jsonl", enabled=False, trackers=trackers).close()
    assert not (tmp_path / "tensorboard").exists() and not (tmp_path / STATE_FILE).exists()


def test_reward_and_policy_configs_carry_tracking_with_tensorboard_on_by_default():
    reward = RewardConfig.model_validate({"baseModel": {"uri": "builtin://x"}, "preferencesUri": "/l.jsonl",
                                          "output": {"uri": "/o"}, "tracking": {
                                              "mlflow": {"trackingUri": "https://mlflow.example.com",
                                                         "credentialsSecret": "mlflow-creds"},
                                              "wandb": {"project": "p", "apiKeySecret": {"name": "wb", "key": "k"}}}})
    assert reward.tracking.tensorboard and reward.tracking.mlflow and reward.tracking.mlflow.experiment == "rlaif"
    assert reward.to_wire()["tracking"]["wandb"] == {"project": "p", "mode": "online",
                                                     "apiKeySecret": {"name": "wb", "key": "k"}}
    policy = PolicyConfig.model_validate({"policy": {"uri": "builtin://x"}, "prompts": {"uri": "/p.jsonl"},
                                          "rewardModelUri": "/rm", "evaluation": {"enabled": False},
                                          "output": {"uri": "/o"}})
    assert policy.tracking == TrackingSpec()


@pytest.mark.parametrize(("tracking", "where"), [
    ({"wandb": {"project": "p", "mode": "later"}}, "tracking.wandb.mode"),
    ({"wandb": {"mode": "offline"}}, "tracking.wandb.project"),
    ({"mlflow": {"experiment": "e"}}, "tracking.mlflow.trackingUri"),
    ({"mlflow": {"trackingUri": "http://m", "apiKey": "x"}}, "tracking.mlflow.apiKey"),
])
def test_bad_tracking_settings_are_refused_by_field(tracking, where):
    with pytest.raises(ValidationError) as err:
        RewardConfig.model_validate({"baseModel": {"uri": "builtin://x"}, "preferencesUri": "/l.jsonl",
                                     "output": {"uri": "/o"}, "tracking": tracking})
    assert where in {".".join(str(p) for p in e["loc"]) for e in err.value.errors()}
