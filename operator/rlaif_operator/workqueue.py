"""Worker threads that take the most urgent reconcile first.

A burst (a thousand Jobs finishing at once, an operator restart listing every object) queues far more
reconciles than there are threads. In arrival order, the reconcile that starts a waiting stage, which
is what a user waits for, would queue behind every other one; here it goes first:

- ``HANDOFF``: a stage reported its result, so the stages waiting on it start (ahead of the next
  finished Job: each hand-off completes before another begins, so the first ones are not held back by
  the whole burst);
- ``FINISHED``: a Job finished, so its stage reports;
- ``EVENT``: any other watch event;
- ``BACKGROUND``: what no one waits on: pipelines' summaries, timed re-checks, live progress, releasing
  finished Jobs.

Within a priority, first in, first out. ``submit`` returns a ``concurrent.futures.Future`` (for
``asyncio.wrap_future``).
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

HANDOFF, FINISHED, EVENT, BACKGROUND = 0, 1, 2, 3


class PriorityPool:
    """``workers`` daemon threads serving one priority queue."""

    def __init__(self, workers: int, name: str = "reconcile"):
        self._queue: list[tuple[int, int, Future[Any], Callable[..., Any], tuple[Any, ...]]] = []
        self._order = itertools.count()
        self._ready = threading.Condition()
        self._closed = False
        self._running = 0  # work taken by a thread and not finished
        self._threads = [threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
                         for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def submit(self, priority: int, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """Queues ``fn(*args)``; the lower ``priority``, the sooner it runs."""
        future: Future[Any] = Future()
        with self._ready:
            if self._closed:
                raise RuntimeError("the pool is shut down")
            heapq.heappush(self._queue, (priority, next(self._order), future, fn, args))
            self._ready.notify()
        return future

    def pending(self) -> int:
        """Work queued and not yet started."""
        return len(self._queue)

    def busy(self) -> bool:
        """Whether any work is queued or running."""
        return bool(self._queue) or self._running > 0

    def _work(self) -> None:
        while True:
            with self._ready:
                while not self._queue and not self._closed:
                    self._ready.wait()
                if self._closed:
                    return
                _, _, future, fn, args = heapq.heappop(self._queue)
                self._running += 1
            try:
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    result = fn(*args)
                except BaseException as err:  # noqa: BLE001 - handed to whoever awaits the future
                    future.set_exception(err)
                else:
                    future.set_result(result)
            finally:
                with self._ready:
                    self._running -= 1

    def shutdown(self) -> None:
        """Cancels what has not started; the threads end after their current work."""
        with self._ready:
            self._closed = True
            for _, _, future, _, _ in self._queue:
                future.cancel()
            self._queue.clear()
            self._ready.notify_all()
