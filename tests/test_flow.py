"""The generate-dialogues flow under Prefect's test harness, against a scripted model."""

from __future__ import annotations

import json
from pathlib import Path

import jsonlines
import pytest
from prefect.testing.utilities import prefect_test_harness

from tests.fake_model import answer
from tests.scripted_server import ScriptedServer

DEMO = Path(__file__).resolve().parent.parent / "data" / "seeds" / "demo.jsonl"


@pytest.fixture(scope="module", autouse=True)
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def model(monkeypatch):
    with ScriptedServer(responder=answer) as server:
        monkeypatch.setenv("NORMLOOM_LLM__BASE_URL", server.base_url)
        monkeypatch.setenv("NORMLOOM_LLM__MODEL", "scripted")
        monkeypatch.setenv("NORMLOOM_LLM__API_KEY", "sk-test-secret-0000")
        yield server


def _run(out: Path, **kwargs) -> dict:
    from flows.generate import generate_dialogues

    return generate_dialogues(seeds=str(DEMO), out=str(out), **kwargs)


def test_flow_writes_every_file_and_accepts_valid_dialogues(model, tmp_path):
    summary = _run(tmp_path / "run")

    run = tmp_path / "run"
    accepted = list(jsonlines.open(run / "dialogues.jsonl"))
    assert summary["items"] == 9  # 3 norms x 3 types
    assert summary["accepted"] == len(accepted) == 9
    assert {
        (r["language"], r["type"], r["accepted"], r["acceptance"])
        for r in summary["by_language_type"]
    } == {
        (lang, t, 1, 1.0)
        for lang in ("en", "zh", "ko")
        for t in ("adherence", "violation", "v2r")
    }
    assert all(type(r["accepted"]) is int for r in summary["by_language_type"])
    assert {d["language"] for d in accepted} == {"en", "zh", "ko"}
    assert {d["type"] for d in accepted} == {"adherence", "violation", "v2r"}
    v2r = next(d for d in accepted if d["type"] == "v2r")
    assert [t["labels"]["arc_stage"] for t in v2r["turns"]] == [
        "violation",
        "recognition",
        "repair",
        "repair",
        "resolution",
        "resolution",
    ]
    assert len(list(jsonlines.open(run / "scenarios.jsonl"))) == 9
    assert len(list(jsonlines.open(run / "refinements.jsonl"))) == 9

    manifest = json.loads((run / "manifest.json").read_text("utf-8"))
    assert manifest["counts"]["dialogues"] == 9
    assert set(manifest["prompt_templates"]) >= {"dialogue.j2", "labels.j2"}
    assert "선배님" in (run / "dialogues.jsonl").read_text("utf-8")  # raw, not \u


def test_rerun_makes_no_calls_and_duplicates_nothing(model, tmp_path):
    _run(tmp_path / "run")
    calls = len(model.requests)

    summary = _run(tmp_path / "run")

    assert len(model.requests) == calls
    assert summary["items"] == 9
    ids = [d["id"] for d in jsonlines.open(tmp_path / "run" / "dialogues.jsonl")]
    assert len(ids) == len(set(ids)) == 9


def test_interrupted_run_resumes_without_repeating_calls(model, tmp_path):
    run = tmp_path / "run"
    _run(run)
    calls = len(model.requests)
    # Lose the last three finished dialogues, one of them half-written.
    lines = (run / "dialogues.jsonl").read_text("utf-8").splitlines(keepends=True)
    (run / "dialogues.jsonl").write_text("".join(lines[:6]) + lines[6][:40], "utf-8")

    summary = _run(run)

    ids = [d["id"] for d in jsonlines.open(run / "dialogues.jsonl")]
    assert len(ids) == len(set(ids)) == 9
    assert summary["accepted"] == 9
    assert len(model.requests) == calls  # every call came from the cache


def test_judge_scale_that_does_not_fit_the_type_rejects_with_reason(
    monkeypatch, tmp_path
):
    with ScriptedServer(responder=lambda r: answer(r, judge_scale=5)) as server:
        monkeypatch.setenv("NORMLOOM_LLM__BASE_URL", server.base_url)
        monkeypatch.setenv("NORMLOOM_LLM__MODEL", "scripted")
        summary = _run(tmp_path / "run", types=["violation"])

    rejected = list(jsonlines.open(tmp_path / "run" / "rejected.jsonl"))
    assert summary["rejected"] == 3 and summary["accepted"] == 0
    assert all(
        any(r.startswith("judge_norm_scale: norm_scale 5") for r in d["reasons"])
        for d in rejected
    )


def test_api_key_never_written(model, tmp_path):
    _run(tmp_path / "run")
    for path in (tmp_path / "run").iterdir():
        assert b"sk-test-secret-0000" not in path.read_bytes(), path.name


def test_refused_dialogue_fails_with_its_reason_and_the_rest_go_on(
    monkeypatch, tmp_path
):
    from tests.fake_model import language_of, stage_of
    from tests.scripted_server import Reply

    def refuse_korean_dialogues(request):
        if stage_of(request) == "DialogueReply" and language_of(request) == "ko":
            return Reply(None, refusal="I can't write that conversation.")
        return answer(request)

    with ScriptedServer(responder=refuse_korean_dialogues) as server:
        monkeypatch.setenv("NORMLOOM_LLM__BASE_URL", server.base_url)
        monkeypatch.setenv("NORMLOOM_LLM__MODEL", "scripted")
        summary = _run(tmp_path / "run")

    failed = [
        d
        for d in jsonlines.open(tmp_path / "run" / "rejected.jsonl")
        if d["verdict"] == "failed"
    ]
    assert summary["accepted"] == 6 and summary["failed"] == 3
    assert {d["language"] for d in failed} == {"ko"}
    assert all(d["reasons"][0].startswith("dialogue: refused") for d in failed)
    assert summary["refused"] == {"ko/adherence": 1, "ko/v2r": 1, "ko/violation": 1}


def test_unknown_culture_or_type_is_named(model, tmp_path):
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="Unknown culture.*atlantis"):
        _run(tmp_path / "run", cultures=["us", "atlantis"])
    with pytest.raises(ConfigError, match="Unknown dialogue type.*apology"):
        _run(tmp_path / "run", types=["apology"])


def test_items_that_failed_on_the_endpoint_are_retried_by_a_rerun(
    monkeypatch, tmp_path
):
    from tests.fake_model import language_of, stage_of
    from tests.scripted_server import Reply

    down = {"ko": True}

    def flaky(request):
        if (
            down["ko"]
            and language_of(request) == "ko"
            and stage_of(request) == "DialogueReply"
        ):
            return Reply(status=503)
        return answer(request)

    with ScriptedServer(responder=flaky) as server:
        monkeypatch.setenv("NORMLOOM_LLM__BASE_URL", server.base_url)
        monkeypatch.setenv("NORMLOOM_LLM__MODEL", "scripted")
        monkeypatch.setenv("NORMLOOM_LLM__MAX_RETRIES", "0")
        first = _run(tmp_path / "run")
        down["ko"] = False
        second = _run(tmp_path / "run")

    assert (first["accepted"], first["failed"]) == (6, 3)
    assert (second["accepted"], second["failed"], second["items"]) == (9, 0, 9)
    assert list(jsonlines.open(tmp_path / "run" / "rejected.jsonl")) == []


def test_out_of_quota_stops_the_run_and_the_rerun_finishes_it(monkeypatch, tmp_path):
    import json as _json

    from tests.fake_model import stage_of
    from tests.scripted_server import Reply

    broke = {"on": True}
    quota = _json.dumps({"error": {"code": "insufficient_quota", "message": "quota"}})

    def out_of_credit(request):
        if broke["on"] and stage_of(request) == "DialogueReply":
            return Reply(status=429, body=quota)
        return answer(request)

    with ScriptedServer(responder=out_of_credit) as server:
        monkeypatch.setenv("NORMLOOM_LLM__BASE_URL", server.base_url)
        monkeypatch.setenv("NORMLOOM_LLM__MODEL", "scripted")
        monkeypatch.setenv("NORMLOOM_LLM__CONCURRENCY", "1")
        monkeypatch.setenv("NORMLOOM_RUNNER__WORKERS", "1")
        first = _run(tmp_path / "run")
        dialogue_calls = sum(stage_of(r) == "DialogueReply" for r in server.requests)
        broke["on"] = False
        second = _run(tmp_path / "run")

    assert "no quota left" in first["stopped"]
    # One worker: the first item's dialogue call meets the quota, then nothing
    # else is asked for, and nothing is written as failed.
    assert dialogue_calls == 1
    assert first["items"] == 0
    assert (second["accepted"], second["failed"], second["items"]) == (9, 0, 9)
    assert "stopped" not in second
