"""One error taxonomy for every workload: the exit code follows from the exception's class.

- ``ConfigError`` (exit 3): input the workload cannot run with (config, dataset, model, checkpoint of
  another world size). Retrying cannot fix it, so the Job's podFailurePolicy fails the Job at once and
  both the operator and the local runner report reason ``ConfigError``. The message names the field and the fix.
- ``RetryableError`` (exit 1): a failure a rerun may fix (an endpoint that stayed down); the message
  is printed without a traceback and the checkpoints written so far are kept.
- Anything else is a crash (exit 1 with its traceback): retried by the Job's backoffLimit.

Stage modules subclass these two classes; ``exit_code`` is the only place that maps a class to a code.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RETRYABLE = 1
EXIT_CONFIG_ERROR = 3  # a distinct exit code: the Job's podFailurePolicy fails fast on it


class ConfigError(ValueError):
    """Input the workload cannot run with; the message names the field and the fix (exit code 3)."""


class RetryableError(RuntimeError):
    """A failure that a rerun may fix; the message says what failed (exit code 1)."""


def exit_code(err: BaseException) -> int:
    """The process exit code for an exception that ended a workload."""
    return EXIT_CONFIG_ERROR if isinstance(err, ConfigError) else EXIT_RETRYABLE
