"""A progress bar on rank 0 only (tqdm to stderr); other ranks get one that does nothing."""

from __future__ import annotations

import sys
from typing import Any


class _Silent:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def close(self) -> None:
        pass


def progress_bar(total: int, initial: int = 0, enabled: bool = True, desc: str = "train") -> Any:
    """A tqdm bar over ``total`` steps starting at ``initial`` (a resumed run), if ``enabled`` (rank 0).

    The returned object has update(n), set_postfix(**values) and close(), whether or not it shows.
    """
    if not enabled:
        return _Silent()
    from tqdm.auto import tqdm

    # mininterval keeps a pod's log readable: a bar line at most every few seconds when not a TTY.
    return tqdm(total=total, initial=initial, desc=desc, unit="step", dynamic_ncols=True, file=sys.stderr,
                mininterval=0.5 if sys.stderr.isatty() else 5.0)
