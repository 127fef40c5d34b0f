"""What `rlaif run` shows while a stage runs: one live progress line, warnings in words, the log's tail on
failure. Engine and library output goes only to the stage's ``log.txt`` (``--verbose`` echoes it).

``watch(cmd, log_path, progress_path, verbose)`` runs one process with its stdout and stderr appended to
``log_path`` and ``RLAIF_PROGRESS_FILE=progress_path`` in its environment, and until it exits renders
the progress events the workload writes there (``rlaif_jobs.progress``): "labeling 16/48 pairs ·
scoring 40/96 prompts, 2.1 prompts/s, ETA 0:14". On a terminal the line is redrawn in place; otherwise
(a CI log, a test) a line is printed when the phase changes or, while it advances, every ``every`` s.
Known library notices that read like failures are translated once (WARNINGS). Returns the exit code.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

# (pattern in the log, what the user is told, once per stage). Only notices a user can act on or would
# otherwise misread; everything else stays in log.txt.
WARNINGS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"No available shared memory broadcast block found"),
     "vLLM's engine has been busy for over a minute without reporting back (it logs that processes"
     " may be hanging): on a loaded CPU this is a slow step, not a hang; it continues. If the progress"
     " line stops for many minutes, check the machine's load (uptime) and memory (free -g)."),
    (re.compile(r"(OutOfMemoryError|Cannot allocate memory|std::bad_alloc)"),
     "the stage ran out of memory: lower the batch sizes or the labeler's maxModelLen, or free memory"),
    (re.compile(r"Token indices sequence length is longer than the specified maximum"),
     "some inputs are longer than the model's context: they are truncated (see maxLength / maxModelLen)"),
]


def _clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


class _Phase:
    """The latest event of one phase, and where its rate is measured from."""

    def __init__(self, event: dict) -> None:
        self.t0, self.done0 = event["t"], event.get("done", 0)
        self.event = event

    def update(self, event: dict) -> None:
        if event.get("done", 0) < self.event.get("done", 0):  # a new engine call: counting restarts
            self.t0, self.done0 = event["t"], event.get("done", 0)
        self.event = event

    def text(self, with_rate: bool) -> str:
        e = self.event
        done, total, unit = e.get("done", 0), e.get("total"), e.get("unit", "")
        if total:
            out = f"{e['phase']} {done}/{total} {unit}".rstrip()
        else:  # a phase without a count ("loading the labeler")
            out = f"{e['phase']} {done} {unit}".rstrip() if done else e["phase"]
        if e.get("doing"):
            out += f" ({e['doing']})"
        # an engine call finishes most prompts together near its end: a rate from the first few would
        # promise hours, so there rate and ETA show once a tenth (at least two) are done; steps are even
        need = 1 if unit == "steps" else max(2, (total or 0) / 10)
        if with_rate and e["t"] > self.t0 and done - self.done0 >= need:
            rate = (done - self.done0) / (e["t"] - self.t0)
            one = (unit or "items").removesuffix("s")
            out += f", {rate:.3g} {unit or 'items'}/s" if rate >= 1 else f", {1 / rate:.3g} s/{one}"
            if total and total > done:
                out += f", ETA {_clock((total - done) / rate)}"
        return out


class StageConsole:
    """Renders one stage's progress events and the warnings found in its log."""

    def __init__(self, out: TextIO, every: float = 10.0) -> None:
        self.out = out
        self.tty = out.isatty()
        self.every = every
        self.phases: dict[str, _Phase] = {}
        self.started = time.monotonic()
        self.shown = ""  # the line drawn last (terminal)
        self.printed = ""  # the line printed last, without its clock (not a terminal)
        self.shown_key: tuple = ()
        self.shown_at = 0.0
        self.warned: set[int] = set()

    def events(self, events: list[dict]) -> None:
        for event in events:
            if not isinstance(event, dict) or "phase" not in event or "t" not in event:
                continue
            phase = self.phases.get(event["phase"])
            if phase is None:
                if self.phases and not self.tty:
                    # the last state of what came before prints before a new phase takes the line: a
                    # fast step's "policy 2/2 steps" and the evaluator's first event can arrive in one poll
                    self.render(final=True)
                self.phases[event["phase"]] = _Phase(event)
            else:
                phase.update(event)

    def log_text(self, text: str) -> None:
        for i, (pattern, message) in enumerate(WARNINGS):
            if i not in self.warned and pattern.search(text):
                self.warned.add(i)
                self._print(f"    note: {message}")

    def line(self) -> str:
        if not self.phases:
            return ""
        phases = list(self.phases.values())
        latest = max(phases, key=lambda p: p.event["t"])
        # the latest phase, and the counted phases still under way (the outer "labeling" while an engine
        # call reports its own); finished or uncounted phases ("loading the labeler") drop out
        shown = [p for p in phases if p is latest
                 or (p.event.get("total") and p.event.get("done", 0) < p.event["total"])]
        return "    " + " · ".join(p.text(p is latest) for p in shown) + \
            f"  [{_clock(time.monotonic() - self.started)}]"

    def render(self, final: bool = False) -> None:
        line = self.line()
        if not line:
            return
        key = tuple(self.phases)  # a new phase prints at once; progress within one, every `every` s
        now = time.monotonic()
        if self.tty:
            if line != self.shown or final:
                width = shutil.get_terminal_size((100, 20)).columns
                self.out.write("\r" + line[:width - 1] + "\x1b[K" + ("\n" if final else ""))
                self.out.flush()
        else:
            core = line.split("  [")[0]  # without the clock
            if core != self.printed and (key != self.shown_key or now - self.shown_at >= self.every or final):
                self.out.write(line + "\n")
                self.out.flush()
                self.printed, self.shown_key, self.shown_at = core, key, now
        self.shown = line

    def _print(self, text: str) -> None:
        if self.tty and self.shown:
            self.out.write("\r\x1b[K")
        self.out.write(text + "\n")
        self.out.flush()
        if self.tty and self.shown:
            self.out.write(self.shown)
            self.out.flush()


class _Tail:
    """Reads what was appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path, self.pos, self.partial = path, path.stat().st_size if path.exists() else 0, ""

    def read(self) -> str:
        if not self.path.exists():
            return ""
        with self.path.open("r", errors="replace") as f:
            f.seek(self.pos)
            text = f.read()
            self.pos = f.tell()
        return text

    def lines(self) -> list[str]:
        text = self.partial + self.read()
        *whole, self.partial = text.split("\n")
        return whole


def watch(cmd: list[str], log_path: Path, progress_path: Path, verbose: bool = False,
          out: TextIO | None = None, interval: float = 0.5) -> int:
    """Runs ``cmd`` (output to ``log_path``), rendering its progress; returns its exit code."""
    out = out or sys.stdout
    console = StageConsole(out)
    env = dict(os.environ, RLAIF_PROGRESS_FILE=str(progress_path), PYTHONUNBUFFERED="1")
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(cmd)}\n")
        log.flush()
        log_tail, progress_tail = _Tail(log_path), _Tail(progress_path)
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        with _stops_with_us(proc):
            return _follow(proc, console, log_tail, progress_tail, verbose, out, interval)


STOP_GRACE_SECONDS = 20.0  # a stage stopped with us saves what it can (stages checkpoint) before it is killed


@contextlib.contextmanager
def _stops_with_us(proc: subprocess.Popen[bytes]) -> Iterator[None]:
    """Stops the stage if `rlaif run` stops first (Ctrl-C, a SIGTERM from ``timeout`` or a CI runner): left
    running, an orphaned stage held its model's memory and the CPU that the next run needed. A SIGTERM
    becomes a KeyboardInterrupt here, so that the stage is stopped on the way out as for Ctrl-C."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, interrupt) if main else None
    try:
        yield
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _follow(proc: subprocess.Popen[bytes], console: StageConsole, log_tail: _Tail, progress_tail: _Tail,
            verbose: bool, out: TextIO, interval: float) -> int:
    """Renders the stage's log and progress until it exits; returns its exit code."""
    while True:
        code = proc.poll()
        text = log_tail.read()
        if text:
            if verbose:
                if console.tty and console.shown:
                    out.write("\r\x1b[K")
                out.write(text)
                out.flush()
            console.log_text(text)
        events = []
        for raw in progress_tail.lines():
            try:
                events.append(json.loads(raw))
            except ValueError:
                continue
        console.events(events)
        console.render(final=code is not None)
        if code is not None:
            return code
        time.sleep(interval)


def log_tail(log_path: Path, lines: int = 25) -> str:
    """The last ``lines`` lines of a log, for the console when a stage fails."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
