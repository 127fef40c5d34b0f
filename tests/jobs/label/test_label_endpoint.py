"""The OpenAI-compatible engine against a real vLLM server on loopback (same model as the vLLM engine)."""

from __future__ import annotations

import http.server
import logging
import threading

import httpx
import pytest
from label_helpers import config, pairs, read_jsonl, write_jsonl

from rlaif_jobs.errors import EXIT_RETRYABLE, exit_code
from rlaif_jobs.feedback import EndpointUnavailableError, EngineLoadError, open_engine
from rlaif_jobs.label import main

pytestmark = pytest.mark.slow


SERVED_NAME = "smollm2"  # as tests/jobs/conftest.py serves it
SERVER_API_KEY = "test-key-7f3a91"


def _endpoint(url: str, **extra) -> dict:
    return {"engine": "openai", "endpoint": {"url": url, "servedModel": SERVED_NAME, "maxConcurrency": 4,
                                             "timeoutSeconds": 60, **extra}}


def test_endpoint_labels_match_the_in_process_engine(vllm_server, smollm2_vllm_engine, tmp_path, monkeypatch,
                                                     caplog):
    assert (vllm_server.served_model, vllm_server.api_key) == (SERVED_NAME, SERVER_API_KEY)
    monkeypatch.setenv("RLAIF_LABELER_API_KEY", SERVER_API_KEY)
    caplog.set_level(logging.DEBUG)
    data = write_jsonl(tmp_path / "d.jsonl", pairs(6))
    ref = main(config(data, tmp_path / "vllm"), engine=smollm2_vllm_engine)
    got = main(config(data, tmp_path / "api", labeler=_endpoint(vllm_server.url)))
    a = read_jsonl(tmp_path / "vllm" / "labels.jsonl")
    b = read_jsonl(tmp_path / "api" / "labels.jsonl")
    assert [r["id"] for r in a] == [r["id"] for r in b]
    for x, y in zip(a, b, strict=True):
        # the endpoint reads the top-20 alternatives, the engine the exact tokens: same model, same labels
        assert y["pAOrderAB"] == pytest.approx(x["pAOrderAB"], abs=0.02)
        assert y["pAOrderBA"] == pytest.approx(x["pAOrderBA"], abs=0.02)
        assert y["promptHash"] == x["promptHash"]
    assert got["metrics"]["labeled"] == ref["metrics"]["labeled"] == 6
    assert SERVER_API_KEY not in caplog.text


def test_endpoint_cot_generates_through_the_server(vllm_server, tmp_path, monkeypatch):
    monkeypatch.setenv("RLAIF_LABELER_API_KEY", SERVER_API_KEY)
    cfg = config(write_jsonl(tmp_path / "d.jsonl", pairs(2)), tmp_path / "o", labeler=_endpoint(vllm_server.url),
                 prompt={"chainOfThought": {"enabled": True, "maxTokens": 16}, "bothOrders": False})
    summary = main(cfg)
    labels = read_jsonl(tmp_path / "o" / "labels.jsonl")
    assert all(r["rationale"] for r in labels) and 2 <= summary["metrics"]["outputTokens"] <= 32


def test_too_few_alternatives_abstain_instead_of_inventing_a_label(vllm_server, tmp_path, monkeypatch):
    """With only the top-1 token listed, one of "1"/"2" is unknown: the record abstains, with the reason."""
    monkeypatch.setenv("RLAIF_LABELER_API_KEY", SERVER_API_KEY)
    cfg = config(write_jsonl(tmp_path / "d.jsonl", pairs(3)), tmp_path / "o",
                 labeler=_endpoint(vllm_server.url, topLogprobs=1))
    summary = main(cfg)
    assert summary["metrics"]["abstained"] == 3 and summary["metrics"]["labeled"] == 0
    reasons = [r["reason"] for r in read_jsonl(tmp_path / "o" / "abstained.jsonl")]
    assert all("the labeler gave no probability for" in r for r in reasons)
    assert not (tmp_path / "o" / "labels.jsonl").read_text()


def test_missing_api_key_is_one_clear_error(vllm_server, monkeypatch):
    monkeypatch.delenv("RLAIF_LABELER_API_KEY", raising=False)
    with pytest.raises(EngineLoadError, match="RLAIF_LABELER_API_KEY"):
        open_engine(config("x.jsonl", "/tmp/unused", labeler=_endpoint(vllm_server.url)).labeler)


def test_unreachable_endpoint_and_unknown_model(vllm_server, monkeypatch):
    monkeypatch.setenv("RLAIF_LABELER_API_KEY", SERVER_API_KEY)
    with pytest.raises(EngineLoadError, match="does not serve model 'nope'.*smollm2"):
        open_engine(config("x.jsonl", "/tmp/u", labeler=_endpoint(vllm_server.url, servedModel="nope")).labeler)
    # a down endpoint may come back: retryable (exit code 1, the Job retries), for labeling as for the
    # d-RLAIF reward and the evaluation's judge
    with pytest.raises(EndpointUnavailableError, match=r"127.0.0.1:9/v1: .*failed 2 times") as down:
        open_engine(config("x.jsonl", "/tmp/u", labeler=_endpoint("http://127.0.0.1:9/v1", maxRetries=1)).labeler)
    assert exit_code(down.value) == EXIT_RETRYABLE


class _FlakyProxy(http.server.ThreadingHTTPServer):
    """Forwards to the real server, but answers the first requests with 429 and 503, like a busy API."""

    def __init__(self, upstream: str, failures: list[int]):
        self.upstream, self.failures, self.seen_auth = upstream, failures, []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    server: _FlakyProxy

    def log_message(self, *args):  # keep test output quiet
        pass

    def _forward(self, method: str):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) if method == "POST" else None
        self.server.seen_auth.append(self.headers.get("Authorization"))
        with self.server.lock:
            status = self.server.failures.pop(0) if (method == "POST" and self.server.failures) else None
        if status:
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "0")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        upstream = httpx.request(method, self.server.upstream + self.path.removeprefix("/v1"), content=body,
                                 headers={"Authorization": self.headers.get("Authorization", ""),
                                          "Content-Type": "application/json"}, timeout=60)
        self.send_response(upstream.status_code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(upstream.content)))
        self.end_headers()
        self.wfile.write(upstream.content)

    def do_GET(self):
        self._forward("GET")

    def do_POST(self):
        self._forward("POST")


def test_retries_429_and_5xx_with_backoff(vllm_server, monkeypatch, caplog):
    monkeypatch.setenv("RLAIF_LABELER_API_KEY", SERVER_API_KEY)
    proxy = _FlakyProxy(vllm_server.url, [429, 503, 502])
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{proxy.server_address[1]}/v1"
        engine = open_engine(config("x.jsonl", "/tmp/u", labeler=_endpoint(url, maxConcurrency=1)).labeler)
        direct = open_engine(config("x.jsonl", "/tmp/u", labeler=_endpoint(vllm_server.url)).labeler)
        try:
            got = engine.continuation_logprobs(["Preferred Summary="], ["1", "2"])
            want = direct.continuation_logprobs(["Preferred Summary="], ["1", "2"])
        finally:
            engine.close()
            direct.close()
    finally:
        proxy.shutdown()
    assert engine.retries == 3 and got[0] == pytest.approx(want[0], abs=1e-4)
    assert set(proxy.seen_auth) == {f"Bearer {SERVER_API_KEY}"}
    assert "HTTP 429" in caplog.text and SERVER_API_KEY not in caplog.text


def test_chat_api_reads_the_first_token_as_completions_on_the_templated_prompt(vllm_server, monkeypatch):
    """endpoint.api chat on a real vLLM server: the prompt as one user message, the server's chat template;
    the first answer token's top_logprobs equal /completions' on the same templated text."""
    monkeypatch.setenv("RLAIF_LABELER_API_KEY", SERVER_API_KEY)
    chat = open_engine(config("x.jsonl", "/tmp/u", labeler=_endpoint(vllm_server.url, api="chat")).labeler)
    completions = open_engine(config("x.jsonl", "/tmp/u", labeler=_endpoint(vllm_server.url)).labeler)
    text = "Which is larger, 1) seven or 2) three? Reply with the number only.\n\nAnswer:"
    templated = chat.tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                   add_generation_prompt=True)
    try:
        got = chat.continuation_logprobs([text], ["1", "2"])
        want = completions.continuation_logprobs([templated], ["1", "2"])
    finally:
        chat.close()
        completions.close()
    assert all(v is not None for v in got[0])
    for g, w in zip(got[0], want[0], strict=True):
        assert (g is None) == (w is None) and (g is None or g == pytest.approx(w, abs=1e-3))
