"""Resumable checkpoints of one or more DeepSpeed engines plus the trainer's own state.

Layout under ``root`` (a folder every rank can write: a shared volume on several nodes)::

    root/step-00000040/<engine name>/...     DeepSpeed's files: weights, optimizer and LR-schedule
                                             state, one ZeRO shard per rank
    root/step-00000040/trainer_state.json    the caller's state: step, data position, anything JSON
    root/step-00000040/COMPLETE              written last by rank 0, after every rank has finished
    root/latest                              'step-00000040', replaced atomically after COMPLETE

A checkpoint is visible only once its COMPLETE marker exists; a process killed halfway through a save
leaves a folder without one, which is ignored and later removed. Loading takes the newest complete
checkpoint (``latest`` if it names a complete one, else a scan), so a preempted run loses at most one
checkpoint interval. The newest ``keep`` complete checkpoints survive; older ones are deleted.
Resuming needs the world size that wrote the checkpoint (DeepSpeed's ZeRO shards are per rank).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif_jobs import io
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.train.dist import DistEnv, barrier, broadcast_object

log = logging.getLogger(__name__)

MARKER = "COMPLETE"
STATE_FILE = "trainer_state.json"
LATEST = "latest"
_NAME = re.compile(r"^step-(\d{8,})$")


class CheckpointError(ConfigError):
    """A checkpoint that exists but cannot be resumed from here (e.g. another world size)."""


@dataclass(frozen=True)
class CheckpointInfo:
    """A complete checkpoint: its folder, step and the trainer state saved with it."""

    path: Path
    step: int
    state: dict[str, Any]


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


class CheckpointManager:
    """Saves and restores named DeepSpeed engines together (``{"model": engine}`` or
    ``{"policy": p, "value": v}``), with an atomic ``latest`` pointer and pruning to ``keep``.

    All methods that take engines are collective: every rank calls them, in the same order.
    """

    def __init__(self, root: str | Path, keep: int, env: DistEnv):
        self.root = Path(str(root).removeprefix("file://"))
        self.keep = max(1, keep)
        self.env = env

    # --- what is on disk (any rank may call these) ------------------------------------------------
    def complete(self) -> list[CheckpointInfo]:
        """Complete checkpoints, oldest first."""
        out: list[CheckpointInfo] = []
        if not self.root.is_dir():
            return out
        for d in self.root.iterdir():
            m = _NAME.match(d.name)
            if m and d.is_dir() and (d / MARKER).exists():
                try:
                    state = json.loads((d / STATE_FILE).read_text())
                except (OSError, json.JSONDecodeError):
                    continue  # a marker without its state: not usable
                out.append(CheckpointInfo(d, int(m.group(1)), state))
        return sorted(out, key=lambda c: c.step)

    def latest(self) -> CheckpointInfo | None:
        """The newest complete checkpoint, or None. Trusts ``latest`` only if it names a complete one."""
        done = self.complete()
        pointer = self.root / LATEST
        if pointer.exists():
            name = pointer.read_text().strip()
            named = [c for c in done if c.path.name == name]
            if named and named[0].step == max(c.step for c in done):
                return named[0]
        return done[-1] if done else None

    # --- collective operations --------------------------------------------------------------------
    def save(self, engines: Mapping[str, Any], step: int, state: dict[str, Any]) -> Path:
        """Saves every engine and ``state`` (JSON-serialisable) as the checkpoint of ``step``.

        Order: rank 0 clears any stale folder of this step; every rank writes its DeepSpeed shards;
        barrier; rank 0 writes the state, then COMPLETE, then ``latest``, then prunes; barrier.
        """
        path = self.root / step_dir_name(step)
        if self.env.is_main:
            if path.exists():
                shutil.rmtree(path)  # an interrupted earlier save of the same step
            path.mkdir(parents=True)
        barrier()
        for name, engine in engines.items():
            engine.save_checkpoint(str(path), tag=name, save_latest=False)
        barrier()
        if self.env.is_main:
            full = {**state, "step": step, "worldSize": self.env.world_size, "engines": sorted(engines),
                    "zeroStages": {n: e.zero_optimization_stage() for n, e in engines.items()},
                    "savedAt": time.time()}
            io.write_json(str(path / STATE_FILE), full)
            io.write_json(str(path / MARKER), {"step": step})
            with io.atomic_open(str(self.root / LATEST)) as f:
                f.write(path.name + "\n")
            self._prune()
        barrier()
        log.info("checkpoint %s saved", path)
        return path

    def load(self, engines: Mapping[str, Any]) -> CheckpointInfo | None:
        """Restores every engine (weights, optimizer, LR schedule) from the newest complete checkpoint.

        Returns its CheckpointInfo (``state`` holds what ``save`` was given, plus ``step``), or None
        when there is none (a fresh start). Rank 0 picks the checkpoint and tells the others, so all
        ranks load the same one. Raises CheckpointError if it was written by another world size or
        lacks one of the engines.
        """
        info = self.latest() if self.env.is_main else None
        if self.env.is_main:
            self._remove_incomplete()
        name = broadcast_object(info.path.name if info else None, self.env)
        if name is None:
            return None
        info = next(c for c in self.complete() if c.path.name == name)
        saved_world = info.state.get("worldSize")
        if saved_world != self.env.world_size:
            raise CheckpointError(
                f"checkpoint {info.path} was written by {saved_world} processes and this run has"
                f" {self.env.world_size}; resume with the same number of processes, or move the"
                " checkpoints folder away to start over")
        saved_stages = info.state.get("zeroStages", {})
        for name_, engine in engines.items():
            saved, now = saved_stages.get(name_), engine.zero_optimization_stage()
            if saved is not None and saved != now:
                # DeepSpeed lays optimizer state out per stage: loading another stage's files fails deep inside
                raise CheckpointError(
                    f"checkpoint {info.path} was written at ZeRO stage {saved} and this run uses stage {now}"
                    " (zeroStage unset: 0 on one process, 2 on several); resume with the same deepspeed settings and"
                    " number of processes, or move the checkpoints folder away to start over")
        missing = set(engines) - set(info.state.get("engines", []))
        if missing:
            raise CheckpointError(f"checkpoint {info.path} has no engine(s) {sorted(missing)}")
        for name_, engine in engines.items():
            loaded, _ = engine.load_checkpoint(str(info.path), tag=name_, load_optimizer_states=True,
                                               load_lr_scheduler_states=True)
            if loaded is None:
                raise CheckpointError(f"checkpoint {info.path}: DeepSpeed could not load engine {name_!r}")
        barrier()
        log.info("resumed from %s (step %d)", info.path, info.step)
        return info

    # --- housekeeping (rank 0) ----------------------------------------------------------------------
    def _prune(self) -> None:
        done = self.complete()
        for old in done[: max(0, len(done) - self.keep)]:
            shutil.rmtree(old.path, ignore_errors=True)
        newest = done[-1].step if done else -1
        for d in self.root.iterdir():  # debris of saves that died before their marker
            m = _NAME.match(d.name)
            if m and int(m.group(1)) < newest and not (d / MARKER).exists():
                shutil.rmtree(d, ignore_errors=True)

    def _remove_incomplete(self) -> None:
        if not self.root.is_dir():
            return
        for d in self.root.iterdir():
            if _NAME.match(d.name) and d.is_dir() and not (d / MARKER).exists():
                log.warning("removing incomplete checkpoint %s (its save was interrupted)", d)
                shutil.rmtree(d, ignore_errors=True)
