"""A small OpenAI-compatible server for the endpoint tests: real log-probabilities from a real tiny model.

``StandIn(model_uri, served_model, api_key)`` serves, on 127.0.0.1 and a free port, in a thread:
- ``GET /v1/models``: the one served model;
- ``POST /v1/completions``: ``prompt`` (a string), greedy ``max_tokens``; with ``logprobs: K`` each
  generated position lists its top-K alternatives as ``{token text: log-prob}`` (the legacy format);
- ``POST /v1/chat/completions``: ``messages`` rendered with the tokenizer's chat template (generation
  prompt added, encoded without special tokens, as vLLM does), greedy ``max_tokens``; with
  ``logprobs: true`` and ``top_logprobs: K``, ``choices[0].logprobs.content`` as OpenAI writes it.
The next-token distribution is a transformers forward pass (float32, CPU); token strings are the
decoded token texts (" 1", not "Ġ1"), as vLLM and OpenAI return them. A wrong bearer token is a 401;
``fail(status, retry_after=None)`` queues failures that the next POSTs get instead of an answer (a 429
with Retry-After, a 503, ...). ``requests`` records (method, path, x-stainless-retry-count) per request.
"""

from __future__ import annotations

import http.server
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch

from rlaif_jobs.models.resolve import resolve_model_uri


class StandIn(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model_uri: str, served_model: str, api_key: str | None = None):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model_uri(model_uri)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.served_model, self.api_key = served_model, api_key
        self.failures: list[tuple[int, str | None]] = []
        self.requests: list[tuple[str, str, str | None]] = []
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        # a small model on a shared CPU: one intra-op thread (more only contend, 20x slower); set in the
        # worker's own thread, so the test process keeps its setting
        self.worker = ThreadPoolExecutor(1, thread_name_prefix="standin-model",
                                         initializer=torch.set_num_threads, initargs=(1,))
        super().__init__(("127.0.0.1", 0), _Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self.worker.shutdown(wait=True)

    def fail(self, status: int, retry_after: str | None = None) -> None:
        """The next POST is answered with ``status`` (and a Retry-After header when given)."""
        with self.lock:
            self.failures.append((status, retry_after))

    # -- the model -------------------------------------------------------------------------------
    def chat_text(self, messages: list[dict]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def generate(self, ids: list[int], max_tokens: int, k: int) -> list[tuple[int, float, list[tuple[int, float]]]]:
        """Greedy: per generated position (token id, its log-prob, the top-k (id, log-prob))."""
        # one forward pass at a time, in the stand-in's own thread
        return self.worker.submit(self._greedy, ids, max_tokens, k).result()

    @torch.no_grad()
    def _greedy(self, ids: list[int], max_tokens: int, k: int) -> list[tuple[int, float, list[tuple[int, float]]]]:
        out = []
        for _ in range(max_tokens):
            lps = torch.log_softmax(self.model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)
            top = torch.topk(lps, max(k, 1))
            token = int(top.indices[0])
            out.append((token, float(lps[token]),
                        [(int(i), float(v)) for i, v in zip(top.indices, top.values, strict=True)][:k]))
            ids = [*ids, token]
            if token == self.tokenizer.eos_token_id:
                break
        return out

    def text(self, token: int) -> str:
        return self.tokenizer.decode([token])


class _Handler(http.server.BaseHTTPRequestHandler):
    server: StandIn
    protocol_version = "HTTP/1.1"  # keep-alive, like a real server (the SDK pools connections)

    def log_message(self, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: dict | None, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)

    def _authorized(self) -> bool:
        if self.server.api_key and self.headers.get("Authorization") != f"Bearer {self.server.api_key}":
            self._send(401, {"error": {"message": "invalid API key", "type": "invalid_request_error"}})
            return False
        return True

    def do_GET(self) -> None:
        self.server.requests.append(("GET", self.path, self.headers.get("x-stainless-retry-count")))
        if not self._authorized():
            return
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server.served_model, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.requests.append(("POST", self.path, self.headers.get("x-stainless-retry-count")))
        self.server.bodies.append(body)
        if not self._authorized():
            return
        with self.server.lock:
            failure = self.server.failures.pop(0) if self.server.failures else None
        if failure is not None:
            status, retry_after = failure
            self._send(status, {"error": {"message": f"injected {status}"}},
                       {"Retry-After": retry_after} if retry_after is not None else None)
            return
        if body.get("model") != self.server.served_model:
            self._send(404, {"error": {"message": f"model {body.get('model')!r} does not exist"}})
            return
        path = self.path.rstrip("/")
        if path == "/v1/completions":
            self._send(200, self._completions(body))
        elif path == "/v1/chat/completions":
            self._send(200, self._chat(body))
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def _completions(self, body: dict) -> dict:
        s = self.server
        ids = s.tokenizer(body["prompt"])["input_ids"]
        k = int(body.get("logprobs") or 0)
        steps = s.generate(ids, int(body.get("max_tokens") or 16), k)
        choice: dict[str, Any] = {"index": 0, "text": "".join(s.text(t) for t, _, _ in steps),
                                  "finish_reason": "length", "logprobs": None}
        if k:
            choice["logprobs"] = {"tokens": [s.text(t) for t, _, _ in steps],
                                  "token_logprobs": [lp for _, lp, _ in steps],
                                  "top_logprobs": [_top_dict(s, top) for _, _, top in steps]}
        return {"object": "text_completion", "model": s.served_model, "choices": [choice],
                "usage": {"prompt_tokens": len(ids), "completion_tokens": len(steps),
                          "total_tokens": len(ids) + len(steps)}}

    def _chat(self, body: dict) -> dict:
        s = self.server
        ids = s.tokenizer(s.chat_text(body["messages"]), add_special_tokens=False)["input_ids"]
        k = int(body.get("top_logprobs") or 0) if body.get("logprobs") else 0
        steps = s.generate(ids, int(body.get("max_tokens") or body.get("max_completion_tokens") or 16), k)
        content = [{"token": s.text(t), "logprob": lp, "bytes": list(s.text(t).encode()),
                    "top_logprobs": [{"token": s.text(i), "logprob": v, "bytes": list(s.text(i).encode())}
                                     for i, v in top]} for t, lp, top in steps]
        choice = {"index": 0, "finish_reason": "length",
                  "message": {"role": "assistant", "content": "".join(s.text(t) for t, _, _ in steps)},
                  "logprobs": {"content": content} if body.get("logprobs") else None}
        return {"object": "chat.completion", "model": s.served_model, "created": 0, "id": "chatcmpl-standin",
                "choices": [choice], "usage": {"prompt_tokens": len(ids), "completion_tokens": len(steps),
                                               "total_tokens": len(ids) + len(steps)}}


def _top_dict(s: StandIn, top: list[tuple[int, float]]) -> dict[str, float]:
    """The legacy completions format: {token text: log-prob}; two ids with one text keep the likelier."""
    out: dict[str, float] = {}
    for i, v in top:
        out.setdefault(s.text(i), v)
    return out
