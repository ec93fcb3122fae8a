"""Tests that the scripted server speaks the protocol the openai client expects."""

from __future__ import annotations

import json

import openai
import pytest
from openai import OpenAI

from tests.scripted_server import Reply, ScriptedServer


def _client(server: ScriptedServer) -> OpenAI:
    """Return a client of ``server`` that never retries."""
    return OpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)


def test_queued_reply_reaches_the_client(scripted: ScriptedServer) -> None:
    """Queued replies come back in order and every request body is recorded."""
    scripted.queue(Reply('{"turns": ["안녕하세요"]}', prompt_tokens=7), "second")
    client = _client(scripted)
    messages = [{"role": "user", "content": "한국어로 인사해"}]

    first = client.chat.completions.create(
        model="local", messages=messages, response_format={"type": "json_object"}
    )
    second = client.chat.completions.create(model="local", messages=messages)

    assert json.loads(first.choices[0].message.content) == {"turns": ["안녕하세요"]}
    assert first.choices[0].finish_reason == "stop"
    assert first.usage.total_tokens == 27
    assert second.choices[0].message.content == "second"
    assert [r["messages"] for r in scripted.requests] == [messages, messages]
    assert scripted.requests[0]["response_format"] == {"type": "json_object"}
    assert scripted.pending == 0
    assert [m.id for m in client.models.list()] == ["scripted"]


def test_rate_limit_and_missing_script(scripted: ScriptedServer) -> None:
    """A 429 arrives as RateLimitError; an empty script answers 500."""
    scripted.queue(Reply("slow down", status=429, headers={"Retry-After": "2"}))
    client = _client(scripted)
    messages = [{"role": "user", "content": "hi"}]

    with pytest.raises(openai.RateLimitError) as err:
        client.chat.completions.create(model="local", messages=messages)
    assert err.value.response.headers["retry-after"] == "2"
    assert "slow down" in str(err.value)

    with pytest.raises(openai.InternalServerError, match="no scripted reply"):
        client.chat.completions.create(model="local", messages=messages)

    scripted.responder = lambda body: Reply(body["messages"][-1]["content"].upper())
    echoed = client.chat.completions.create(model="local", messages=messages)
    assert echoed.choices[0].message.content == "HI"
    assert len(scripted.requests) == 3
