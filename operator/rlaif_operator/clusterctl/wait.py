"""``rlaif wait NAME --for Ready|Succeeded|Failed|Finished``: poll until the condition holds.

Exit codes: 0 the condition holds; 1 the resource ended otherwise (failed while waiting for Ready or
Succeeded, succeeded while waiting for Failed, deleted); 2 the timeout passed first. Only a status the
operator computed for the current spec counts (``status.observedGeneration`` >= ``metadata.generation``),
as kstatus does.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable
from typing import Any

from rlaif_operator.clusterctl.connect import Target
from rlaif_operator.clusterctl.render import ref
from rlaif_operator.clusterctl.resources import ClusterctlError, find, get
from rlaif_operator.kube import KubeError

CONDITIONS = ("Ready", "Succeeded", "Failed", "Finished")
POLL_SECONDS = 2.0
SUCCESS, ENDED_OTHERWISE, TIMED_OUT = 0, 1, 2
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds in a Go-style duration (``90s``, ``30m``, ``1h30m``, ``2d``) or a plain number of seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ClusterctlError(f"--timeout {text!r}: give a duration such as 90s, 30m, 1h30m or 2d")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _condition(status: dict[str, Any], ctype: str) -> str | None:
    for c in status.get("conditions") or []:
        if isinstance(c, dict) and c.get("type") == ctype:
            return c.get("status")
    return None


def current(obj: dict[str, Any]) -> bool:
    """Whether the status was computed for the spec as it is now."""
    status = obj.get("status") or {}
    if not status.get("phase"):
        return False
    observed, generation = status.get("observedGeneration"), (obj.get("metadata") or {}).get("generation")
    return observed is None or generation is None or observed >= generation


def verdict(obj: dict[str, Any], want: str) -> tuple[int | None, str]:
    """(exit code, or None to keep waiting; what to print) for ``obj`` waited on ``want``."""
    status = obj.get("status") or {}
    phase = status.get("phase")
    message = status.get("message") or ""
    said = f"{ref(obj)}: {phase or 'no status yet'}" + (f": {message}" if message else "")
    if not current(obj):
        return None, said
    failed = phase == "Failed" or _condition(status, "Stalled") == "True"
    succeeded = phase == "Succeeded"
    if want == "Ready":
        ready = _condition(status, "Ready")
        if ready == "True" or (ready is None and succeeded):
            return SUCCESS, f"{ref(obj)}: Ready ({phase})"
        return (ENDED_OTHERWISE, said) if failed else (None, said)
    if want == "Succeeded":
        return (SUCCESS, said) if succeeded else ((ENDED_OTHERWISE, said) if failed else (None, said))
    if want == "Failed":
        return (SUCCESS, said) if failed else ((ENDED_OTHERWISE, said) if succeeded else (None, said))
    if want == "Finished":
        return (SUCCESS, said) if succeeded or failed else (None, said)
    raise ClusterctlError(f"--for {want!r}: one of {', '.join(CONDITIONS)}")


def wait(target: Target, name: str, want: str = "Ready", timeout: float = 3600.0, interval: float = POLL_SECONDS,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> int:
    """Polls the resource every ``interval`` seconds; see the module docstring for the exit codes."""
    if want not in CONDITIONS:
        raise ClusterctlError(f"--for {want!r}: one of {', '.join(CONDITIONS)}")
    obj = find(target.kube, target.namespace, name)
    kind, obj_name = obj["kind"], obj["metadata"]["name"]
    deadline = clock() + timeout
    last = ""
    while True:
        code, last = verdict(obj, want)
        if code is not None:
            print(last, file=sys.stdout if code == SUCCESS else sys.stderr)
            return code
        left = deadline - clock()
        if left <= 0:
            print(f"timed out after {timeout:g}s waiting for {want}; {last}", file=sys.stderr)
            return TIMED_OUT
        sleep(min(interval, left))
        try:
            fresh = get(target.kube, target.namespace, kind, obj_name)
        except KubeError as err:
            if err.status in (401, 403):
                raise
            continue  # a transient failure (no answer, 5xx, 429): ask again at the next tick
        if fresh is None:
            print(f"{kind}/{obj_name} was deleted while waiting for {want}", file=sys.stderr)
            return ENDED_OTHERWISE
        obj = fresh
