"""The openai engine on /v1/chat/completions and /v1/completions, against a stand-in server that serves
REAL log-probabilities of SmolLM2 (openai_standin.py): chat scoring, the SDK's retries, error mapping."""

from __future__ import annotations

import logging
import math
import time

import pytest
from label_helpers import SMOLLM2, config, read_jsonl, write_jsonl
from openai_standin import StandIn

from rlaif_jobs.config.label import LabelerSpec, PromptSpec
from rlaif_jobs.errors import EXIT_CONFIG_ERROR, EXIT_RETRYABLE, RetryableError, exit_code
from rlaif_jobs.feedback import EngineLoadError, open_engine
from rlaif_jobs.feedback import prompts as P
from rlaif_jobs.feedback import scoring as S
from rlaif_jobs.feedback.direct import DirectScorer, expected_score
from rlaif_jobs.feedback.engines.openai_engine import EndpointDownError
from rlaif_jobs.label import main
from rlaif_jobs.policy.rewards import DirectLabelerReward

pytestmark = pytest.mark.slow

SERVED, KEY = "smollm2", "standin-key-51c0"
# a short prompt whose first answer token has both "1" and "2" among SmolLM2's top 20, without an
# assistant prefix (chat cannot continue one)
CUSTOM = {"task": "custom", "bothOrders": True, "template": {
    "preamble": "Which response answers the question better: 1 or 2? Reply with the number only.",
    "sample": "Question: {context}\nResponse 1: {response1}\nResponse 2: {response2}",
    "ending": "Better response:"}}
RECORD = {"id": "r0", "context": "What is the capital of France?", "responseA": "Paris.",
          "responseB": "I like turtles."}


@pytest.fixture(scope="module")
def server():
    with StandIn(SMOLLM2, SERVED, KEY) as s:
        yield s


@pytest.fixture(autouse=True)
def _key(monkeypatch, server):
    monkeypatch.setenv("RLAIF_LABELER_API_KEY", KEY)
    server.api_key = KEY
    server.served_model = SERVED
    server.failures.clear()
    server.bodies.clear()


def _labeler(url: str, api: str = "chat", **endpoint) -> dict:
    return {"engine": "openai", "useChatTemplate": api == "completions",
            "endpoint": {"url": url, "servedModel": SERVED, "api": api, "maxConcurrency": 2, "timeoutSeconds": 30,
                         **endpoint}}


def _spec(url: str, api: str = "chat", **endpoint) -> LabelerSpec:
    return LabelerSpec.model_validate({"model": {"uri": SMOLLM2}, **_labeler(url, api, **endpoint)})


class _Templated:
    """A completions engine fed the text a chat server builds: the user message in the chat template."""

    def __init__(self, engine, server: StandIn):
        self.engine, self.server, self.tokenizer = engine, server, engine.tokenizer

    def continuation_logprobs(self, prompts, continuations):
        texts = [self.server.chat_text([{"role": "user", "content": p}]) for p in prompts]
        return self.engine.continuation_logprobs(texts, continuations)


def test_chat_labels_equal_completions_on_the_templated_prompt(server, tmp_path):
    """A pair labeled through /chat/completions (label job) gets the P(a better) of /completions on the
    same user message in the chat template: same model, same first-token distribution."""
    cfg = config(write_jsonl(tmp_path / "d.jsonl", [RECORD]), tmp_path / "chat", labeler=_labeler(server.url),
                 prompt=CUSTOM)
    summary = main(cfg)
    assert summary["metrics"]["labeled"] == 1, summary["metrics"]
    label = read_jsonl(tmp_path / "chat" / "labels.jsonl")[0]
    # what went over the wire: the prompt text as one user message (no chat template applied here)
    chats = [b for b in server.bodies if "messages" in b]
    assert chats and all(b["max_tokens"] == 1 and b["logprobs"] is True and b["top_logprobs"] == 20 for b in chats)
    spec = PromptSpec.model_validate(CUSTOM)
    sent = sorted(m["content"] for b in chats for m in b["messages"])
    assert all(len(b["messages"]) == 1 and b["messages"][0]["role"] == "user" for b in chats)
    assert sent == sorted(P.render(P.prompt_parts(spec, RECORD, swap), None, False) for swap in (False, True))
    # the same prompt through /completions, templated as the server templates it
    completions = open_engine(_spec(server.url, "completions"))
    try:
        want = {}
        for swap in (False, True):
            text = P.render(P.prompt_parts(spec, RECORD, swap), None, False)
            row = _Templated(completions, server).continuation_logprobs([text], S.CONTINUATIONS)[0]
            want[swap] = S.to_p_a(S.p_better_first(row), swap)
    finally:
        completions.close()
    assert label["pAOrderAB"] == pytest.approx(want[False], abs=1e-4)
    assert label["pAOrderBA"] == pytest.approx(want[True], abs=1e-4)
    # chat prompts are not comparable with completions ones: another prompt hash
    assert label["promptHash"] == P.prompt_hash(spec, SMOLLM2, False, "chat") != P.prompt_hash(spec, SMOLLM2, False)


def test_d_rlaif_direct_scoring_on_chat(server):
    """The d-RLAIF reward on chat: E[score] from the first answer token's top 20, as /completions reads it."""
    chat = open_engine(_spec(server.url), "directReward.labeler")
    completions = open_engine(_spec(server.url, "completions"))
    try:
        reward = DirectLabelerReward(chat, task="summarization", owns_engine=False)
        text, summary = "The cat sat on the mat all day and did not move.", "A cat sat still on a mat."
        got = reward.score([text], [summary])
        message = server.bodies[-1]["messages"][0]["content"]
        assert message == reward.prompt(text, summary) and "<|im_start|>" not in message
        top = completions._top(server.chat_text([{"role": "user", "content": message}]))
        variants = DirectScorer(chat).variants
        want = expected_score([top.get(v) for _, v, _ in variants], variants)
    finally:
        chat.close()
        completions.close()
    assert math.isfinite(want) and 1.0 <= reward.last_expected[0] <= 10.0
    assert reward.last_expected[0] == pytest.approx(want, abs=1e-4)
    assert got[0] == pytest.approx((want - 5.5) / 4.5, abs=1e-4)


def test_429_with_retry_after_then_503_are_retried_by_the_sdk(server, caplog):
    caplog.set_level(logging.INFO)
    engine = open_engine(_spec(server.url, maxRetries=2))
    try:
        want = engine.continuation_logprobs(["Say 1 or 2."], ["1", "2"])
        server.fail(429, retry_after="1")
        server.fail(503)
        server.requests.clear()
        t0 = time.perf_counter()
        got = engine.continuation_logprobs(["Say 1 or 2."], ["1", "2"])
        elapsed = time.perf_counter() - t0
    finally:
        engine.close()
    assert got == want and engine.retries == 2
    assert [r[2] for r in server.requests] == ["0", "1", "2"]  # the SDK's attempt numbers
    assert elapsed >= 1.0  # Retry-After: 1 was honoured
    assert "HTTP 429" in caplog.text and "HTTP 503" in caplog.text and KEY not in caplog.text


def test_endpoint_down_after_the_retries_is_retryable(server):
    engine = open_engine(_spec(server.url, maxRetries=1), "evaluation.judge")
    try:
        server.fail(503)
        server.fail(503)
        with pytest.raises(EndpointDownError, match=r"evaluation.judge: .*/chat/completions failed 2 times") as down:
            engine.continuation_logprobs(["Say 1 or 2."], ["1", "2"])
    finally:
        engine.close()
    assert isinstance(down.value, RetryableError) and exit_code(down.value) == EXIT_RETRYABLE


def test_401_and_404_are_config_errors_naming_the_field(server, monkeypatch):
    monkeypatch.setenv("RLAIF_LABELER_API_KEY", "wrong-key")
    with pytest.raises(EngineLoadError, match=r"HTTP 401.*directReward.labeler.endpoint.apiKeySecret") as refused:
        open_engine(_spec(server.url), "directReward.labeler")
    assert exit_code(refused.value) == EXIT_CONFIG_ERROR and "wrong-key" not in str(refused.value)
    assert str(refused.value).startswith("directReward.labeler: labeler endpoint ")
    monkeypatch.setenv("RLAIF_LABELER_API_KEY", KEY)
    engine = open_engine(_spec(server.url), "evaluation.judge")
    try:
        server.api_key = "rotated"  # the key stops working mid-run: not retried, a config error
        with pytest.raises(EngineLoadError, match=r"HTTP 401.*evaluation.judge.endpoint.apiKeySecret"):
            engine.continuation_logprobs(["Say 1 or 2."], ["1", "2"])
        server.api_key, server.served_model = KEY, "renamed"
        with pytest.raises(EngineLoadError, match=r"chat/completions was not found \(HTTP 404.*"
                                                  r"evaluation.judge.endpoint.api \('chat'"):
            engine.continuation_logprobs(["Say 1 or 2."], ["1", "2"])
    finally:
        engine.close()
