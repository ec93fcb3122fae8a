"""The flow's optional steps, norm-bank growth and comparable mode, under Prefect."""

from __future__ import annotations

import json

import jsonlines

from pipeline.seeds import load_seeds
from tests.fake_model import answer
from tests.scripted_server import ScriptedServer

# The Prefect harness (autouse) and the scripted model come from the flow tests.
from tests.test_flow import _run, harness, model  # noqa: F401


def _prompts(server: ScriptedServer, text: str) -> int:
    return sum(
        text in json.dumps(r["messages"], ensure_ascii=False) for r in server.requests
    )


def test_comparable_mode_renders_one_scenario_per_culture(model, tmp_path):
    summary = _run(tmp_path / "run", comparable=True)

    records = list(jsonlines.open(tmp_path / "run" / "dialogues.jsonl")) + list(
        jsonlines.open(tmp_path / "run" / "rejected.jsonl")
    )
    assert summary["items"] == 9
    by_pair: dict[str, set] = {}
    for record in records:
        by_pair.setdefault(record["pair_id"], set()).add(
            (record["language"], record["type"])
        )
    # One pair per type, each holding the three languages.
    assert len(by_pair) == 3
    assert all(
        {lang for lang, _ in group} == {"en", "zh", "ko"} for group in by_pair.values()
    )
    assert all(len({t for _, t in group}) == 1 for group in by_pair.values())
    # The US scenario is written once per pair and adapted to the other two.
    assert _prompts(model, "Scenario written for another culture") == 6
    scenarios = list(jsonlines.open(tmp_path / "run" / "scenarios.jsonl"))
    assert len(scenarios) == 9 and all(s["pair_id"] for s in scenarios)


def test_comparable_rerun_makes_no_calls(model, tmp_path):
    _run(tmp_path / "run", comparable=True)
    calls = len(model.requests)

    summary = _run(tmp_path / "run", comparable=True)

    assert len(model.requests) == calls
    assert summary["items"] == 9


def test_grow_first_adds_reviewable_sub_norms(model, tmp_path):
    summary = _run(tmp_path / "run", grow=2, types=["adherence"])

    grown = load_seeds(tmp_path / "run" / "grown_seeds.jsonl").seeds
    assert len(grown) == 6  # 2 per culture and category
    assert {s.culture for s in grown} == {"us", "cn", "kr"}
    assert all(s.notes.startswith("tone: ") for s in grown)
    seeds = list(jsonlines.open(tmp_path / "run" / "seeds.jsonl"))
    assert len(seeds) == 9 and summary["items"] == 9


def test_pair_whose_lead_scenario_fails_is_failed_whole(monkeypatch, tmp_path):
    from tests.fake_model import language_of, stage_of
    from tests.scripted_server import Reply

    def no_english_scenarios(request):
        if stage_of(request) == "ScenarioReply" and language_of(request) == "en":
            return Reply(status=503)
        return answer(request)

    with ScriptedServer(responder=no_english_scenarios) as server:
        monkeypatch.setenv("NORMLOOM_LLM__BASE_URL", server.base_url)
        monkeypatch.setenv("NORMLOOM_LLM__MODEL", "scripted")
        monkeypatch.setenv("NORMLOOM_LLM__MAX_RETRIES", "0")
        summary = _run(tmp_path / "run", comparable=True, types=["adherence"])

    failed = list(jsonlines.open(tmp_path / "run" / "rejected.jsonl"))
    assert summary["failed"] == 3 and summary["accepted"] == 0
    assert {d["language"] for d in failed} == {"en", "zh", "ko"}
    assert all(d["reasons"][0].startswith("scenario: transport") for d in failed)
    assert len({d["pair_id"] for d in failed}) == 1
