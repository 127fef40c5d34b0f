"""An OpenAI-compatible completions endpoint as the labeler: a vLLM server, or a hosted model.

- Scoring uses the completions API with ``max_tokens=1`` and ``logprobs=K``: the top-K alternatives for
  the next token, as strings. A continuation is matched by text, token by token: a continuation that
  is several tokens ("10", or " 1" split as " " + "1") is followed with one more request per extra
  token, with the matched text appended to the prompt. Every tokenisation path found among the top-K
  is summed. A continuation not found among the top-K gives ``None`` (the engine cannot tell), never
  a made-up value.
- Requests run in a thread pool of ``maxConcurrency``; 429, 5xx, timeouts and dropped connections are
  retried ``maxRetries`` times with exponential backoff and jitter (``Retry-After`` honoured).
- The API key comes from the endpoint's own environment variable (``rlaif_jobs.apikeys``: the operator
  maps each Secret onto its variable); it is sent as a bearer token and never logged or put into an
  error message.
"""

from __future__ import annotations

import contextlib
import logging
import math
import random
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rlaif_jobs.apikeys import FALLBACK_ENV, read_api_key
from rlaif_jobs.config.label import LabelerSpec
from rlaif_jobs.feedback.engines.base import EndpointUnavailableError, EngineError, EngineLoadError
from rlaif_jobs.feedback.engines.loading import load_tokenizer, resolve_checked

log = logging.getLogger(__name__)
API_KEY_ENV = FALLBACK_ENV
MAX_CONTINUATION_TOKENS = 8  # deepest token path followed for one continuation string
RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class _Refused(EngineError):
    """The endpoint answered and refused the request (401/403, or a status no retry can change)."""


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


class OpenAIEngine:
    """A labeler behind an OpenAI-compatible ``/completions`` endpoint."""

    def __init__(self, spec: LabelerSpec) -> None:
        import httpx

        assert spec.endpoint is not None  # LabelerSpec's validator guarantees it for engine=openai
        ep = spec.endpoint
        self.endpoint = ep
        self.base_url = ep.url.rstrip("/")
        self.model_name = spec.model.uri
        self.served_model = ep.served_model or spec.model.uri
        self.top_logprobs = ep.top_logprobs
        self.tokenizer = self._tokenizer(spec)
        headers = {"Content-Type": "application/json"}
        key = read_api_key(ep.api_key_secret)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.Client(headers=headers, timeout=ep.timeout_seconds,
                                   limits=httpx.Limits(max_connections=ep.max_concurrency))
        self.pool = ThreadPoolExecutor(max_workers=ep.max_concurrency, thread_name_prefix="labeler-http")
        self.retries = 0  # how many requests were retried (reported by the job)
        self._check_endpoint()

    @staticmethod
    def _tokenizer(spec: LabelerSpec):
        """The tokenizer (chat template, token counts); optional when the prompt is sent as plain text."""
        try:
            return load_tokenizer(spec.model, resolve_checked(spec.model))
        except EngineLoadError as err:
            if spec.use_chat_template:
                raise EngineLoadError(f"{err}; the openai engine needs the tokenizer for the chat template:"
                                      " set labeler.model.tokenizer, or useChatTemplate: false") from None
            log.warning("no tokenizer for %s (%s): token counts will be missing", spec.model.uri, err)
            return None

    # -- HTTP ------------------------------------------------------------------------------------
    def _check_endpoint(self) -> None:
        """Fails fast, in one line, on an endpoint that is unreachable, rejects the key, or lacks the model."""
        try:
            response = self._request("GET", "/models", None)
        except _Refused as err:  # a wrong key or a bad request: retrying cannot fix it
            raise EngineLoadError(f"labeler endpoint {self.base_url}: {err}") from None
        except EngineError as err:  # unreachable or failing: it may come back
            raise EndpointUnavailableError(f"labeler endpoint {self.base_url}: {err}") from None
        if response is None:
            return  # the endpoint does not list models: nothing to check
        names = [m.get("id") for m in response.get("data", []) if isinstance(m, dict)]
        if names and self.served_model not in names:
            raise EngineLoadError(f"labeler endpoint {self.base_url} does not serve model {self.served_model!r};"
                                  f" it serves {names}: set labeler.endpoint.servedModel")

    def _request(self, method: str, path: str, body: dict | None) -> dict | None:
        """One request with retries; returns the JSON body (None for a 404 on GET), raises EngineError."""
        import httpx

        url = self.base_url + path
        attempts = self.endpoint.max_retries + 1
        for attempt in range(attempts):
            retry_after = None
            try:
                response = self.client.request(method, url, json=body)
            except (httpx.TimeoutException, httpx.TransportError) as err:
                problem = f"{type(err).__name__}"
            else:
                if response.status_code < 300:
                    return response.json()
                if method == "GET" and response.status_code == 404:
                    return None
                problem = f"HTTP {response.status_code}: {response.text[:300]}"
                if response.status_code in (401, 403):
                    raise _Refused(f"{url} refused the request ({problem}); check the API key (the"
                                      f" Secret in endpoint.apiKeySecret, or {API_KEY_ENV} outside a cluster)")
                if response.status_code not in RETRY_STATUS:
                    raise _Refused(f"{url} rejected the request ({problem})")
                retry_after = response.headers.get("retry-after")
            if attempt + 1 == attempts:
                raise EngineError(f"{url} failed {attempts} times; last: {problem}")
            delay = min(30.0, 0.5 * 2**attempt) * (0.5 + random.random())
            if retry_after:
                with contextlib.suppress(ValueError):
                    delay = max(delay, float(retry_after))
            self.retries += 1
            log.warning("labeler endpoint: %s; retry %d/%d in %.1fs", problem[:120], attempt + 1,
                        attempts - 1, delay)
            time.sleep(delay)
        raise AssertionError("unreachable")

    def _complete(self, body: dict) -> dict:
        payload = {"model": self.served_model, **body}
        result = self._request("POST", "/completions", payload)
        if not result or not result.get("choices"):
            raise EngineError(f"{self.base_url}/completions answered without choices")
        return result

    def _map(self, fn, items: list) -> list:
        return list(self.pool.map(fn, items))

    # -- scoring ---------------------------------------------------------------------------------
    def _top(self, prompt: str) -> dict[str, float]:
        result = self._complete({"prompt": prompt, "max_tokens": 1, "temperature": 0.0,
                                 "logprobs": self.top_logprobs})
        lp = result["choices"][0].get("logprobs") or {}
        tops = lp.get("top_logprobs") or []
        first: dict[str, float] = dict(tops[0]) if tops and tops[0] else {}
        # the sampled token is always reported, even if outside the top-K
        tokens, token_lps = lp.get("tokens") or [], lp.get("token_logprobs") or []
        if tokens and token_lps and token_lps[0] is not None:
            first.setdefault(tokens[0], token_lps[0])
        return {k: float(v) for k, v in first.items() if v is not None}

    def continuation_logprobs(self, prompts: list[str], continuations: list[str]) -> list[list[float | None]]:
        if any(not c for c in continuations):
            raise ValueError("a continuation must be a non-empty string")
        paths: dict[tuple[int, int], list[float]] = {}
        pending = [(p, c, "", 0.0) for p in range(len(prompts)) for c in range(len(continuations))]
        for _ in range(MAX_CONTINUATION_TOKENS):
            if not pending:
                break
            texts = sorted({prompts[p] + matched for p, _, matched, _ in pending})
            tops = dict(zip(texts, self._map(self._top, texts), strict=True))
            following = []
            for p, c, matched, lp in pending:
                rest = continuations[c][len(matched):]
                for token, token_lp in tops[prompts[p] + matched].items():
                    if not token:
                        continue
                    if token == rest:
                        paths.setdefault((p, c), []).append(lp + token_lp)
                    elif rest.startswith(token):
                        following.append((p, c, matched + token, lp + token_lp))
            pending = following
        return [[_logsumexp(paths[(p, c)]) if (p, c) in paths else None for c in range(len(continuations))]
                for p in range(len(prompts))]

    # -- generation ------------------------------------------------------------------------------
    def generate(self, prompts: list[str], max_tokens: int, temperature: float = 0.0, top_k: int = 0,
                 seed: int = 0) -> list[tuple[str, int]]:
        def one(prompt: str) -> tuple[str, int]:
            body: dict[str, Any] = {"prompt": prompt, "max_tokens": max_tokens, "temperature": temperature}
            if temperature:
                body["seed"] = seed
                if top_k:  # a vLLM server extension; sent only when asked for (hosted APIs may reject it)
                    body["top_k"] = top_k
            result = self._complete(body)
            text = result["choices"][0].get("text") or ""
            usage = result.get("usage") or {}
            count = usage.get("completion_tokens")
            if count is None:
                count = len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if self.tokenizer else 0
            return text, int(count)

        return self._map(one, prompts)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()
