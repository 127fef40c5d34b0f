"""`rlaif run`'s console: progress events rendered as one line per stage, logs kept in log.txt, notices
translated once. A real child process writes the events and the log lines (no model)."""

from __future__ import annotations

import sys
import textwrap
from io import StringIO
from pathlib import Path

from rlaif_operator.local.console import StageConsole, watch

CHILD = textwrap.dedent("""
    import logging, sys
    from rlaif_jobs import progress
    logging.basicConfig(level="INFO", format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("vllm").info("engine started")
    progress.report("loading the labeler", 0)
    for done in range(0, 9, 4):
        progress.report("labeling", done, 8, "pairs")
    for _ in range(2):
        logging.getLogger("vllm").warning("No available shared memory broadcast block found in 60 seconds")
    print("error: something the user must see", file=sys.stderr)
    sys.exit(2)
""")


def test_watch_renders_progress_keeps_logs_out_and_translates_a_notice_once(tmp_path: Path) -> None:
    out = StringIO()
    log = tmp_path / "log.txt"
    code = watch([sys.executable, "-c", CHILD], log, tmp_path / "progress.jsonl", out=out, interval=0.05)
    shown = out.getvalue()
    assert code == 2
    assert "labeling 8/8 pairs" in shown
    assert "engine started" not in shown and "INFO" not in shown
    assert shown.count("not a hang") == 1
    text = log.read_text()
    assert "INFO vllm: engine started" in text and "error: something the user must see" in text


def test_verbose_echoes_the_log(tmp_path: Path) -> None:
    out = StringIO()
    watch([sys.executable, "-c", CHILD], tmp_path / "log.txt", tmp_path / "p.jsonl", verbose=True, out=out,
          interval=0.05)
    assert "INFO vllm: engine started" in out.getvalue()


def test_rate_and_eta_of_the_latest_phase_and_the_outer_phase_beside_it() -> None:
    console = StageConsole(StringIO())
    console.events([{"t": 0.0, "phase": "labeling", "done": 0, "total": 48, "unit": "pairs"},
                    {"t": 1.0, "phase": "scoring", "done": 0, "total": 96, "unit": "prompts"},
                    {"t": 11.0, "phase": "scoring", "done": 40, "total": 96, "unit": "prompts"}])
    line = console.line()
    assert "labeling 0/48 pairs · scoring 40/96 prompts, 4 prompts/s, ETA 0:14" in line
    console.events([{"t": 30.0, "phase": "scoring", "done": 96, "total": 96, "unit": "prompts"},
                    {"t": 31.0, "phase": "labeling", "done": 48, "total": 48, "unit": "pairs"}])
    assert "scoring" not in console.line() and "labeling 48/48 pairs" in console.line()


def test_slow_steps_show_seconds_per_step() -> None:
    console = StageConsole(StringIO())
    console.events([{"t": 0.0, "phase": "policy", "done": 0, "total": 4, "unit": "steps"},
                    {"t": 28.0, "phase": "policy", "done": 1, "total": 4, "unit": "steps", "doing": "update"}])
    assert "policy 1/4 steps (update), 28 s/step, ETA 1:24" in console.line()


def test_a_phase_that_ends_in_the_same_poll_as_the_next_begins_still_shows_its_last_count() -> None:
    out = StringIO()
    console = StageConsole(out)
    console.events([{"phase": "policy", "done": 1, "total": 2, "unit": "steps", "t": 1.0}])
    console.render()
    # the trainer's last step and the evaluator's first event, read together
    console.events([{"phase": "policy", "done": 2, "total": 2, "unit": "steps", "t": 2.0},
                    {"phase": "loading the judge", "t": 2.1}])
    console.render(final=True)
    shown = out.getvalue()
    assert "policy 2/2 steps" in shown and shown.index("policy 2/2 steps") < shown.index("loading the judge")


def test_a_stage_stops_when_rlaif_run_is_terminated(tmp_path: Path) -> None:
    """SIGTERM to the process running ``watch`` (``timeout``, a CI runner) stops the stage too, instead of
    leaving it running with its model's memory."""
    import os
    import signal
    import subprocess
    import time

    pid_file = tmp_path / "stage.pid"
    stage = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    runner = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from rlaif_operator.local.console import watch
        tmp = Path({str(tmp_path)!r})
        watch([sys.executable, "-c", {stage!r}], tmp / "log.txt", tmp / "p.jsonl", interval=0.05)
    """)
    proc = subprocess.Popen([sys.executable, "-c", runner], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and proc.poll() is None, "the stage did not start"
        time.sleep(0.05)
    stage_pid = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    proc.wait(30)
    assert proc.returncode != 0  # stopped, not finished
    while time.monotonic() < deadline:
        try:
            os.kill(stage_pid, 0)
        except ProcessLookupError:
            return  # gone
        time.sleep(0.05)
    os.kill(stage_pid, signal.SIGKILL)
    raise AssertionError("the stage outlived rlaif run")
