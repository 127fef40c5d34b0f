"""A progress bar on rank 0 only (tqdm to stderr, and progress events for ``rlaif run``); other ranks get
one that does nothing."""

from __future__ import annotations

import contextlib
import sys
from typing import Any

from rlaif_jobs import progress


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def phase(self, name: str) -> None:
        pass

    def close(self) -> None:
        pass


class _Bar:
    """tqdm plus a progress event per step (and per named phase within a step)."""

    def __init__(self, bar: Any, desc: str) -> None:
        self._bar, self._desc = bar, desc
        self._metrics: dict[str, float] = {}
        progress.report(desc, int(bar.n), bar.total, "steps")

    def update(self, n: int = 1) -> None:
        self._bar.update(n)
        progress.report(self._desc, int(self._bar.n), self._bar.total, "steps", **self._extra())

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        """The bar's postfix; its numeric values also become the progress events' step metrics."""
        self._bar.set_postfix(*args, **kwargs)
        for key, value in kwargs.items():
            with contextlib.suppress(TypeError, ValueError):
                self._metrics[key] = float(value)

    def phase(self, name: str) -> None:
        """Names what the current step is doing (rollout, update, ...): shown beside the step count."""
        progress.report(self._desc, int(self._bar.n), self._bar.total, "steps", doing=name, **self._extra())

    def _extra(self) -> dict[str, Any]:
        return {"metrics": dict(self._metrics)} if self._metrics else {}

    def close(self) -> None:
        self._bar.close()


def progress_bar(total: int, initial: int = 0, enabled: bool = True, desc: str = "train") -> Any:
    """A tqdm bar over ``total`` steps starting at ``initial`` (a resumed run), if ``enabled`` (rank 0).

    The returned object has update(n), set_postfix(**values), phase(name) and close(), whether or not it
    shows.
    """
    if not enabled:
        return _Silent()
    from tqdm.auto import tqdm

    # mininterval keeps a pod's log readable: a bar line at most every few seconds when not a TTY.
    return _Bar(tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True, file=sys.stderr,
                     mininterval=0.5 if sys.stderr.isatty() else 5.0), desc)
