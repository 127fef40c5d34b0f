"""Experiment trackers: where a trainer's per-step metrics go besides ``metrics.jsonl``.

One interface, three backends (``tracking`` in the reward and policy configs,
``rlaif_jobs.config.tracking``)::

    tracker.start(previous, params) -> state   # previous: what start returned on the last attempt
    tracker.log(step, {"trainLoss": 0.5, ...})  # numbers only
    tracker.finish(summary, ok)

- ``TensorBoardTracker``: event files under ``<output>/tensorboard`` (torch.utils.tensorboard); a resumed
  run purges the events after the checkpoint's step, as the JSONL drops its lines;
- ``MlflowTracker``: one MLflow run per stage (``MlflowClient``: no global active run), the config as its
  parameters, the stage's final figures as ``final/<name>`` metrics;
- ``WandbTracker``: one W&B run per stage; online, or offline under ``<output>/wandb``; the config as
  the run's config, the final figures as its summary.

``Trackers`` fans out to the enabled ones (rank 0 only, through ``MetricsLogger``) and keeps the run
ids in ``<output>/tracking.json``, next to the checkpoints: a stage that resumes from a checkpoint
continues the same MLflow and W&B runs instead of starting second ones (the steps trained again after
the checkpoint are logged again; the JSONL, the source of truth, holds them once).

Errors: ``check_tracking`` (every rank, before anything slow) refuses an enabled tracker whose package
is missing; a tracker that cannot start is a ``ConfigError`` naming its field (a ``RetryableError``
when the cause is a connection or a timeout: a rerun may fix it). A tracker that fails mid-run is
warned about once and skipped: hours of training are not lost to a tracking server's hiccup.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from rlaif_jobs import io
from rlaif_jobs.config.tracking import MlflowSpec, TrackingSpec, WandbSpec
from rlaif_jobs.errors import ConfigError, RetryableError

log = logging.getLogger(__name__)

STATE_FILE = "tracking.json"
TENSORBOARD_DIR = "tensorboard"
EXTRA_HINT = "install the `tracking` extra (pip install 'rlaif[tracking]'; the trainer image has it)"
FINAL_PREFIX = "final/"  # MLflow: the stage's final figures, beside the per-step metrics
PARAM_MAX_CHARS = 500  # MLflow servers before 2.x refuse longer parameter values


class TrackingError(ConfigError):
    """An enabled tracker cannot run: its package is missing or it refused to start (exit code 3)."""


class TrackingUnavailable(RetryableError):
    """An enabled tracker could not reach its server (a connection error or a timeout): exit code 1."""


class Tracker:
    """The interface. ``field`` names the config field in errors; ``package`` the module it needs."""

    field: ClassVar[str]
    package: ClassVar[str]
    disable_hint: ClassVar[str]

    def start(self, previous: Mapping[str, Any] | None, params: Mapping[str, Any]) -> dict[str, Any]:
        """Starts (or, given the state a previous attempt returned, continues) the run; returns the
        state to keep for a resume (JSON)."""
        raise NotImplementedError

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        raise NotImplementedError

    def finish(self, summary: Mapping[str, float], ok: bool) -> None:
        raise NotImplementedError


# --- TensorBoard ---------------------------------------------------------------------------------------


class TensorBoardTracker(Tracker):
    field = "tracking.tensorboard"
    package = "tensorboard"
    disable_hint = "set tracking.tensorboard: false"

    def __init__(self, log_dir: Path, resume_step: int | None) -> None:
        self.log_dir, self.resume_step = log_dir, resume_step
        self._writer: Any = None

    def start(self, previous: Mapping[str, Any] | None, params: Mapping[str, Any]) -> dict[str, Any]:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: TensorBoard drops the events of steps >= it written before (an aborted attempt's).
        purge = 0 if self.resume_step is None else self.resume_step + 1
        self._writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=purge)
        return {"logDir": str(self.log_dir)}

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        for key, value in metrics.items():
            self._writer.add_scalar(key, value, step)

    def finish(self, summary: Mapping[str, float], ok: bool) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# --- MLflow --------------------------------------------------------------------------------------------


class MlflowTracker(Tracker):
    field = "tracking.mlflow"
    package = "mlflow"
    disable_hint = "remove tracking.mlflow"

    def __init__(self, spec: MlflowSpec, run_name: str, tags: Mapping[str, str]) -> None:
        self.spec, self.run_name, self.tags = spec, run_name, dict(tags)
        self.client: Any = None
        self.run_id: str | None = None
        self.last_step = 0

    def _experiment_id(self) -> str:
        exp = self.client.get_experiment_by_name(self.spec.experiment)
        if exp is not None:
            return str(exp.experiment_id)
        try:
            return str(self.client.create_experiment(self.spec.experiment))
        except Exception:  # another stage created it in between
            exp = self.client.get_experiment_by_name(self.spec.experiment)
            if exp is None:
                raise
            return str(exp.experiment_id)

    def _continue(self, previous: Mapping[str, Any] | None) -> str | None:
        """The previous attempt's run id when it is the same server and experiment and still there."""
        if not previous or previous.get("trackingUri") != self.spec.tracking_uri \
                or previous.get("experiment") != self.spec.experiment or not previous.get("runId"):
            return None
        run_id = str(previous["runId"])
        try:
            run = self.client.get_run(run_id)
        except Exception as err:  # deleted, or another store behind the same URI
            log.warning("MLflow run %s of the previous attempt is gone (%s): starting a new run", run_id, err)
            return None
        if run.info.lifecycle_stage == "deleted":
            log.warning("MLflow run %s of the previous attempt was deleted: starting a new run", run_id)
            return None
        return run_id

    def start(self, previous: Mapping[str, Any] | None, params: Mapping[str, Any]) -> dict[str, Any]:
        from mlflow.entities import Param
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri=self.spec.tracking_uri)
        run_id = self._continue(previous)
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            log.info("MLflow: continuing run %s", run_id)
        else:
            run = self.client.create_run(self._experiment_id(), run_name=self.run_name, tags=self.tags)
            run_id = run.info.run_id
            flat = [Param(k, v) for k, v in flatten_params(params).items()]
            for i in range(0, len(flat), 100):  # MLflow takes at most 100 params per batch
                self.client.log_batch(run_id, params=flat[i:i + 100])
            log.info("MLflow: run %s in experiment %s at %s", run_id, self.spec.experiment, self.spec.tracking_uri)
        self.run_id = run_id
        return {"runId": run_id, "trackingUri": self.spec.tracking_uri, "experiment": self.spec.experiment}

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.last_step = step
        self.client.log_batch(self.run_id, metrics=[Metric(k, v, now, step) for k, v in metrics.items()])

    def finish(self, summary: Mapping[str, float], ok: bool) -> None:
        if self.client is None or self.run_id is None:
            return
        if summary:  # under final/: a per-step metric of the same name keeps its own curve
            self.log(self.last_step, {f"{FINAL_PREFIX}{k}": v for k, v in summary.items()})
        self.client.set_terminated(self.run_id, "FINISHED" if ok else "FAILED")
        self.run_id = None


# --- Weights & Biases ----------------------------------------------------------------------------------


class WandbTracker(Tracker):
    field = "tracking.wandb"
    package = "wandb"
    disable_hint = "remove tracking.wandb"

    def __init__(self, spec: WandbSpec, out: Path, run_name: str, tags: Mapping[str, str]) -> None:
        self.spec, self.out, self.run_name, self.tags = spec, out, run_name, dict(tags)
        self.run: Any = None

    def _continue(self, previous: Mapping[str, Any] | None) -> str | None:
        if not previous or previous.get("project") != self.spec.project \
                or previous.get("entity") != self.spec.entity or not previous.get("runId"):
            return None
        return str(previous["runId"])

    def start(self, previous: Mapping[str, Any] | None, params: Mapping[str, Any]) -> dict[str, Any]:
        import wandb

        run_id = self._continue(previous)
        self.out.mkdir(parents=True, exist_ok=True)
        # console off: the workload's own stdout (progress lines, the termination message) stays untouched.
        settings = wandb.Settings(console="off", silent=True)
        self.run = wandb.init(
            project=self.spec.project, entity=self.spec.entity, name=self.run_name, mode=self.spec.mode,
            dir=str(self.out), id=run_id, resume="allow" if run_id else None, config=dict(params),
            tags=[f"{k}={v}" for k, v in self.tags.items()], reinit="create_new", settings=settings)
        # Our step is a metric of its own: a resumed run logs the steps after its checkpoint again, and
        # W&B's own step only grows.
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")
        log.info("W&B: %s run %s in project %s (%s)", "continuing" if run_id else "started", self.run.id,
                 self.spec.project, self.spec.mode)
        return {"runId": self.run.id, "project": self.spec.project, "entity": self.spec.entity,
                "mode": self.spec.mode}

    def log(self, step: int, metrics: Mapping[str, float]) -> None:
        self.run.log({**metrics, "step": step})

    def finish(self, summary: Mapping[str, float], ok: bool) -> None:
        if self.run is None:
            return
        if summary:
            self.run.summary.update(dict(summary))
        self.run.finish(exit_code=0 if ok else 1)
        self.run = None


# --- the fan-out ---------------------------------------------------------------------------------------


def _enabled_packages(spec: TrackingSpec) -> list[tuple[str, str, str]]:
    found = []
    if spec.tensorboard:
        found.append((TensorBoardTracker.field, TensorBoardTracker.package, TensorBoardTracker.disable_hint))
    if spec.mlflow is not None:
        found.append((MlflowTracker.field, MlflowTracker.package, MlflowTracker.disable_hint))
    if spec.wandb is not None:
        found.append((WandbTracker.field, WandbTracker.package, WandbTracker.disable_hint))
    return found


def check_tracking(spec: TrackingSpec) -> None:
    """Refuses (TrackingError, exit 3) an enabled tracker whose package this image lacks. Cheap: every
    rank calls it before anything slow, so all ranks fail alike and none waits on another."""
    for field, package, hint in _enabled_packages(spec):
        if importlib.util.find_spec(package) is None:
            raise TrackingError(f"{field}: {package} is not installed in this image; {EXTRA_HINT}, or {hint}")


def _is_transient(err: BaseException) -> bool:
    """A connection error or a timeout anywhere in the exception's chain (a rerun may fix it)."""
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        name = type(cur).__name__
        if isinstance(cur, ConnectionError | TimeoutError) or "Connection" in name or "Timeout" in name:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def default_run_name(out: Path) -> str:
    """The resource's name on a cluster (``RLAIF_RESOURCE`` is ``Kind/name``), else the output folder's."""
    return os.environ.get("RLAIF_RESOURCE", "").partition("/")[2] or out.name


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> {"training.learningRate": "1e-05", ...}; lists as JSON; values cut at 500 chars."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, name + "."))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flat[name] = text[:PARAM_MAX_CHARS]
    return flat


def numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The finite numeric entries (bools, strings and None are JSONL-only)."""
    return {k: float(v) for k, v in metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)}


class Trackers:
    """The enabled trackers of one stage, run on rank 0.

    Inputs: the ``tracking`` spec, the stage's output folder (tensorboard/, wandb/, tracking.json go
    there), the step the stage resumes from (None: a fresh start, which starts new runs), the
    config to record as the runs' parameters, and a short name of the stage ("reward", "policy").
    """

    def __init__(self, spec: TrackingSpec | None, out: Path, resume_step: int | None,
                 params: Mapping[str, Any] | None = None, stage: str = "", run_name: str | None = None) -> None:
        self.spec = spec if spec is not None else TrackingSpec()
        self.out, self.resume_step, self.params = out, resume_step, dict(params or {})
        name = run_name or default_run_name(out)
        tags = {"rlaif.stage": stage} if stage else {}
        self.trackers: list[Tracker] = []
        if self.spec.tensorboard:
            self.trackers.append(TensorBoardTracker(out / TENSORBOARD_DIR, resume_step))
        if self.spec.mlflow is not None:
            self.trackers.append(MlflowTracker(self.spec.mlflow, self.spec.mlflow.run_name or name, tags))
        if self.spec.wandb is not None:
            self.trackers.append(WandbTracker(self.spec.wandb, out, self.spec.wandb.run_name or name, tags))
        self.started: list[Tracker] = []
        self._failed: set[str] = set()

    @property
    def state_path(self) -> Path:
        return self.out / STATE_FILE

    def _previous(self) -> dict[str, Any]:
        """What the last attempt kept, when this one resumes from a checkpoint (a fresh start continues
        nothing: its metrics begin at step 0 again)."""
        if self.resume_step is None or not self.state_path.exists():
            return {}
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            log.warning("%s unreadable (%s): the trackers start new runs", self.state_path, err)
            return {}
        return state if isinstance(state, dict) else {}

    def start(self) -> None:
        """Starts every enabled tracker; the first that fails stops the others and raises TrackingError
        (exit 3) naming its field, or TrackingUnavailable (exit 1) for a connection error or timeout."""
        check_tracking(self.spec)
        previous = self._previous()
        state: dict[str, Any] = {}
        for tracker in self.trackers:
            key = tracker.field.removeprefix("tracking.")
            try:
                state[key] = tracker.start(previous.get(key), self.params)
            except ImportError as err:
                self.finish({}, ok=False)
                raise TrackingError(f"{tracker.field}: {tracker.package} is not importable in this image ({err});"
                                    f" {EXTRA_HINT}, or {tracker.disable_hint}") from err
            except Exception as err:
                self.finish({}, ok=False)
                what = f"{tracker.field}: could not start ({type(err).__name__}: {str(err)[:1000]})"
                if _is_transient(err):
                    raise TrackingUnavailable(f"{what}; the server did not answer, a rerun may succeed") from err
                raise TrackingError(f"{what}; check {tracker.field} (URI, project, credentials: {_creds(tracker)})"
                                    f" or {tracker.disable_hint}") from err
            self.started.append(tracker)
        io.write_json(str(self.state_path), state)

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Sends the numeric metrics of ``step`` to every started tracker; a failure is warned about once
        per tracker and the tracker is skipped from then on (the JSONL has every line)."""
        values = numbers(metrics)
        if not values:
            return
        for tracker in self.started:
            if tracker.field in self._failed:
                continue
            try:
                tracker.log(step, values)
            except Exception as err:  # noqa: BLE001 - a tracker never stops the training
                self._failed.add(tracker.field)
                log.warning("%s: logging failed (%s: %s); it gets no more metrics in this attempt (they are all"
                            " in metrics.jsonl)", tracker.field, type(err).__name__, err)

    def finish(self, summary: Mapping[str, Any], ok: bool = True) -> None:
        """Ends every started tracker (``summary``: the stage's final figures, numbers only)."""
        values = numbers(summary)
        for tracker in reversed(self.started):
            try:
                tracker.finish(values, ok)
            except Exception as err:  # noqa: BLE001
                self._failed.add(tracker.field)
                log.warning("%s: finishing failed (%s: %s)", tracker.field, type(err).__name__, err)
        self.started = []

    @property
    def failed(self) -> list[str]:
        """The config fields of the trackers that failed after starting (the summary names them)."""
        return sorted(self._failed)


def _creds(tracker: Tracker) -> str:
    if isinstance(tracker, WandbTracker):
        return "tracking.wandb.apiKeySecret, WANDB_API_KEY in local mode"
    if isinstance(tracker, MlflowTracker):
        return "tracking.mlflow.credentialsSecret, MLFLOW_TRACKING_* in local mode"
    return "none"
