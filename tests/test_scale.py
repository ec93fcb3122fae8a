"""The flow at scale: batch mode, Dask, cost accounting and bounded concurrency."""

from __future__ import annotations

import json
from pathlib import Path

import jsonlines
import pytest
from prefect.testing.utilities import prefect_test_harness

from bench.simulator import SimConfig, Simulator
from tests.fake_model import answer
from tests.scripted_server import ScriptedServer

DEMO = Path(__file__).resolve().parent.parent / "data" / "seeds" / "demo.jsonl"


@pytest.fixture(scope="module", autouse=True)
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def _point_at(monkeypatch, base_url: str) -> None:
    monkeypatch.setenv("NORMLOOM_LLM__BASE_URL", base_url)
    monkeypatch.setenv("NORMLOOM_LLM__MODEL", "scripted")
    monkeypatch.setenv("NORMLOOM_BATCH__POLL_S", "0.02")


def _run(out: Path, **kwargs) -> dict:
    from flows.generate import generate_dialogues

    return generate_dialogues(seeds=str(DEMO), out=str(out), **kwargs)


def _dialogues(run: Path) -> list[dict]:
    rows = sorted(jsonlines.open(run / "dialogues.jsonl"), key=lambda r: r["id"])
    return [{k: r[k] for k in ("id", "type", "language", "turns")} for r in rows]


def test_batch_mode_runs_in_waves_and_resumes_without_resending(monkeypatch, tmp_path):
    from pipeline.batch import BatchQueue

    collect = BatchQueue.collect
    seen = {"collects": 0}

    def killed_after_first_send(self, llm):
        seen["collects"] += 1
        if seen["collects"] == 2:  # the first is the resume check at the start
            raise KeyboardInterrupt("killed after the first batch was sent")
        return collect(self, llm)

    with Simulator() as sim:
        _point_at(monkeypatch, sim.base_url)
        monkeypatch.setattr(BatchQueue, "collect", killed_after_first_send)
        with pytest.raises(KeyboardInterrupt):
            _run(tmp_path / "run", batch=True)
        assert len(sim.batches) == 1

        monkeypatch.setattr(BatchQueue, "collect", collect)
        summary = _run(tmp_path / "run", batch=True)

    lines = [b["request_counts"]["total"] for b in sim.batches.values()]
    # Scenarios, judge, revision, judge, dialogues, labels, final judge; the
    # scenario batch of the killed run is collected, not sent again.
    assert lines == [9] * 7
    assert summary["accepted"] == 9 and summary["calls"] == 63
    records = [
        json.loads(line)
        for line in (tmp_path / "run" / "batches.jsonl").read_text().splitlines()
    ]
    assert [r["batch_id"] for r in records if r.get("collected")] == list(sim.batches)
    assert summary["cost"]["by_stage"]["scenario"]["prompt_tokens"] > 0


def test_dask_runner_gives_the_same_dialogues_as_threads(monkeypatch, tmp_path):
    from distributed import LocalCluster

    with ScriptedServer(responder=answer) as server:
        _point_at(monkeypatch, server.base_url)
        threads = _run(tmp_path / "threads")
        with LocalCluster(
            n_workers=1, processes=False, threads_per_worker=4, dashboard_address=None
        ) as cluster:
            monkeypatch.setenv(
                "NORMLOOM_RUNNER__DASK_ADDRESS", cluster.scheduler_address
            )
            on_dask = _run(tmp_path / "dask")

    assert on_dask["accepted"] == threads["accepted"] == 9
    assert _dialogues(tmp_path / "dask") == _dialogues(tmp_path / "threads")


def test_cost_per_stage_language_and_accepted_dialogue(monkeypatch, tmp_path):
    prices = {"scripted": {"prompt": 1000, "completion": 2000}}
    with ScriptedServer(responder=answer) as server:
        _point_at(monkeypatch, server.base_url)
        monkeypatch.setenv("NORMLOOM_LLM__PRICES", json.dumps(prices))
        summary = _run(tmp_path / "run")

    # 63 calls of 10 prompt + 50 completion tokens: 0.11 USD each.
    cost = summary["cost"]
    assert cost["total_usd"] == pytest.approx(6.93)
    assert cost["per_accepted_dialogue_usd"] == pytest.approx(0.77)
    assert cost["by_language"]["ko"] == {
        "prompt_tokens": 210,
        "completion_tokens": 1050,
        "cost_usd": pytest.approx(2.31),
    }
    assert cost["by_stage"]["dialogue"]["cost_usd"] == pytest.approx(0.99)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text("utf-8"))
    assert manifest["usage"]["languages"]["zh"]["cost_usd"] == pytest.approx(2.31)
    assert manifest["summary"]["cost"]["total_usd"] == pytest.approx(6.93)


def test_unknown_model_price_is_reported_as_none(monkeypatch, tmp_path):
    with ScriptedServer(responder=answer) as server:
        _point_at(monkeypatch, server.base_url)
        summary = _run(tmp_path / "run", types=["adherence"])
    assert summary["cost"]["total_usd"] is None
    assert summary["cost"]["tokens_per_accepted_dialogue"] == 7 * 60


def test_limit_of_two_calls_with_many_waiting_tasks_finishes(monkeypatch, tmp_path):
    """Issue 7 item 11: the limit wraps the HTTP call only, so nothing deadlocks."""
    with Simulator(SimConfig(latency_s=0.01, vary=True)) as sim:
        _point_at(monkeypatch, sim.base_url)
        monkeypatch.setenv("NORMLOOM_LLM__CONCURRENCY", "2")
        monkeypatch.setenv("NORMLOOM_RUNNER__WORKERS", "10")
        summary = _run(tmp_path / "run", per_norm=2)

    assert summary["items"] == 18 and summary["failed"] == 0
    assert summary["accepted"] + summary["rejected"] == 18
    assert sim.max_in_flight == 2


def test_faults_in_the_flow_end_every_item_with_a_reason(monkeypatch, tmp_path):
    faults = {"server_error": 0.05, "truncated": 0.05, "refusal": 0.03}
    with Simulator(SimConfig(faults=faults, seed=3)) as sim:
        _point_at(monkeypatch, sim.base_url)
        monkeypatch.setenv("NORMLOOM_LLM__BACKOFF_S", "0.01")
        summary = _run(tmp_path / "run", per_norm=3)

    rows = list(jsonlines.open(tmp_path / "run" / "dialogues.jsonl")) + list(
        jsonlines.open(tmp_path / "run" / "rejected.jsonl")
    )
    assert summary["items"] == len(rows) == len({r["id"] for r in rows}) == 27
    assert summary["accepted"] + summary["rejected"] + summary["failed"] == 27
    assert all(r["reasons"] for r in rows if r["verdict"] != "accepted")
    assert sum(sim.answered.values()) == sim.calls


@pytest.mark.slow  # two real CLI runs, each with its own temporary Prefect server
def test_kill_9_mid_run_then_the_same_command_resumes(tmp_path):
    """Issue 7 item 12: every dialogue once; no completed call is made again."""
    import os
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    with Simulator(SimConfig(latency_s=0.15)) as sim:
        env = {
            **os.environ,
            "NORMLOOM_LLM__BASE_URL": sim.base_url,
            "NORMLOOM_LLM__MODEL": "scripted",
            "NORMLOOM_LLM__CONCURRENCY": "2",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # Its own Prefect database: the temporary server of a killed run
            # must not lock anyone else's.
            "PREFECT_HOME": str(tmp_path / "prefect"),
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",
        }
        command = [sys.executable, "-m", "flows.cli", "generate", "--seeds", str(DEMO)]
        command += ["--out", str(run), "--json"]
        proc = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and proc.poll() is None:
            done = sum(
                1
                for name in ("dialogues.jsonl", "rejected.jsonl")
                if (run / name).exists()
                for _ in (run / name).open("rb")
            )
            if done >= 3:
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the first run ended before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)  # the command and all it started
        proc.wait()
        first_calls = sim.calls

        again = subprocess.run(command, env=env, capture_output=True, text=True)

    summary = json.loads(again.stdout)
    ids = [r["id"] for r in jsonlines.open(run / "dialogues.jsonl")]
    assert 0 < first_calls < 63
    assert summary["items"] == 9 and summary["accepted"] == 9
    assert len(ids) == len(set(ids)) == 9
    # An uninterrupted run makes 63 calls; only the calls in flight at the kill
    # (at most 2) may be made again.
    assert 63 <= sim.calls <= 63 + 2


def test_batch_lines_that_keep_failing_end_as_failed_items(monkeypatch, tmp_path):
    with Simulator(SimConfig(faults={"server_error": 1.0})) as sim:
        _point_at(monkeypatch, sim.base_url)
        monkeypatch.setenv("NORMLOOM_LLM__MAX_RETRIES", "1")
        summary = _run(tmp_path / "run", batch=True, types=["adherence"])

    rejected = list(jsonlines.open(tmp_path / "run" / "rejected.jsonl"))
    assert summary["failed"] == len(rejected) == 3
    assert len(sim.batches) == 2  # the first try and one retry
    assert all(
        r["reasons"][0].startswith("scenario: transport: The batch answered")
        for r in rejected
    )
