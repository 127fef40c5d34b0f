"""An OpenAI-compatible endpoint as the labeler: a vLLM server, or a hosted model.

Two APIs (``endpoint.api``):
- ``completions`` (``/v1/completions``): the rendered prompt (chat template applied here) is sent as
  text with ``max_tokens=1`` and ``logprobs=K``: the top-K alternatives for the next token, as strings.
  A continuation is matched by text, token by token: a continuation that is several tokens ("10", or
  " 1" split as " " + "1") is followed with one more request per extra token, with the matched text
  appended to the prompt. Every tokenisation path found among the top-K is summed.
- ``chat`` (``/v1/chat/completions``): the prompt text (the user's message, then the opening the
  assistant's answer is read after) is sent as ONE user message, and the server applies the model's
  chat template; ``max_tokens=1``, ``logprobs=true``, ``top_logprobs=K``. Only the first answer token
  can be read (a chat request cannot continue a partial answer), so a continuation is matched when a
  token of the first position's top-K is exactly that string; a continuation that is several tokens
  there (e.g. "10" where the tokenizer splits it) is unknown.
Either way a continuation not found among the top-K gives ``None`` (the engine cannot tell), never a
made-up value: a pair then abstains (counted in the labels' ``abstained``), a d-RLAIF score counts it
as probability 0 (scoring.py, direct.py). Tokens with the same text (two ids decoding alike) are summed.

Transport: the ``openai`` SDK. Requests run in a thread pool of ``maxConcurrency``; the SDK retries
408/409/429/5xx, timeouts and dropped connections ``maxRetries`` times with exponential backoff and
jitter, honouring ``Retry-After``. Errors: a 401/403 (the key) or 404 (the URL, the served model, or an
``api`` the server does not serve) is an ``EngineLoadError`` (a ConfigError, exit 3) naming the
endpoint field; an endpoint still failing after its retries is ``EndpointDownError`` (a RetryableError,
exit 1, and an EngineError to the callers that wrap those).

The API key comes from the endpoint's own environment variable (``rlaif_jobs.apikeys``: the operator
maps each Secret onto its variable); the SDK sends it as a bearer token; it is never logged or put
into an error message.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from rlaif_jobs.apikeys import FALLBACK_ENV, read_api_key
from rlaif_jobs.config.label import LabelerSpec
from rlaif_jobs.feedback.engines.base import EndpointUnavailableError, EngineError, EngineLoadError
from rlaif_jobs.feedback.engines.loading import load_tokenizer, resolve_checked

log = logging.getLogger(__name__)
API_KEY_ENV = FALLBACK_ENV
MAX_CONTINUATION_TOKENS = 8  # deepest token path followed for one continuation string (completions)
NO_KEY = "EMPTY"  # sent when no key is configured (the SDK needs one; vLLM's convention for "none")
T = TypeVar("T")


class EndpointDownError(EngineError, EndpointUnavailableError):
    """The endpoint kept failing (429, 5xx, timeouts, no connection) after its retries: a RetryableError
    (exit 1, the Job retries), and an EngineError for the callers that wrap engine failures."""


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def _retryable(status: int) -> bool:
    return status in (408, 409, 429) or status >= 500  # what the SDK retries


class OpenAIEngine:
    """A labeler behind an OpenAI-compatible ``/completions`` or ``/chat/completions`` endpoint.

    ``where`` is the config field of the labeler (``labeler``, ``directReward.labeler``,
    ``evaluation.judge``): error messages name ``<where>.endpoint.<field>``.
    """

    def __init__(self, spec: LabelerSpec, where: str = "labeler") -> None:
        import openai

        assert spec.endpoint is not None  # LabelerSpec's validator guarantees it for engine=openai
        ep = spec.endpoint
        self.endpoint = ep
        self.where = where
        self.api = ep.api
        # the server wraps the prompt in the chat template: callers send the plain prompt text
        self.sends_messages = ep.api == "chat"
        self.base_url = ep.url.rstrip("/")
        self.model_name = spec.model.uri
        self.served_model = ep.served_model or spec.model.uri
        self.top_logprobs = ep.top_logprobs
        self.tokenizer = self._tokenizer(spec)
        self.retries = 0  # how many requests were retried (reported by the job)
        self._lock = threading.Lock()
        http_client = openai.DefaultHttpxClient(event_hooks={"request": [self._on_request],
                                                             "response": [self._on_response]})
        self.client = openai.OpenAI(base_url=self.base_url, api_key=read_api_key(ep.api_key_secret) or NO_KEY,
                                    max_retries=ep.max_retries, timeout=ep.timeout_seconds, http_client=http_client)
        self.pool = ThreadPoolExecutor(max_workers=ep.max_concurrency, thread_name_prefix="labeler-http")
        self._check_endpoint()

    def _tokenizer(self, spec: LabelerSpec):
        """The tokenizer (chat template, token counts); optional when no chat template is applied here."""
        try:
            return load_tokenizer(spec.model, resolve_checked(spec.model))
        except EngineLoadError as err:
            if spec.use_chat_template and not self.sends_messages:
                raise EngineLoadError(f"{err}; the openai engine needs the tokenizer for the chat template:"
                                      " set labeler.model.tokenizer, useChatTemplate: false, or"
                                      " endpoint.api: chat (the server applies it)") from None
            log.warning("no tokenizer for %s (%s): token counts will be missing", spec.model.uri, err)
            return None

    # -- HTTP ------------------------------------------------------------------------------------
    def _on_request(self, request: Any) -> None:
        """The SDK numbers its attempts in x-stainless-retry-count: count and log the retries."""
        attempt = request.headers.get("x-stainless-retry-count")
        if attempt and attempt != "0":
            with self._lock:
                self.retries += 1
            log.warning("labeler endpoint: retry %s/%d of %s %s", attempt, self.endpoint.max_retries,
                        request.method, request.url.path)

    def _on_response(self, response: Any) -> None:
        if _retryable(response.status_code):
            after = response.headers.get("retry-after")
            log.warning("labeler endpoint: HTTP %d on %s %s%s", response.status_code, response.request.method,
                        response.request.url.path, f" (Retry-After: {after})" if after else "")

    def _field(self, name: str) -> str:
        return f"{self.where}.endpoint.{name}"

    def _call(self, path: str, fn: Callable[[], T], missing_ok: bool = False) -> T | None:
        """One SDK call (the SDK retries); maps its errors (see the module docstring).

        ``missing_ok``: a 404 returns None (an endpoint that does not list its models)."""
        import openai

        url = self.base_url + path
        attempts = self.endpoint.max_retries + 1
        try:
            return fn()
        except openai.APIStatusError as err:
            status = err.status_code
            problem = f"HTTP {status}: {str(err)[:300]}"
            if status == 404 and missing_ok:
                return None
            if status in (401, 403):
                raise EngineLoadError(self._prefixed(
                    f"{url} refused the request ({problem}); check the API key: the Secret in"
                    f" {self._field('apiKeySecret')} (or {API_KEY_ENV} outside a cluster)")) from None
            if status == 404:
                raise EngineLoadError(self._prefixed(
                    f"{url} was not found ({problem}); check {self._field('url')}, {self._field('servedModel')}"
                    f" ({self.served_model!r}) and {self._field('api')} ({self.api!r}: completions is"
                    " /v1/completions, chat is /v1/chat/completions)")) from None
            if _retryable(status):
                raise EndpointDownError(self._prefixed(f"{url} failed {attempts} times; last: {problem}")) from None
            raise EngineError(self._prefixed(f"{url} rejected the request ({problem})")) from None
        except openai.APIConnectionError as err:  # no connection, dropped, or timed out (after the retries)
            raise EndpointDownError(self._prefixed(f"{url} failed {attempts} times; last: {type(err).__name__}"
                                                   f" ({err})")) from None

    def _prefixed(self, text: str) -> str:
        text = f"labeler endpoint {self.base_url}: {text}"
        return text if text.startswith(self.where) else f"{self.where}: {text}"

    def _check_endpoint(self) -> None:
        """Fails fast, in one line, on an endpoint that is unreachable, rejects the key, or lacks the model."""
        try:
            page = self._call("/models", self.client.models.list, missing_ok=True)
        except EndpointDownError as err:  # unreachable or failing: it may come back
            raise EndpointUnavailableError(str(err)) from None
        except EngineError as err:  # a bad request: retrying cannot fix it
            raise EngineLoadError(str(err)) from None
        if page is None:
            return  # the endpoint does not list models: nothing to check
        names = [m.id for m in page.data]
        if names and self.served_model not in names:
            raise EngineLoadError(self._prefixed(f"it does not serve model {self.served_model!r}; it serves"
                                                 f" {names}: set {self._field('servedModel')}"))

    def _map(self, fn, items: list) -> list:
        return list(self.pool.map(fn, items))

    def _complete(self, **body: Any) -> Any:
        result = self._call("/completions", lambda: self.client.completions.create(model=self.served_model, **body))
        if result is None or not result.choices:
            raise EngineError(self._prefixed(f"{self.base_url}/completions answered without choices"))
        return result

    def _chat(self, text: str, **body: Any) -> Any:
        result = self._call("/chat/completions", lambda: self.client.chat.completions.create(
            model=self.served_model, messages=[{"role": "user", "content": text}], **body))
        if result is None or not result.choices:
            raise EngineError(self._prefixed(f"{self.base_url}/chat/completions answered without choices"))
        return result

    # -- scoring ---------------------------------------------------------------------------------
    def _top(self, prompt: str) -> dict[str, float]:
        """The first generated position's alternatives {token text: log-prob} (the sampled token too)."""
        if self.sends_messages:
            return self._top_chat(prompt)
        result = self._complete(prompt=prompt, max_tokens=1, temperature=0.0, logprobs=self.top_logprobs)
        lp = result.choices[0].logprobs
        tops = (lp.top_logprobs if lp else None) or []
        first: dict[str, float] = dict(tops[0]) if tops and tops[0] else {}
        # the sampled token is always reported, even if outside the top-K
        tokens, token_lps = (lp.tokens if lp else None) or [], (lp.token_logprobs if lp else None) or []
        if tokens and token_lps and token_lps[0] is not None:
            first.setdefault(tokens[0], token_lps[0])
        return {k: float(v) for k, v in first.items() if v is not None}

    def _top_chat(self, text: str) -> dict[str, float]:
        result = self._chat(text, max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=self.top_logprobs)
        content = result.choices[0].logprobs.content if result.choices[0].logprobs else None
        if not content:
            raise EngineLoadError(self._prefixed(
                f"{self.base_url}/chat/completions answered without logprobs: the server or model does not"
                f" return log-probabilities for chat; try {self._field('api')}: completions"))
        first = content[0]
        alternatives = [(t.token, t.logprob) for t in first.top_logprobs or []]
        if first.token not in {token for token, _ in alternatives}:
            alternatives.append((first.token, first.logprob))  # the sampled token, even outside the top-K
        paths: dict[str, list[float]] = {}
        for token, lp in alternatives:
            if lp is not None:
                paths.setdefault(token, []).append(float(lp))
        return {token: _logsumexp(lps) for token, lps in paths.items()}

    def continuation_logprobs(self, prompts: list[str], continuations: list[str]) -> list[list[float | None]]:
        if any(not c for c in continuations):
            raise ValueError("a continuation must be a non-empty string")
        paths: dict[tuple[int, int], list[float]] = {}
        pending = [(p, c, "", 0.0) for p in range(len(prompts)) for c in range(len(continuations))]
        # chat reads the first answer token only: a continuation longer than one token stays unknown
        for _ in range(1 if self.sends_messages else MAX_CONTINUATION_TOKENS):
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
            body: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
            if temperature:
                body["seed"] = seed
                if top_k:  # a vLLM server extension; sent only when asked for (hosted APIs may reject it)
                    body["extra_body"] = {"top_k": top_k}
            if self.sends_messages:
                result = self._chat(prompt, **body)
                text = result.choices[0].message.content or ""
            else:
                result = self._complete(prompt=prompt, **body)
                text = result.choices[0].text or ""
            count = result.usage.completion_tokens if result.usage is not None else None
            if count is None:
                count = len(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if self.tokenizer else 0
            return text, int(count)

        return self._map(one, prompts)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.client.close()
