"""``python -m rlaif_jobs.launch TORCHRUN-ARGS``: torchrun that keeps the workers' config-error exit code.

torchrun exits 1 whatever its workers exit with, so a worker's exit code 3 (``ConfigError``: do not
retry) would reach Kubernetes as 1, the Job's podFailurePolicy would never see it, and the Job would
burn its backoffLimit on a config that cannot work. This runs torchrun in-process (the same arguments
and behaviour) and, when workers failed, exits 3 if any local worker exited 3, else 1.

Used by the trainers' pod command (``operator/rlaif_operator/builders/jobs.py``) and by ``rlaif run``.
"""

from __future__ import annotations

import sys

from rlaif_jobs.errors import EXIT_CONFIG_ERROR, EXIT_OK, EXIT_RETRYABLE


def failure_exit_code(worker_codes: dict[int, int]) -> int:
    """The launcher's exit code from the failed local workers' exit codes (rank -> code)."""
    return EXIT_CONFIG_ERROR if EXIT_CONFIG_ERROR in worker_codes.values() else EXIT_RETRYABLE


def main(argv: list[str] | None = None) -> int:
    """Runs torchrun with ``argv``; returns 0, 3 (a worker's config error) or 1 (any other failure)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    args = parse_args(argv if argv is not None else sys.argv[1:])
    try:
        run(args)
    except ChildFailedError as err:
        codes = {rank: failure.exitcode for rank, failure in err.failures.items()}
        code = failure_exit_code(codes)
        shown = ", ".join(f"rank {rank}: {c}" for rank, c in sorted(codes.items()))
        what = "a config error (not retried)" if code == EXIT_CONFIG_ERROR else "a failure"
        print(f"error: workers failed ({shown}): {what}; the worker's own error is above", file=sys.stderr)
        return code
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
