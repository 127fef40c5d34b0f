"""Session fixtures for the jobs tier: real engines on real small models, on CPU.

- ``smollm2_vllm_engine``: ONE in-process vLLM engine on builtin://smollm2-135m-instruct (float32) for
  the whole session; labeling and d-RLAIF tests share it (it takes ~20 s and ~2.5 GB to start).
- ``vllm_server``: a real vLLM OpenAI-compatible server on 127.0.0.1 serving the same model, started
  at most once per session (as early as collection shows a test needs it, so it boots while other
  tests run) and torn down at the end. It requires the API key ``SERVER_API_KEY``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SMOLLM2 = "builtin://smollm2-135m-instruct"
SERVED_NAME = "smollm2"
SERVER_API_KEY = "test-key-7f3a91"  # a throwaway key for the loopback server; tests check it is never logged

# vLLM on a small shared CPU machine: a 2 GiB KV cache per engine (vLLM-CPU's default is 2-4 GiB).
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")


def smollm2_spec(engine: str = "vllm", **extra):
    """LabelerSpec for SmolLM2 in float32 (labels are precision-sensitive), short context."""
    from rlaif_jobs.config.label import LabelerSpec

    return LabelerSpec.model_validate({"model": {"uri": SMOLLM2, "dtype": "float32"}, "engine": engine,
                                       "maxModelLen": 2048, **extra})


@pytest.fixture(scope="session")
def smollm2_vllm_engine():
    """The session's shared in-process vLLM engine (SmolLM2-135M-Instruct, float32)."""
    from rlaif_jobs.feedback import open_engine

    engine = open_engine(smollm2_spec())
    yield engine
    engine.close()


# ---------------------------------------------------------------- the OpenAI-compatible server
@dataclass
class Server:
    url: str  # base URL ending in /v1
    process: subprocess.Popen
    log: Path
    served_model: str = SERVED_NAME
    api_key: str = SERVER_API_KEY


_server: Server | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(log_dir: Path) -> Server:
    from rlaif_jobs.models.resolve import resolve_model_uri

    port = _free_port()
    log = log_dir / "vllm-server.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", resolve_model_uri(SMOLLM2),
           "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
           "--dtype", "float32", "--max-model-len", "2048", "--enforce-eager", "--block-size", "32",
           "--api-key", SERVER_API_KEY, "--disable-log-stats"]
    process = subprocess.Popen(cmd, stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                               start_new_session=True)  # its own process group: teardown kills all of it
    return Server(f"http://127.0.0.1:{port}/v1", process, log)


def _stop_server(server: Server) -> None:
    if server.process.poll() is None:
        try:
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=10)


def pytest_collection_modifyitems(session, config, items):
    """Boots the server during collection when a selected test needs it, so startup overlaps other tests."""
    global _server
    if _server is None and any("vllm_server" in getattr(item, "fixturenames", ()) for item in items):
        _server = _start_server(Path(tempfile.mkdtemp(prefix="rlaif-vllm-server-")))


def pytest_unconfigure(config):
    if _server is not None:
        _stop_server(_server)


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory) -> Iterator[Server]:
    """A running vLLM OpenAI-compatible server on loopback (SmolLM2, float32, API key required)."""
    import httpx

    global _server
    if _server is None:
        _server = _start_server(tmp_path_factory.mktemp("vllm-server"))
    deadline = time.monotonic() + 300
    while True:
        if _server.process.poll() is not None:
            pytest.fail(f"vLLM server exited ({_server.process.returncode}):\n{_server.log.read_text()[-3000:]}")
        try:
            if httpx.get(_server.url.removesuffix("/v1") + "/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"vLLM server did not become healthy:\n{_server.log.read_text()[-3000:]}")
        time.sleep(1)
    yield _server
