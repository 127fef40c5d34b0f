"""Bad input and failures: clear errors, the right exit codes, nothing lost; resume after a stop.

- an empty prompt set and an unreadable reward model: exit code 3 (a retry cannot fix them), one
  line naming the field, before any process group, model or output exists;
- a labeler endpoint that is down when the run starts: the real OpenAI-compatible client retries,
  then exit code 1 (the endpoint may come back: the Job retries);
- a labeler endpoint that goes down in the middle of a d-RLAIF run (the real vLLM server behind a
  proxy that starts answering 503 once step 2's checkpoint is complete): retries, then exit code 1
  with a message naming the kept checkpoint; rerun with the endpoint back, the run resumes from
  that checkpoint (PPO, both engines restored) and finishes.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from policy_helpers import launch_env, policy_config, run_cli, write_config

from rlaif_jobs.summaries import EXIT_CONFIG_ERROR

pytestmark = pytest.mark.slow


def cli(config: Path) -> int:
    from rlaif_jobs.policy.__main__ import cli as policy_cli

    return policy_cli(["--config", str(config)])


def test_empty_prompt_set_is_a_clear_error(tiny_sft_policy, tmp_path, capsys):
    empty = tmp_path / "prompts.jsonl"
    empty.write_text("")
    out = tmp_path / "run"
    cfg = policy_config(tiny_sft_policy, out, prompts=str(empty), rewardModelUri=str(tmp_path / "rm"))
    assert cli(write_config(tmp_path / "cfg.json", cfg)) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert f"dataset {empty}: it holds no records" in err and "Traceback" not in err
    assert not out.exists()


def test_blank_prompts_are_named(tiny_sft_policy, tmp_path, capsys):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"id": "a", "prompt": "Hi"}\n{"id": "b", "prompt": "  "}\n')
    cfg = policy_config(tiny_sft_policy, tmp_path / "run", prompts=str(prompts), rewardModelUri="x")
    assert cli(write_config(tmp_path / "cfg.json", cfg)) == EXIT_CONFIG_ERROR
    assert "1 record(s) have an empty prompt (first: id 'b')" in capsys.readouterr().err


def test_unreadable_reward_model_is_a_clear_error_and_keeps_earlier_outputs(tiny_sft_policy, tmp_path, capsys):
    rm = tmp_path / "rm"
    rm.mkdir()
    (rm / "config.json").write_text("{ this is not json")
    out = tmp_path / "run"
    (out / "checkpoints" / "step-00000003").mkdir(parents=True)  # an earlier attempt's checkpoint
    (out / "checkpoints" / "step-00000003" / "COMPLETE").write_text("{}")
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    cfg = policy_config(tiny_sft_policy, out, rewardModelUri=str(rm))
    assert cli(write_config(tmp_path / "cfg.json", cfg)) == EXIT_CONFIG_ERROR
    err = capsys.readouterr().err
    assert f"rewardModelUri: cannot load {str(rm)!r} as a reward model" in err and "Traceback" not in err
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # nothing written, nothing removed


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_labeler_endpoint_down_at_start_retries_then_fails_retryably(tiny_sft_policy, tmp_path, capsys):
    labeler = {"model": {"uri": "builtin://smollm2-135m-instruct"}, "engine": "openai",
               "endpoint": {"url": f"http://127.0.0.1:{_closed_port()}/v1", "maxRetries": 2, "timeoutSeconds": 5}}
    cfg = policy_config(tiny_sft_policy, tmp_path / "run", directReward={"labeler": labeler})
    assert cli(write_config(tmp_path / "cfg.json", cfg)) == 1
    err = capsys.readouterr().err
    assert "directReward.labeler: labeler endpoint http://127.0.0.1:" in err and "failed 3 times" in err


class OutageProxy:
    """Forwards HTTP to ``target`` (the real vLLM server) until ``down()`` says so; then answers 503."""

    def __init__(self, target: str, down: Callable[[], bool]):
        import httpx

        self.down = down
        self.refused = 0
        client = httpx.Client(timeout=120)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if proxy.down():
                    proxy.refused += 1
                    payload, status, ctype = b'{"error": "labeler outage"}', 503, "application/json"
                else:
                    headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                    r = client.request(self.command, target + self.path, content=body, headers=headers)
                    payload, status, ctype = r.content, r.status_code, r.headers.get("content-type", "")
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _relay

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_labeler_outage_mid_run_keeps_the_checkpoint_and_the_rerun_resumes(vllm_server, tiny_sft_policy, tmp_path):
    out = tmp_path / "run"
    state = {"outage": True}
    proxy = OutageProxy(vllm_server.url.removesuffix("/v1"),
                        lambda: state["outage"] and (out / "checkpoints/step-00000002/COMPLETE").exists())
    try:
        labeler = {"model": {"uri": "builtin://smollm2-135m-instruct"}, "engine": "openai",
                   "endpoint": {"url": proxy.url + "/v1", "servedModel": vllm_server.served_model,
                                "maxRetries": 2, "timeoutSeconds": 60, "maxConcurrency": 4}}
        cfg = policy_config(tiny_sft_policy, out, directReward={"labeler": labeler, "task": "helpful"},
                            rl={"algorithm": "ppo", "ppoEpochs": 2, "batchSize": 8, "microBatchSize": 4,
                                "maxSteps": 4, "checkpointEverySteps": 1, "keepCheckpoints": 2,
                                "deepspeed": {"zeroStage": 2}})
        config = write_config(tmp_path / "cfg.json", cfg)
        env = launch_env(RLAIF_LABELER_API_KEY=vllm_server.api_key)

        first = run_cli(config, tmp_path / "first.log", env=env)
        assert first.returncode == 1, first.stdout[-3000:]
        assert proxy.refused >= 3  # the request and its two retries
        assert "error: the d-RLAIF labeler failed" in first.stdout and "failed 3 times" in first.stdout
        assert "(at step 3; the last checkpoint (step-00000002) is kept; rerun to resume from it)" in first.stdout
        assert (out / "checkpoints/latest").read_text().strip() == "step-00000002"
        assert sorted(p.name for p in (out / "checkpoints").glob("step-*")) == ["step-00000001", "step-00000002"]
        assert not (out / "summary.json").exists() and not (out / "model").exists()
        lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in lines if "meanReward" in r] == [1, 2] and lines[-1]["event"] == "failed"

        state["outage"] = False  # the endpoint is back
        second = run_cli(config, tmp_path / "second.log", env=env)
        assert second.returncode == 0, second.stdout[-3000:]
        assert "resumed from" in second.stdout and "step-00000002" in second.stdout
        lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in lines if "meanReward" in r] == [1, 2, 3, 4]  # each step once
        assert {"step": 2, "event": "resumed", "checkpoint": "step-00000002"}.items() <= next(
            r for r in lines if r.get("event") == "resumed").items()
        m = json.loads((out / "summary.json").read_text())["metrics"]
        assert m["resumedFromStep"] == 2 and m["stepsThisRun"] == 2 and m["steps"] == 4
        assert all(-1.0 <= r["meanReward"] <= 1.0 for r in lines if "meanReward" in r)
        assert "clipFraction" in lines[-1] and "valueLoss" in lines[-1]  # PPO's own metrics
    finally:
        proxy.close()
