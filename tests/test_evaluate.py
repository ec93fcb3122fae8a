"""Scoring the turn labeller on gold dialogues, against a scripted labeller."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.cultures import load_registry
from pipeline.evaluate import evaluate_labels, score
from pipeline.gold import GoldDialogue
from pipeline.llm import LLMClient
from pipeline.settings import Settings
from pipeline.storage import write_jsonl
from tests.scripted_server import Reply, ScriptedServer


def _labeller(request: dict) -> Reply:
    """Label 'violated' every turn that says 'whatever' or '随便', else 'adhered'."""
    prompt = request["messages"][-1]["content"]
    turns = re.findall(r"\[(\d+)\] <data>(.*?)</data>", prompt)
    labels = [
        {
            "index": int(i),
            "norm_label": "violated"
            if re.search(r"whatever|随便", text, re.I)
            else "adhered",
            "intent": "none",
            "emotion": "neutral",
            "arc_stage": None,
            "rationale": "Scripted.",
        }
        for i, text in turns
    ]
    return Reply(content=json.dumps({"labels": labels}))


def _gold(id_: str, culture: str, language: str, turns: list[tuple[str, str, str]]):
    return GoldDialogue(
        id=id_,
        culture=culture,
        language=language,
        category="apology",
        type="violation",
        norm="Apologise when late.",
        situation="Someone is late.",
        turns=[
            {"index": i, "speaker": s, "text": t, "norm_label": label}
            for i, (s, t, label) in enumerate(turns)
        ],
    )


GOLD = [
    _gold(
        "us-1",
        "us",
        "en",
        [
            ("Dana", "Whatever, traffic.", "violated"),
            ("Kim", "Okay then.", "not_relevant"),
            ("Dana", "Sorry, really.", "adhered"),
        ],
    ),
    _gold(
        "cn-1",
        "cn",
        "zh",
        [("小李", "随便吧。", "violated"), ("舅舅", "这孩子。", "not_relevant")],
    ),
]


@pytest.fixture
def labeller():
    with ScriptedServer(responder=_labeller) as server:
        yield server


def test_scores_per_culture_and_overall(labeller) -> None:
    settings = Settings()
    llm = LLMClient(settings.llm, labeller.base_url, "scripted")

    result = evaluate_labels(GOLD, llm, settings, load_registry())

    us, cn, both = (result.scores[k] for k in ("us", "cn", "all"))
    assert (us.dialogues, us.turns, both.turns) == (1, 3, 5)
    assert us.accuracy == pytest.approx(2 / 3)
    assert cn.accuracy == pytest.approx(1 / 2)
    assert both.accuracy == pytest.approx(3 / 5)
    # Gold not_relevant turns were predicted adhered.
    assert both.confusion.loc["not_relevant", "adhered"] == 2
    assert both.confusion.loc["violated", "violated"] == 2
    # F1: adhered 2*1/(1+3)=0.5, violated 1.0, not_relevant 0.
    assert both.macro_f1 == pytest.approx(0.5)
    assert result.failed == {}


def test_score_counts_only_labels_that_occur() -> None:
    frame = pd.DataFrame(
        {"gold": ["adhered", "adhered"], "predicted": ["adhered", "adhered"]}
    )

    scores = score(frame, 1)

    assert (scores.accuracy, scores.macro_f1) == (1.0, 1.0)
    assert int(scores.confusion.to_numpy().sum()) == 2


def test_eval_labels_command_prints_json(labeller, tmp_path: Path, monkeypatch) -> None:
    gold = tmp_path / "gold.jsonl"
    write_jsonl(GOLD, gold)
    monkeypatch.setenv("NORMLOOM_LLM__BASE_URL", labeller.base_url)
    monkeypatch.setenv("NORMLOOM_LLM__MODEL", "scripted")

    result = CliRunner().invoke(app, ["eval", "labels", "--gold", str(gold), "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["scores"]["all"]["accuracy"] == 0.6
    assert data["scores"]["cn"]["confusion"]["violated"]["violated"] == 1
    assert len(labeller.requests) == 2
