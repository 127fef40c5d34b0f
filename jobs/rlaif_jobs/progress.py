"""Machine-readable progress events, for a runner to render (``rlaif run`` shows one live line per stage).

A workload calls ``report(phase, done, total, unit)`` as it advances; when the environment names a
progress file (``RLAIF_PROGRESS_FILE``, set by ``rlaif run``) each call appends one JSON line
``{"t": unix time, "phase": ..., "done": n, "total": N, "unit": ...}`` to it, otherwise it does nothing.
Phases nest by order of first appearance: an outer phase ("labeling", pairs) and an inner one reported
within a long engine call ("scoring", prompts). Writes are one short ``write`` on an append-mode file,
so concurrent writers (shards) do not interleave within a line.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

ENV = "RLAIF_PROGRESS_FILE"


def enabled() -> bool:
    return bool(os.environ.get(ENV))


def report(phase: str, done: int, total: int | None = None, unit: str = "", **extra: Any) -> None:
    """Appends one progress event if a progress file is configured; never raises (progress is optional)."""
    path = os.environ.get(ENV)
    if not path:
        return
    event = {"t": time.time(), "phase": phase, "done": done, "total": total, "unit": unit, **extra}
    try:
        with open(path, "a") as f:
            f.write(json.dumps(event) + "\n")
    except OSError:
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
