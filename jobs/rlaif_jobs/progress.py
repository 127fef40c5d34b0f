"""Machine-readable progress events, for a runner to render (``rlaif run`` shows one live line per stage).

A workload calls ``report(phase, done, total, unit)`` as it advances; when the environment names a
progress file (``RLAIF_PROGRESS_FILE``, set by ``rlaif run``) each call appends one JSON line
``{"t": unix time, "phase": ..., "done": n, "total": N, "unit": ...}`` to it. On a cluster
(``RLAIF_PROGRESS_LOG=1``, set by the operator on every workload container) the same event goes to stderr
as one line ``RLAIF_PROGRESS {json}`` with the phase's ``rate`` (units per second since the phase began),
at most every ``LOG_EVERY`` seconds per phase plus its first and last event: the operator reads the pod's
log tail for the latest one (pods get no API credentials). Without either, it does nothing.
Phases nest by order of first appearance: an outer phase ("labeling", pairs) and an inner one reported
within a long engine call ("scoring", prompts). Writes are one short ``write`` on an append-mode file,
so concurrent writers (shards) do not interleave within a line.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

ENV = "RLAIF_PROGRESS_FILE"
LOG_ENV = "RLAIF_PROGRESS_LOG"
LOG_PREFIX = "RLAIF_PROGRESS "  # the operator's parser (rlaif_operator.status.progress) looks for it
LOG_EVERY = 5.0  # seconds between logged events of one phase (a pod's log stays readable)

# Per phase: (time and count when it began, when it was last logged) for the rate and the log throttle.
_phases: dict[str, tuple[float, int, float]] = {}


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def report(phase: str, done: int, total: int | None = None, unit: str = "", **extra: Any) -> None:
    """Appends one progress event to the progress file and/or the log, as the environment asks; never
    raises (progress is optional). ``extra`` may carry ``doing`` (a step's sub-phase) and ``metrics``
    (the latest step's numbers)."""
    path, to_log = os.environ.get(ENV), os.environ.get(LOG_ENV) == "1"
    if not path and not to_log:
        return
    now = time.time()
    event = {"t": now, "phase": phase, "done": done, "total": total, "unit": unit, **extra}
    if path:
        try:
            with open(path, "a") as f:
                f.write(json.dumps(event) + "\n")
        except OSError:
            pass
    if to_log:
        _log_event(event, now)


def _log_event(event: dict[str, Any], now: float) -> None:
    """One ``RLAIF_PROGRESS`` line on stderr, throttled per phase; the first and the last (done == total)
    event of a phase always go out."""
    phase, done, total = event["phase"], event["done"], event["total"]
    began_at, began_done, logged_at = _phases.setdefault(phase, (now, done, 0.0))
    if done < began_done:  # the phase began again (a new epoch, a resumed loop)
        began_at, began_done, logged_at = now, done, 0.0
    last = total is not None and done >= total
    if logged_at and now - logged_at < LOG_EVERY and not last:
        return
    _phases[phase] = (began_at, began_done, now)
    elapsed = now - began_at
    if elapsed > 0 and done > began_done:
        event = {**event, "rate": (done - began_done) / elapsed}
    try:
        sys.stderr.write(LOG_PREFIX + json.dumps(event, default=str) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def tqdm_class(phase: str, unit: str) -> Any:
    """A tqdm subclass that reports its counts as ``phase`` events and draws nothing (for an engine's
    ``use_tqdm=`` argument: progress within one long call), or False without a progress file."""
    if not enabled():
        return False
    from tqdm.auto import tqdm

    class _Reporting(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = False
            kwargs["file"] = open(os.devnull, "w")  # noqa: SIM115 - closed with the bar
            # an engine's quick preparatory bars ("Rendering prompts", "Adding requests") stay silent
            self._quiet = str(kwargs.get("desc", "")).startswith(("Rendering", "Adding"))
            super().__init__(*args, **kwargs)
            self._last = 0.0
            if not self._quiet:
                report(phase, 0, self.total, unit)

        def update(self, n: float | None = 1) -> bool | None:
            out = super().update(n)
            now = time.monotonic()
            if self._quiet:
                return out
            if now - self._last >= 1.0 or (self.total is not None and self.n >= self.total):
                self._last = now
                report(phase, int(self.n), self.total, unit)
            return out

        def close(self) -> None:
            fp = self.fp
            super().close()
            fp.close()

    return _Reporting
