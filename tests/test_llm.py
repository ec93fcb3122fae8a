"""The LLM layer against a scripted server: parsing, retries, refusals, cache."""

from __future__ import annotations

import json
import time

import pytest
from pydantic import BaseModel, ConfigDict

from pipeline.cache import ResponseCache
from pipeline.errors import (
    LLMMalformedError,
    LLMQuotaError,
    LLMRefusalError,
    LLMSchemaError,
    LLMTransportError,
    LLMTruncatedError,
)
from pipeline.llm import LLMClient
from pipeline.settings import LLMSettings
from tests.scripted_server import Reply

MESSAGES = [{"role": "user", "content": "Score it."}]


class Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    verdict: str
    score: int


def client(server, tmp_path=None, **overrides) -> LLMClient:
    settings = LLMSettings(timeout_s=5, max_retries=2, **overrides)
    cache = ResponseCache(tmp_path / "cache.sqlite") if tmp_path else None
    return LLMClient(settings, server.base_url, "scripted", cache=cache)


GOOD = json.dumps({"verdict": "pass", "score": 4})


@pytest.mark.parametrize(
    "content",
    [
        GOOD,
        f"``` json\n{GOOD}\n```",
        f"Sure! Here is the evaluation: {GOOD} Let me know if you need more.",
        f'<think>draft {{"verdict": "fail", "score": 1}}</think>{GOOD}',
        f"reasoning without an opening tag</think>\n{GOOD}",
    ],
)
def test_wrapped_json_is_found(scripted, content):
    scripted.queue(content)
    assert client(scripted).complete(MESSAGES, Verdict, stage="t") == Verdict(
        verdict="pass", score=4
    )


def test_truncated_reply_is_retried_once_with_a_larger_budget(scripted):
    scripted.queue(
        Reply('{"verdict": "pa', finish_reason="length"),
        Reply(GOOD),
    )
    llm = client(scripted)
    assert llm.complete(MESSAGES, Verdict, stage="t", max_tokens=100).score == 4
    budgets = [r["max_tokens"] for r in scripted.requests]
    assert budgets == [100, 150]
    assert llm.stats.as_dict()["stages"]["t"]["errors"] == {"truncated": 1}


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{", LLMTruncatedError),
        ("{'verdict': print('x')}", LLMMalformedError),
        ("<think>still thinking about the", LLMTruncatedError),
        ('{"dialogue": "A: Hi\\nB: Hello"}', LLMSchemaError),
        ("The dialogue is lovely and polite.", LLMMalformedError),
    ],
)
def test_unusable_replies_raise_typed_errors_after_bounded_retries(
    scripted, content, error
):
    scripted.queue(*[content] * 3)
    with pytest.raises(error):
        client(scripted, parse_retries=2).complete(MESSAGES, Verdict, stage="t")
    assert len(scripted.requests) == 3


def test_refusal_field_is_not_parsed_and_is_counted(scripted):
    scripted.queue(*[Reply(None, refusal="I can't help with that.")] * 2)
    llm = client(scripted, refusal_retries=1)
    with pytest.raises(LLMRefusalError):
        llm.complete(MESSAGES, Verdict, stage="t")
    assert llm.stats.as_dict()["stages"]["t"]["errors"] == {"refused": 2}


def test_prose_refusal_is_a_refusal(scripted):
    scripted.queue("I'm sorry, but I can't write a dialogue where someone is rude.")
    with pytest.raises(LLMRefusalError):
        client(scripted, refusal_retries=0).complete(MESSAGES, Verdict, stage="t")


def test_retry_after_is_honoured(scripted):
    scripted.queue(Reply(status=429, headers={"Retry-After": "2"}), Reply(GOOD))
    started = time.monotonic()
    assert client(scripted).complete(MESSAGES, Verdict, stage="t").score == 4
    assert time.monotonic() - started >= 2
    assert len(scripted.requests) == 2


def test_insufficient_quota_stops_after_one_attempt(scripted):
    body = json.dumps({"error": {"code": "insufficient_quota", "message": "quota"}})
    scripted.queue(*[Reply(status=429, body=body)] * 3)
    with pytest.raises(LLMQuotaError, match="no quota left"):
        client(scripted).complete(MESSAGES, Verdict, stage="t")
    assert len(scripted.requests) == 1


def test_html_502_is_retried_as_transient(scripted):
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    scripted.queue(
        Reply(status=502, body=page, headers={"Content-Type": "text/html"}),
        Reply(GOOD),
    )
    assert client(scripted).complete(MESSAGES, Verdict, stage="t").score == 4


def test_cut_off_http_body_is_retried_then_a_transport_error(scripted):
    cut = '{"id": "x", "object": "chat.completion", "choices": [{"ind'
    scripted.queue(Reply(body=cut), Reply(GOOD))
    assert client(scripted).complete(MESSAGES, Verdict, stage="t").score == 4

    scripted.queue(*[Reply(body=cut)] * 3)
    with pytest.raises(LLMTransportError, match="not an OpenAI chat completion"):
        client(scripted).complete(MESSAGES, Verdict, stage="u")
    assert len(scripted.requests) == 2 + 3


def test_server_that_never_answers_fails_within_timeout_times_attempts(scripted):
    scripted.queue(*[Reply(GOOD, delay_s=30)] * 3)
    llm = LLMClient(
        LLMSettings(timeout_s=1, max_retries=1), scripted.base_url, "scripted"
    )
    started = time.monotonic()
    with pytest.raises(LLMTransportError):
        llm.complete(MESSAGES, Verdict, stage="t")
    # Two attempts of 1 s each plus the backoff between them.
    assert time.monotonic() - started < 2 * 1 + 3
    assert len(scripted.requests) == 2


def test_cache_serves_identical_requests_but_not_other_samples(scripted, tmp_path):
    scripted.queue(GOOD, json.dumps({"verdict": "fail", "score": 2}))
    llm = client(scripted, tmp_path)
    first = llm.complete(MESSAGES, Verdict, stage="t", sample=0)
    again = client(scripted, tmp_path).complete(MESSAGES, Verdict, stage="t", sample=0)
    other = llm.complete(MESSAGES, Verdict, stage="t", sample=1)

    assert first == again
    assert other.score == 2
    assert len(scripted.requests) == 2


def test_failed_attempts_are_cached_too(scripted, tmp_path):
    scripted.queue("not json", GOOD)
    client(scripted, tmp_path).complete(MESSAGES, Verdict, stage="t")
    calls = len(scripted.requests)

    value = client(scripted, tmp_path).complete(MESSAGES, Verdict, stage="t")

    assert value.score == 4
    assert len(scripted.requests) == calls == 2


def test_schema_is_sent_and_key_never_sent_in_body(scripted):
    scripted.queue(GOOD)
    settings = LLMSettings(api_key="sk-secret-value")
    LLMClient(settings, scripted.base_url, "m").complete(MESSAGES, Verdict, stage="t")
    request = scripted.requests[0]
    assert request["response_format"]["json_schema"]["name"] == "Verdict"
    assert "sk-secret-value" not in json.dumps(request)


def test_judging_stages_are_greedy_and_their_retries_sample(scripted):
    scripted.queue("not json", GOOD, GOOD)
    llm = client(scripted, temperature=0.9)
    llm.complete(MESSAGES, Verdict, stage="judge")
    llm.complete(MESSAGES, Verdict, stage="dialogue")

    temperatures = [r["temperature"] for r in scripted.requests]
    assert temperatures == [0.0, 0.9, 0.9]


def test_python_quoted_reply_is_parsed_without_eval_or_refused(scripted):
    scripted.queue("{'verdict': 'pass', 'score': 4}", "{'verdict': __import__('os')}")
    llm = client(scripted, parse_retries=0)
    assert llm.complete(MESSAGES, Verdict, stage="t") == Verdict(
        verdict="pass", score=4
    )
    with pytest.raises(LLMMalformedError):
        llm.complete(MESSAGES, Verdict, stage="t")
