"""Process-group set-up from the launcher's environment, and the few collectives the trainers need.

``torchrun`` (and the ``deepspeed`` launcher, and a Kubernetes Indexed Job that sets the same variables)
gives every process RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT.
A plain ``python -m ...`` has none of them: it runs as a world of one on a free local port, so the same
entrypoint works with and without a launcher. The backend is NCCL when CUDA is present, else gloo
(DeepSpeed's CPU accelerator would otherwise ask for oneCCL, which is not installed).
"""

from __future__ import annotations

import importlib
import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistEnv:
    """Where this process stands in the job.

    rank / world_size: global; local_rank / local_world_size: on this node; backend: 'gloo' or
    'nccl'; device: the torch device this rank computes on (``cuda:LOCAL_RANK`` or ``cpu``).
    """

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    backend: str
    device: Any  # torch.device; typed loosely so that importing this module does not import torch

    @property
    def is_main(self) -> bool:
        """True on global rank 0: the rank that writes shared files (metrics, markers, the model)."""
        return self.rank == 0


def world_size_from_env() -> int:
    """WORLD_SIZE as the launcher set it (1 without a launcher); readable before any process group
    exists, so configs can be checked against it before anything slow starts."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_backend() -> str:
    """'nccl' where CUDA is available, else 'gloo'; RLAIF_DIST_BACKEND overrides (e.g. 'mpi')."""
    import torch

    return os.environ.get("RLAIF_DIST_BACKEND") or ("nccl" if torch.cuda.is_available() else "gloo")


def init_distributed(backend: str | None = None, timeout_s: float = 1800.0) -> DistEnv:
    """Joins (or creates) the process group and returns this rank's DistEnv. Idempotent.

    Input: an optional backend (default: default_backend()) and the collective timeout. Without
    launcher variables it sets up a world of one on 127.0.0.1 and a free port. On CUDA it also
    selects ``cuda:LOCAL_RANK`` as the current device.
    """
    import deepspeed
    import torch
    import torch.distributed as tdist

    if "RANK" not in os.environ:
        os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1"})
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        os.environ.setdefault("MASTER_PORT", str(_free_port()))
    backend = backend or default_backend()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if backend == "gloo":
        # DeepSpeed's CPU backend compiles a shared-memory all-reduce kernel (~40 s, per fresh pod) that
        # only its tensor-parallel *inference* path uses; training's collectives go through gloo.
        # (importlib: the package attribute deepspeed.comm.torch is the torch module, not the submodule)
        module: Any = importlib.import_module("deepspeed.comm.torch")
        module.build_shm_op = lambda: None
    if not tdist.is_initialized():
        forget_deepspeed_groups()  # groups cached from an earlier, destroyed process group are stale
        deepspeed.init_distributed(dist_backend=backend, timeout=timedelta(seconds=timeout_s), verbose=False)
    elif _stale_deepspeed_world():
        # a group someone else created (vLLM's, in one process with its engine) after an earlier world
        # was destroyed: DeepSpeed would broadcast over the dead world's clone
        forget_deepspeed_groups()
    env = DistEnv(
        rank=tdist.get_rank(),
        world_size=tdist.get_world_size(),
        local_rank=local_rank,
        local_world_size=int(os.environ.get("LOCAL_WORLD_SIZE", "1")),
        backend=backend,
        device=device,
    )
    log.info("rank %d of %d (local %d), backend %s, device %s", env.rank, env.world_size, env.local_rank,
             backend, device)
    return env


def barrier() -> None:
    """Waits for every rank (a no-op without a process group)."""
    import torch.distributed as tdist

    if tdist.is_initialized():
        tdist.barrier()


def all_reduce_sum(values: list[float], env: DistEnv) -> list[float]:
    """Sums a short list of numbers over all ranks (float64, on the rank's device for NCCL)."""
    import torch
    import torch.distributed as tdist

    t = torch.tensor(values, dtype=torch.float64, device=env.device)
    if tdist.is_initialized() and env.world_size > 1:
        tdist.all_reduce(t, op=tdist.ReduceOp.SUM)
    return t.tolist()


def broadcast_object(obj: Any, env: DistEnv, src: int = 0) -> Any:
    """Rank ``src``'s object on every rank (pickled; keep it small)."""
    import torch.distributed as tdist

    if not tdist.is_initialized() or env.world_size == 1:
        return obj
    box = [obj]
    tdist.broadcast_object_list(box, src=src, device=env.device if env.backend == "nccl" else None)
    return box[0]


def forget_deepspeed_groups() -> None:
    """Drops DeepSpeed's cached process groups (its clone of WORLD, data-parallel group, ...).

    DeepSpeed caches them at module level and only forgets them when the world is destroyed through
    its own API; a group destroyed any other way (torch directly, or another library in the same
    process) leaves stale handles that fail the next engine's first broadcast.
    """
    groups = importlib.import_module("deepspeed.utils.groups")
    release = getattr(groups, "_release_process_group_references", None)
    if release is not None:
        release(None)


def _stale_deepspeed_world() -> bool:
    """Whether DeepSpeed's cached clone of the world group belongs to a destroyed process group."""
    import torch.distributed as tdist

    world = getattr(importlib.import_module("deepspeed.utils.groups"), "_WORLD_GROUP", None)
    if world is None:
        return False
    try:
        tdist.get_process_group_ranks(world)
    except (ValueError, RuntimeError, KeyError):  # "Group ... is not registered", or unknown to torch
        return True
    return False


def shutdown() -> None:
    """Leaves the process group (call once at the end of a run, on every rank)."""
    import torch.distributed as tdist

    if tdist.is_initialized():
        tdist.barrier()
        tdist.destroy_process_group()
    forget_deepspeed_groups()
