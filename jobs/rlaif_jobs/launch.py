"""``python -m rlaif_jobs.launch TORCHRUN-ARGS``: torchrun that keeps the workers' config-error exit code,
then the stage's follow-up step in a fresh process.

torchrun exits 1 whatever its workers exit with, so a worker's exit code 3 (``ConfigError``: do not
retry) would reach Kubernetes as 1, the Job's podFailurePolicy would never see it, and the Job would
burn its backoffLimit on a config that cannot work. This runs torchrun in-process (the same arguments
and behaviour) and, when workers failed, exits 3 if any local worker exited 3, else 1.

A stage with a follow-up (``FOLLOW_UP``: the policy stage's evaluation, whose judge must not share a
process with training) has it run after torchrun's workers exited, on node 0 only, with the same
script arguments: this process replaces itself with ``python -m FOLLOW-UP ARGS`` (exec: nothing of the
launcher stays in memory; the exit code is the follow-up's own, 0/1/3). When the follow-up says only it
is left (``rlaif_jobs.evaluation.handoff.awaiting``: training finished in an earlier run of this
config), torchrun is not run again: a rerun after a failed evaluation does not retrain.

Used by the trainers' pod command (``operator/rlaif_operator/builders/jobs.py``) and by ``rlaif run``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from rlaif_jobs.errors import EXIT_CONFIG_ERROR, EXIT_OK, EXIT_RETRYABLE

# stage module -> the module that finishes its work in a fresh process after training (same --config)
FOLLOW_UP = {"rlaif_jobs.policy": "rlaif_jobs.evaluation"}


def failure_exit_code(worker_codes: dict[int, int]) -> int:
    """The launcher's exit code from the failed local workers' exit codes (rank -> code)."""
    return EXIT_CONFIG_ERROR if EXIT_CONFIG_ERROR in worker_codes.values() else EXIT_RETRYABLE


def follow_up(args: Any) -> list[str] | None:
    """The follow-up command for torchrun's parsed ``args`` on this node, or None (no follow-up for
    the script, or not node 0)."""
    module = FOLLOW_UP.get(args.training_script) if args.module else None
    if module is None or int(args.node_rank) != 0:
        return None
    return [sys.executable, "-m", module, *args.training_script_args]


def only_follow_up_left(args: Any) -> bool:
    """Whether an earlier run finished training for this config and only the follow-up is left."""
    if not args.module or FOLLOW_UP.get(args.training_script) != "rlaif_jobs.evaluation":
        return False
    try:  # a config that does not load is the trainer's to report (exit 3, field by field)
        from rlaif_jobs.config.policy import PolicyConfig
        from rlaif_jobs.entry import load_config
        from rlaif_jobs.evaluation.handoff import awaiting

        script_args = list(args.training_script_args)
        config = load_config(script_args[script_args.index("--config") + 1], PolicyConfig)
        return awaiting(config)
    except Exception:  # noqa: BLE001 - when in doubt, train (it resumes from its checkpoints)
        return False


def main(argv: list[str] | None = None) -> int:
    """Runs torchrun with ``argv``, then the follow-up (module docstring); returns 0, 3 (a worker's config
    error) or 1 (any other failure), or does not return (exec of the follow-up)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(argv if argv is not None else sys.argv[1:])
    then = follow_up(args)
    if only_follow_up_left(args):  # checked on every node, so that none starts torchrun alone
        print(f"training finished in an earlier run of this config; only {FOLLOW_UP[args.training_script]}"
              " is left", flush=True)
    else:
        try:
            run(args)
        except ChildFailedError as err:
            codes = {rank: failure.exitcode for rank, failure in err.failures.items()}
            code = failure_exit_code(codes)
            shown = ", ".join(f"rank {rank}: {c}" for rank, c in sorted(codes.items()))
            what = "a config error (not retried)" if code == EXIT_CONFIG_ERROR else "a failure"
            print(f"error: workers failed ({shown}): {what}; the worker's own error is above", file=sys.stderr)
            return code
    if then is None:
        return EXIT_OK
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(then[0], then)  # never returns
    return EXIT_OK  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
