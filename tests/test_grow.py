"""Growing a norm bank from a few seeds, against a scripted writer and judge."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from pipeline.cultures import load_registry
from pipeline.llm import LLMClient
from pipeline.schemas import SeedNorm
from pipeline.seeds import load_seeds, write_seeds
from pipeline.settings import Settings
from pipeline.stages.grow import grow_norms, specs_for
from tests.scripted_server import Reply, ScriptedServer

SEEDS = [
    SeedNorm(
        id="kr-request-1",
        culture="kr",
        language="ko",
        category="request",
        norm="윗사람에게 부탁할 때는 존댓말을 쓰고 상대의 사정을 먼저 묻는다.",
    ),
    SeedNorm(
        id="kr-request-2",
        culture="kr",
        language="ko",
        category="request",
        norm="친구에게 부탁을 들어 주면 작은 선물로 고마움을 표한다.",
    ),
]
NORMS = [
    "처음 만난 사람에게 길을 물을 때는 '실례합니다'로 말을 시작한다.",
    "윗사람에게 부탁할 때는 존댓말을 쓰고 상대의 사정을 먼저 묻는다.",  # a seed again
    "직장 상사에게 휴가를 부탁할 때는 업무 인수인계 계획을 함께 말한다.",
    "직장 상사에게 휴가를 부탁할 때는 업무 인수인계 계획을 함께 말한다.",  # twice
    "BAD 친구에게는 아무렇게나 부탁해도 된다.",
    "이웃에게 택배 보관을 부탁할 때는 먼저 초인종을 누르고 양해를 구한다.",
    "가족에게 부탁할 때도 '고마워'라는 말을 잊지 않는다.",
    "선배에게 자료 검토를 부탁할 때는 마감보다 여유 있게 미리 부탁한다.",
]

POOL = NORMS + [f"손님 {i}명에게 차를 권할 때는 두 손으로 드린다." for i in range(20)]


def _responder(request: dict) -> Reply:
    schema = request["response_format"]["json_schema"]["name"]
    prompt = request["messages"][-1]["content"]
    if schema == "GrowReply":
        n = len(re.findall(r"^\[\d+\] tone:", prompt, re.M))
        start = len(_responder.sent)
        norms = POOL[start : start + n]
        _responder.sent.extend(norms)
        data = {
            "norms": [
                {"index": i, "norm": t, "setting": "회사"} for i, t in enumerate(norms)
            ]
        }
    else:
        candidates = re.findall(r"^\[(\d+)\] <data>(.*?)</data>", prompt, re.M)
        data = {
            "verdicts": [
                {"index": int(i), "valid": "BAD" not in t, "reason": "Checked."}
                for i, t in candidates
            ]
        }
    return Reply(content=json.dumps(data, ensure_ascii=False))


def _server() -> ScriptedServer:
    _responder.sent = []
    return ScriptedServer(responder=_responder)


def test_growth_dedupes_judges_and_keeps_parameters() -> None:
    settings = Settings()
    with _server() as server:
        llm = LLMClient(settings.llm, server.base_url, "scripted")
        growth = grow_norms(SEEDS, llm, settings, load_registry(), k=5)
        stages = [r["response_format"]["json_schema"]["name"] for r in server.requests]

    assert len(growth.seeds) == 5
    assert [s.norm for s in growth.seeds[:4]] == [
        NORMS[0],
        NORMS[2],
        NORMS[5],
        NORMS[6],
    ]
    assert {(s.culture, s.language, s.category) for s in growth.seeds} == {
        ("kr", "ko", "request")
    }
    reasons = [r for _, r in growth.rejected]
    assert sum("near duplicate of 'seed:kr-request-1'" in r for r in reasons) == 1
    assert sum(r.startswith("near duplicate of") for r in reasons) == 2
    assert "judge: Checked." in reasons
    # Two rounds: five asked, two duplicates and one reject, so two more asked.
    assert stages == ["GrowReply", "GrowJudgeReply", "GrowReply", "GrowJudgeReply"]
    assert growth.seeds[0].notes == (
        "tone: formal; honorifics: honorific speech; relational distance: close (family, friends)"
    )
    assert growth.seeds[0].origin == "grown from kr-request-1, kr-request-2"


def test_specs_cycle_through_every_combination() -> None:
    specs = specs_for(Settings(), 0, 25)

    assert len({(s.tone, s.honorifics, s.distance) for s in specs}) == 24
    assert specs[24] == specs[0]


def test_seeds_grow_command_writes_a_loadable_seed_file(
    tmp_path: Path, monkeypatch
) -> None:
    seeds = tmp_path / "kr.jsonl"
    write_seeds(SEEDS, seeds)
    out = tmp_path / "grown.jsonl"
    with _server() as server:
        monkeypatch.setenv("NORMLOOM_LLM__BASE_URL", server.base_url)
        monkeypatch.setenv("NORMLOOM_LLM__MODEL", "scripted")
        result = CliRunner().invoke(
            app, ["seeds", "grow", str(seeds), "--k", "2", "--out", str(out), "--json"]
        )

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["grown"] == 2
    grown = load_seeds(out).seeds
    assert [s.norm for s in grown] == [NORMS[0], NORMS[2]]
