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

Resuming at another world size (a run preempted on 4 nodes continuing on 2): DeepSpeed's ZeRO shards
are per rank, so ``trainer_state.json`` records the ``worldSize`` that wrote them, and a load at another
size first converts each engine's shards into a DeepSpeed *universal checkpoint* (rank 0, once, with
``deepspeed.checkpoint.ds_to_universal``, into ``step-N/<engine>.universal``; atomically, so an
interrupted conversion is redone), then loads it: at ZeRO 1-3 through DeepSpeed's own universal load
(``load_universal_checkpoint``), at ZeRO 0 (one process with zeroStage unset) by copying the fp32 master
weights, Adam moments and step counts into the torch optimizer here (DeepSpeed has no universal load
without ZeRO). The LR schedule and step counters come from the saved model states. The source must
have been written with ZeRO 1-3 (any multi-process run: zeroStage unset is 2 there); a ZeRO-0
checkpoint holds its optimizer state in a form the converter cannot read and is refused. The global
batch (``batchSize``) must stay the same, so the data position, which is the optimizer step, carries
over (``plan_batches`` re-splits it over the new world). Tested: ZeRO 2 on 2 ranks to ZeRO 0 and ZeRO 2
on one, fp32 and bf16 (tests/jobs/reward/test_resume_world_size.py); ZeRO 3 to ZeRO 3 takes the same
DeepSpeed calls but no test here covers it. The universal copy doubles that checkpoint's size on disk
until it is pruned with its step folder.
"""

from __future__ import annotations

import argparse
import contextlib
import io as _stdio
import json
import logging
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rlaif_jobs import io, progress
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.train.dist import DistEnv, barrier, broadcast_object

log = logging.getLogger(__name__)

MARKER = "COMPLETE"
STATE_FILE = "trainer_state.json"
LATEST = "latest"
UNIVERSAL = ".universal"  # step-N/<engine>.universal: that engine's shards as a universal checkpoint
CONVERTED = "CONVERTED"  # written last into a finished universal folder
_NAME = re.compile(r"^step-(\d{8,})$")


class CheckpointError(ConfigError):
    """A checkpoint that exists but cannot be resumed from here (e.g. another world size)."""


@dataclass(frozen=True)
class CheckpointInfo:
    """A complete checkpoint: its folder, step and the trainer state saved with it."""

    path: Path
    step: int
    state: dict[str, Any]
    resharded_from: int | None = None  # the world size that wrote it, when another one loaded it


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
        reshard = saved_world != self.env.world_size
        saved_stages = info.state.get("zeroStages", {})
        for name_, engine in engines.items():
            saved, now = saved_stages.get(name_), engine.zero_optimization_stage()
            if reshard:
                self._check_reshardable(info, name_, saved, now)
            elif saved is not None and saved != now:
                # DeepSpeed lays optimizer state out per stage: loading another stage's files fails deep inside
                raise CheckpointError(
                    f"checkpoint {info.path} was written at ZeRO stage {saved} and this run uses stage {now}"
                    " (zeroStage unset: 0 on one process, 2 on several); resume with the same deepspeed settings and"
                    " number of processes, or move the checkpoints folder away to start over")
        missing = set(engines) - set(info.state.get("engines", []))
        if missing:
            raise CheckpointError(f"checkpoint {info.path} has no engine(s) {sorted(missing)}")
        if reshard:
            log.warning("checkpoint %s was written by %s processes and this run has %d: converting it to a"
                        " universal checkpoint and resharding", info.path, saved_world, self.env.world_size)
            if self.env.is_main:
                progress.report("resharding checkpoint", 0, len(engines), "engines",
                                doing=f"world size {saved_world} -> {self.env.world_size}")
        for i, (name_, engine) in enumerate(engines.items()):
            if reshard:
                load_universal(engine, info.path / self._universal(info.path, name_))
                if self.env.is_main:
                    progress.report("resharding checkpoint", i + 1, len(engines), "engines",
                                    doing=f"world size {saved_world} -> {self.env.world_size}")
                continue
            loaded, _ = engine.load_checkpoint(str(info.path), tag=name_, load_optimizer_states=True,
                                               load_lr_scheduler_states=True)
            if loaded is None:
                raise CheckpointError(f"checkpoint {info.path}: DeepSpeed could not load engine {name_!r}")
        barrier()
        if reshard:
            info = replace(info, resharded_from=int(saved_world) if saved_world is not None else None)
            log.info("resumed from %s (step %d), resharded from world size %s to %d", info.path, info.step,
                     saved_world, self.env.world_size)
        else:
            log.info("resumed from %s (step %d)", info.path, info.step)
        return info

    # --- another world size: universal checkpoints --------------------------------------------------
    def _check_reshardable(self, info: CheckpointInfo, name: str, saved: int | None, now: int) -> None:
        world = info.state.get("worldSize")
        if saved not in (1, 2, 3):
            raise CheckpointError(
                f"checkpoint {info.path} was written by {world} process(es) at ZeRO stage {saved} and this run"
                f" has {self.env.world_size}: only ZeRO 1-3 checkpoints can be resumed at another world size"
                " (DeepSpeed's universal checkpoint converter reads ZeRO shards); resume with"
                f" {world} process(es), or move the checkpoints folder away to start over")
        if (saved == 3) != (now == 3):
            raise CheckpointError(
                f"checkpoint {info.path} was written at ZeRO stage {saved} and this run uses stage {now}: across"
                " world sizes a ZeRO-3 checkpoint resumes only at ZeRO 3 and others only at ZeRO 0-2; set"
                " deepspeed.zeroStage accordingly, or move the checkpoints folder away to start over")

    def _universal(self, step_dir: Path, name: str) -> str:
        """The tag of engine ``name``'s universal checkpoint in ``step_dir``, converting it first if needed
        (rank 0; collective: every rank waits, and a failed conversion fails every rank)."""
        tag = name + UNIVERSAL
        error = None
        if self.env.is_main and not (step_dir / tag / CONVERTED).exists():
            try:
                convert_to_universal(step_dir / name, step_dir / tag)
            except Exception as e:  # noqa: BLE001  (reported on every rank below)
                error = f"{type(e).__name__}: {e}"
        error = broadcast_object(error, self.env)
        if error is not None:
            raise CheckpointError(f"checkpoint {step_dir}: converting engine {name!r} to a universal checkpoint"
                                  f" failed ({error}); resume with the world size that wrote it")
        return tag

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


def convert_to_universal(src: Path, dst: Path) -> Path:
    """Converts one engine's DeepSpeed ZeRO checkpoint folder ``src`` (per-rank shards) into a universal
    checkpoint at ``dst`` (one folder per parameter: fp32 weights, Adam moments, step), written beside it
    and renamed into place, with a ``CONVERTED`` marker last. Runs on one process, in this process."""
    from deepspeed.checkpoint.ds_to_universal import main as ds_to_universal

    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.time()
    args = argparse.Namespace(input_folder=str(src), output_folder=str(tmp), num_extract_workers=1,
                              num_merge_workers=1, keep_temp_folder=False, strict=True,
                              # our engines carry no universal_checkpoint_info (no tensor/pipeline parallelism)
                              inject_missing_state=True)
    chatter = _stdio.StringIO()
    with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):  # its prints and tqdm bars
        ds_to_universal(args)
    log.debug("ds_to_universal: %s", chatter.getvalue())
    io.write_json(str(tmp / CONVERTED), {"source": src.name, "seconds": round(time.time() - t0, 2)})
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    log.info("converted %s to the universal checkpoint %s in %.1f s", src, dst, time.time() - t0)
    return dst


def load_universal(engine: Any, folder: Path) -> None:
    """Loads the universal checkpoint ``folder`` into ``engine``: weights, optimizer state, LR schedule.

    ZeRO 1-3: DeepSpeed's universal load (its config switch ``load_universal_checkpoint`` is read at load
    time, so it is turned on for this call only). ZeRO 0: ``_load_universal_unpartitioned``.
    """
    if engine.zero_optimization_stage() == 0:
        _load_universal_unpartitioned(engine, folder)
        return
    config = engine._config  # DeepSpeedConfig; engine.load_universal_checkpoint() reads this attribute
    before = config.load_universal_checkpoint
    config.load_universal_checkpoint = True
    try:
        loaded, _ = engine.load_checkpoint(str(folder.parent), tag=folder.name, load_optimizer_states=True,
                                           load_lr_scheduler_states=True)
    finally:
        config.load_universal_checkpoint = before
    if loaded is None:
        raise CheckpointError(f"universal checkpoint {folder}: DeepSpeed could not load it")


def _load_universal_unpartitioned(engine: Any, folder: Path) -> None:
    """A universal checkpoint into an engine without ZeRO (stage 0): DeepSpeed has no universal load there.

    The optimizer is torch's (fp32 training) or DeepSpeed's FP16_UnfusedOptimizer around it (bf16: fp32
    master copies in ``fp32_groups`` beside the module's ``fp16_groups``). Per parameter: the fp32 master
    weight (and the module's copy in its dtype), and the Adam state (``exp_avg``, ``exp_avg_sq``,
    ``step``) where the checkpoint has one. Then the LR schedule and the engine's step counters from the
    saved model states, and each group's current learning rate from the schedule.
    """
    import torch

    opt = engine.optimizer
    inner = getattr(opt, "optimizer", opt)  # the torch optimizer holding the state
    masters: dict[int, Any] = {}
    for g16, g32 in zip(getattr(opt, "fp16_groups", []), getattr(opt, "fp32_groups", []), strict=True):
        for lp, hp in zip(g16, g32, strict=True):
            masters[id(lp)] = hp
    in_groups = {id(p): g for g in inner.param_groups for p in g["params"]}
    zero = folder / "zero"
    for name, p in engine.module.named_parameters():
        d = zero / name
        if not (d / "fp32.pt").exists():
            raise CheckpointError(f"universal checkpoint {folder} has no parameter {name!r}")
        fp32 = torch.load(d / "fp32.pt", map_location="cpu", weights_only=False)["param"]
        master = masters.get(id(p), p)
        with torch.no_grad():
            master.copy_(fp32.view(master.shape))
            if master is not p:
                p.copy_(fp32.view(p.shape))
        group = in_groups.get(id(master))
        if group is None or not (d / "exp_avg.pt").exists():
            continue  # frozen, or never stepped
        step = float(torch.load(d / "step.pt", map_location="cpu", weights_only=False))
        on_device = group.get("fused") or group.get("capturable")
        state = {"step": torch.tensor(step, dtype=torch.float32, device=master.device if on_device else "cpu")}
        for key in ("exp_avg", "exp_avg_sq"):
            t = torch.load(d / f"{key}.pt", map_location="cpu", weights_only=False)["param"]
            state[key] = t.view(master.shape).to(device=master.device, dtype=master.dtype)
        inner.state[master] = state
    files = sorted(folder.glob("mp_rank_*_model_states.pt"))
    if not files:
        raise CheckpointError(f"universal checkpoint {folder} has no model states file")
    saved = torch.load(files[0], map_location="cpu", weights_only=False)
    if engine.lr_scheduler is not None and saved.get("lr_scheduler") is not None:
        engine.lr_scheduler.load_state_dict(saved["lr_scheduler"])
        for group, lr in zip(inner.param_groups, engine.lr_scheduler.get_last_lr(), strict=False):
            group["lr"] = lr
    for attr in ("global_steps", "global_samples", "skipped_steps"):
        if attr in saved:
            setattr(engine, attr, saved[attr])
