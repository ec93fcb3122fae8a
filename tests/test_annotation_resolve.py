"""Pulled answers: submitted only, majority with ties, alpha and human-vs-LLM (no server)."""

from __future__ import annotations

from annotation.agreement import agreement_report, alpha
from annotation.collect import response_rows
from annotation.datasets import Level
from annotation.resolve import (
    exemplars_from,
    majority,
    resolve_dialogues,
    resolve_turns,
)
from tests.annotation_data import dialogue

LABELS_A = ["adhered", "adhered", "violated", "violated"]
LABELS_B = ["adhered", "violated", "violated", "violated"]


def _row(annotator: str, index: int, norm_label: str, **extra) -> dict:
    return {
        "record_id": f"t-d1-{index}",
        "dataset": "turns",
        "dialogue_id": "d1",
        "turn_index": index,
        "annotator": annotator,
        "norm_label": norm_label,
        "intent": "QUE",
        "emotion": "neutral",
        "arc_stage": None,
        "rationale": f"{annotator} on {index}",
        **extra,
    }


def _two_annotators() -> list[dict]:
    return [_row("ann1", i, v) for i, v in enumerate(LABELS_A)] + [
        _row("ann2", i, v) for i, v in enumerate(LABELS_B)
    ]


def test_only_submitted_responses_become_rows_one_per_record_and_annotator():
    record = {
        "id": "0d6c9c3e-0000-4000-8000-000000000001",
        "external_id": "t-d1-0",
        "metadata": {"dialogue_id": "d1", "turn_index": 0},
        "responses": [
            {
                "user_id": "u1",
                "status": "submitted",
                "values": {"norm_label": {"value": "adhered"}},
            },
            {
                "user_id": "u2",
                "status": "draft",
                "values": {"norm_label": {"value": "violated"}},
            },
            {"user_id": "u3", "status": "discarded", "values": None},
        ],
    }
    rows = response_rows([record], Level.TURNS, {"u1": "ann1", "u2": "ann2"})

    assert rows == [
        {
            "record_id": "t-d1-0",
            "dataset": "turns",
            "dialogue_id": "d1",
            "turn_index": 0,
            "annotator": "ann1",
            "norm_label": "adhered",
            "intent": None,
            "emotion": None,
            "arc_stage": None,
            "rationale": None,
        }
    ]


def test_majority_flags_ties_and_keeps_the_first_label_in_question_order():
    order = ("adhered", "violated", "not_relevant")
    assert majority(["violated", "adhered", "violated"], order) == ("violated", False)
    assert majority(["violated", "adhered"], order) == ("adhered", True)
    assert majority([None, None], order) == (None, False)


def test_resolved_turns_have_majority_tie_flag_and_count():
    rows = _two_annotators() + [_row("ann3", 1, "violated")]
    resolved = resolve_turns(rows)

    assert [
        (r["turn_index"], r["norm_label"], r["tie"], r["n_annotators"])
        for r in resolved
    ] == [
        (0, "adhered", False, 2),
        (1, "violated", False, 3),
        (2, "violated", False, 2),
        (3, "violated", False, 2),
    ]
    assert resolved[1]["rationale"] == "ann2 on 1"  # from one who chose "violated"
    assert set(resolved[0]) == {
        "dialogue_id", "turn_index", "norm_label", "intent", "emotion", "arc_stage",
        "rationale", "n_annotators", "tie", "source",
    }  # fmt: skip
    assert {r["source"] for r in resolved} == {"human"}


def test_alpha_matches_the_hand_computed_value():
    # Coincidences: o_aa=2, o_av=o_va=1, o_vv=4; n_a=3, n_v=5, n=8.
    # D_o = 2/8, D_e = 2*3*5/(8*7); alpha = 1 - D_o/D_e = 1 - 0.25/0.5357 = 0.5333.
    assert alpha(_two_annotators(), Level.TURNS, "norm_label") == 0.5333
    assert alpha(_two_annotators(), Level.TURNS, "intent") is None  # no variation
    assert alpha([_row("ann1", 0, "adhered")], Level.TURNS, "norm_label") is None


def test_human_vs_llm_agreement_and_confusion_table():
    d = dialogue("en", n=4).model_copy(update={"id": "d1"})
    rows = _two_annotators()
    resolved = resolve_turns(rows)  # turn 1 is a tie resolved to "adhered"
    report = agreement_report(rows, [], resolved, {"d1": d})

    assert [r["tie"] for r in resolved] == [False, True, False, False]
    assert report["human_llm"]["norm_label"] == {
        "agreement": 0.5,
        "n": 4,
        "confusion": {"adhered": {"adhered": 2}, "violated": {"adhered": 2}},
    }
    assert report["human_llm"]["intent"]["agreement"] == 0.5  # LLM: QUE AGR THX QUE
    assert report["human_llm"]["arc_stage"] == {
        "agreement": None,
        "n": 0,
        "confusion": {},
    }
    assert report["alpha"]["norm_label"] == 0.5333
    assert report["n_records"] == 4
    assert report["n_responses"] == 8


def test_dialogue_resolution_and_exemplars_from_approved_dialogues():
    def row(annotator, nat, cult, norm, arc, dialogue_id="en-adherence-3"):
        return {
            "record_id": f"d-{dialogue_id}",
            "dataset": "dialogues",
            "dialogue_id": dialogue_id,
            "turn_index": None,
            "annotator": annotator,
            "naturalness": nat,
            "cultural_appropriateness": cult,
            "norm_correct": norm,
            "arc_matches": arc,
            "comment": None,
        }

    rows = [
        row("ann1", 4, 5, "yes", "yes"),
        row("ann2", 5, 4, "yes", "no"),
        row("ann3", 5, 4, "yes", "yes"),
        row("ann1", 2, 3, "yes", "yes", "zh-adherence-3"),
    ]
    resolved = resolve_dialogues(rows)

    assert resolved[0] == {
        "dialogue_id": "en-adherence-3",
        "naturalness": 5.0,
        "cultural_appropriateness": 4.0,
        "norm_correct": "yes",
        "arc_matches": "yes",
        "n_annotators": 3,
    }
    dialogues = {d.id: d for d in (dialogue("en"), dialogue("zh"))}
    exemplars = exemplars_from(resolved, dialogues)
    assert [e.id for e in exemplars] == ["human-en-adherence-3"]  # zh rated too low
    assert exemplars[0].situation == dialogues["en-adherence-3"].situation
