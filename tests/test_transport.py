"""The async LLM layer against the simulator: faults, limits and retry counts."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter

import openai
import pytest

from bench.simulator import SimConfig, Simulator
from pipeline.cache import ResponseCache
from pipeline.errors import (
    LLMError,
    LLMQuotaError,
    LLMRefusalError,
    LLMTransportError,
    LLMTruncatedError,
)
from pipeline.llm import LLMClient
from pipeline.settings import LLMSettings
from pipeline.stages.judge import JudgeReply
from pipeline.stages.scenarios import ScenarioReply

JUDGE = [{"role": "user", "content": "Judge it. type: adherence"}]


def _client(sim: Simulator, tmp_path=None, **overrides) -> LLMClient:
    settings = LLMSettings(
        timeout_s=overrides.pop("timeout_s", 5),
        max_retries=overrides.pop("max_retries", 2),
        backoff_s=overrides.pop("backoff_s", 0.01),
        **overrides,
    )
    cache = ResponseCache(tmp_path / "cache.sqlite") if tmp_path else None
    return LLMClient(settings, sim.base_url, "simulated", cache=cache)


def _sim(**config) -> Simulator:
    return Simulator(SimConfig(**config))


def test_simulator_answers_each_stage_with_schema_valid_content():
    with Simulator() as sim:
        llm = _client(sim)
        scenario = llm.complete(
            [{"role": "user", "content": "Write in 한국어. type: v2r"}],
            ScenarioReply,
            stage="scenario",
        )
        judged = llm.complete(JUDGE, JudgeReply, stage="judge")
        llm.close()
    assert scenario.participants[0].name == "민지"
    assert judged.norm_scale == 5
    assert sim.calls == 2 and sim.answered == {"ok": 2}


def test_truncated_reply_gets_one_counted_retry_with_a_larger_budget():
    with _sim(sequence=["truncated", None]) as sim:
        llm = _client(sim)
        assert llm.complete(JUDGE, JudgeReply, stage="judge", max_tokens=100)
        llm.close()
    assert [r["max_tokens"] for r in sim.requests] == [100, 150]
    assert llm.stats.as_dict()["stages"]["judge"]["errors"] == {"truncated": 1}


def test_always_truncated_ends_as_a_typed_error_after_the_parse_budget():
    with _sim(faults={"truncated": 1.0}) as sim:
        llm = _client(sim, parse_retries=2)
        with pytest.raises(LLMTruncatedError):
            llm.complete(JUDGE, JudgeReply, stage="judge", max_tokens=100)
        llm.close()
    assert [r["max_tokens"] for r in sim.requests] == [100, 150, 225]


def test_refusal_is_counted_and_bounded():
    with _sim(faults={"refusal": 1.0}) as sim:
        llm = _client(sim, refusal_retries=1)
        with pytest.raises(LLMRefusalError):
            llm.complete(JUDGE, JudgeReply, stage="judge")
        llm.close()
    assert sim.calls == 2
    assert llm.stats.as_dict()["stages"]["judge"]["errors"] == {"refused": 2}


def test_hung_reads_end_within_timeout_times_attempts():
    with _sim(faults={"hang": 1.0}, hang_s=60) as sim:
        llm = _client(sim, timeout_s=0.5, max_retries=1)
        started = time.monotonic()
        with pytest.raises(LLMTransportError, match="did not answer in time"):
            llm.complete(JUDGE, JudgeReply, stage="judge")
        elapsed = time.monotonic() - started
        llm.close()
    assert sim.calls == 2
    assert elapsed < 0.5 * 2 + 1.0


def test_quota_stops_after_exactly_one_attempt():
    with _sim(faults={"quota": 1.0}) as sim:
        llm = _client(sim, max_retries=3)
        with pytest.raises(LLMQuotaError, match="no quota left"):
            llm.complete(JUDGE, JudgeReply, stage="judge")
        llm.close()
    assert sim.calls == 1 and llm.transport.attempts == 1


def test_retry_after_is_waited_for():
    with _sim(sequence=["rate_limit", None], retry_after_s=2) as sim:
        llm = _client(sim)
        started = time.monotonic()
        llm.complete(JUDGE, JudgeReply, stage="judge")
        elapsed = time.monotonic() - started
        llm.close()
    assert elapsed >= 2
    assert sim.calls == 2


@pytest.mark.parametrize("fault", ["server_error", "bad_gateway", "cut_body"])
def test_retry_layers_never_multiply(fault):
    with _sim(faults={fault: 1.0}) as sim:
        llm = _client(sim, max_retries=2, parse_retries=2)
        with pytest.raises(LLMTransportError) as err:
            llm.complete(JUDGE, JudgeReply, stage="judge")
        llm.close()
    assert sim.calls == 3 == llm.transport.attempts
    assert "after 3 attempt(s)" in str(err.value)
    assert "JSONDecodeError" not in type(err.value).__name__


def test_html_502_is_retried_and_the_reply_returned():
    with _sim(sequence=["bad_gateway", None]) as sim:
        llm = _client(sim)
        assert llm.complete(JUDGE, JudgeReply, stage="judge").norm_scale == 5
        llm.close()
    assert sim.answered == {"bad_gateway": 1, "ok": 1}


def test_server_rate_limit_is_waited_out_not_failed():
    with _sim(requests_per_minute=3, retry_after_s=0.1) as sim:
        llm = _client(sim, max_retries=0)
        for sample in range(3):
            llm.complete(JUDGE, JudgeReply, stage="judge", sample=sample)
        with pytest.raises(LLMTransportError, match="Rate limited"):
            llm.complete(JUDGE, JudgeReply, stage="judge", sample=3)
        llm.close()
    assert sim.answered["server_rate_limit"] == 1


def test_concurrency_bounds_the_calls_in_flight():
    async def run(sim: Simulator) -> None:
        llm = _client(sim, concurrency=3)
        await asyncio.gather(
            *(
                llm.acomplete(JUDGE, JudgeReply, stage="judge", sample=i)
                for i in range(30)
            )
        )
        await llm.aclose()

    with _sim(latency_s=0.02) as sim:
        asyncio.run(run(sim))
    assert sim.calls == 30
    assert sim.max_in_flight == 3


def test_requests_per_minute_limit_holds_back_calls():
    async def run(sim: Simulator) -> float:
        llm = _client(sim, concurrency=8, requests_per_minute=120)
        started = time.monotonic()
        await asyncio.gather(
            *(
                llm.acomplete(JUDGE, JudgeReply, stage="judge", sample=i)
                for i in range(4)
            )
        )
        await llm.aclose()
        return time.monotonic() - started

    with _sim() as sim:
        # aiolimiter lets the first 120 through at once; none of these wait.
        assert asyncio.run(run(sim)) < 5
    assert sim.calls == 4


def test_sync_complete_from_many_threads_shares_one_loop():
    from concurrent.futures import ThreadPoolExecutor

    with _sim(latency_s=0.01) as sim:
        llm = _client(sim, concurrency=2)
        with ThreadPoolExecutor(8) as pool:
            scores = list(
                pool.map(
                    lambda i: (
                        llm.complete(
                            JUDGE, JudgeReply, stage="judge", sample=i
                        ).norm_scale
                    ),
                    range(16),
                )
            )
        llm.close()
    assert scores == [5] * 16
    assert sim.max_in_flight <= 2


def test_api_key_is_sent_as_a_header_only():
    with Simulator() as sim:
        llm = LLMClient(LLMSettings(api_key="sk-secret-123"), sim.base_url, "simulated")
        llm.complete(JUDGE, JudgeReply, stage="judge")
        llm.close()
    assert "sk-secret-123" not in json.dumps(sim.requests)
    assert "sk-secret-123" not in repr(llm.transport.__dict__.get("settings"))


def test_key_echoed_by_the_server_is_cut_from_the_error(scripted):
    from tests.scripted_server import Reply

    scripted.queue(Reply("Incorrect API key provided: sk-secret-123.", status=401))
    llm = LLMClient(LLMSettings(api_key="sk-secret-123"), scripted.base_url, "m")
    with pytest.raises(LLMTransportError) as err:
        llm.complete(JUDGE, JudgeReply, stage="judge")
    llm.close()
    assert "HTTP 401" in str(err.value) and "NORMLOOM_LLM__API_KEY" in str(err.value)
    assert "sk-secret-123" not in str(err.value)
    assert len(scripted.requests) == 1  # a 401 is not retried


def test_thousand_items_with_ten_percent_faults_all_end_accounted(tmp_path):
    """Issue 7 item 21: every item ends accepted or failed with a reason, once."""
    faults = {
        "rate_limit": 0.02,
        "server_error": 0.02,
        "bad_gateway": 0.01,
        "cut_body": 0.01,
        "truncated": 0.01,
        "malformed": 0.01,
        "refusal": 0.01,
        "hang": 0.01,
    }

    async def run(sim: Simulator) -> Counter:
        llm = _client(sim, tmp_path, concurrency=64, timeout_s=0.3)
        results = await asyncio.gather(
            *(
                llm.acomplete(JUDGE, JudgeReply, stage="judge", sample=i)
                for i in range(1000)
            ),
            return_exceptions=True,
        )
        await llm.aclose()
        outcome = Counter()
        for r in results:
            if isinstance(r, JudgeReply):
                outcome["accepted"] += 1
            else:
                assert isinstance(r, LLMError), repr(r)
                assert str(r)
                outcome[f"failed:{r.kind}"] += 1
        return outcome

    with _sim(faults=faults, retry_after_s=0.01, seed=7, hang_s=5) as sim:
        outcome = asyncio.run(run(sim))
    assert sum(outcome.values()) == 1000
    assert outcome["accepted"] >= 990
    assert 1000 <= sim.calls <= 1000 * 3 * 3
    cache = ResponseCache(tmp_path / "cache.sqlite")
    assert len(cache) <= sim.calls  # one cached reply per answered call at most
    cache.close()


def test_openai_sdk_speaks_to_the_batch_endpoints():
    with Simulator() as sim:
        api = openai.OpenAI(base_url=sim.base_url, api_key="k", max_retries=0)
        line = {
            "custom_id": "k1",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "m", "messages": JUDGE, **_judge_format()},
        }
        upload = api.files.create(
            file=("in.jsonl", json.dumps(line).encode()), purpose="batch"
        )
        batch = api.batches.create(
            input_file_id=upload.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
        for _ in range(100):
            batch = api.batches.retrieve(batch.id)
            if batch.status == "completed":
                break
            time.sleep(0.02)
        rows = api.files.content(batch.output_file_id).text.splitlines()
    result = json.loads(rows[0])
    assert batch.request_counts.completed == 1
    assert result["custom_id"] == "k1"
    content = result["response"]["body"]["choices"][0]["message"]["content"]
    assert json.loads(content)["norm_scale"] == 5


def _judge_format() -> dict:
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "JudgeReply", "schema": {}},
        }
    }


def test_tokens_per_minute_charges_prompt_estimate_plus_budget():
    charged = []

    class Recorder:
        max_rate = 5000

        async def acquire(self, amount: float = 1) -> None:
            charged.append(amount)

    with Simulator() as sim:
        llm = _client(sim, tokens_per_minute=5000)
        llm.transport._tpm = Recorder()
        llm.complete(JUDGE, JudgeReply, stage="judge", max_tokens=250)
        llm.complete(JUDGE, JudgeReply, stage="judge", sample=1, max_tokens=9000)
        llm.close()
    prompt = len(json.dumps(JUDGE, ensure_ascii=False)) // 3
    # A request larger than the whole minute's budget is charged the budget.
    assert charged == [prompt + 250, 5000]


def test_unreachable_endpoint_is_named_without_the_key():
    import socket

    with socket.socket() as probe:  # a port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = LLMSettings(timeout_s=2, max_retries=0, api_key="sk-hidden-1")
    url = f"http://127.0.0.1:{port}/v1"
    llm = LLMClient(settings, url, "m")
    try:
        with pytest.raises(LLMTransportError) as caught:
            llm.complete([{"role": "user", "content": "hi"}], JudgeReply, stage="t")
    finally:
        llm.close()

    message = str(caught.value)
    assert f"http://127.0.0.1:{port}/v1/chat/completions" in message
    assert "sk-hidden" not in message
