"""Records for Argilla: ids from content keys, fields, suggestions, checks (no server)."""

from __future__ import annotations

import pytest

from annotation.datasets import Level, dataset_name
from annotation.records import (
    AnnotationRecord,
    Suggestion,
    build_records,
    check_record,
    validate_records,
)
from pipeline.errors import AnnotationError
from tests.annotation_data import dialogue


def test_ids_come_from_dialogue_and_turn_and_do_not_change():
    first = build_records([dialogue("en"), dialogue("ko", "v2r", 4)])
    again = build_records([dialogue("ko", "v2r", 4), dialogue("en")])

    assert sorted(r.id for r in first) == sorted(r.id for r in again)
    assert [r.id for r in first if r.level is Level.DIALOGUES] == [
        "d-en-adherence-3",
        "d-ko-v2r-4",
    ]
    turn_ids = [r.id for r in first if r.level is Level.TURNS]
    assert turn_ids[:3] == [
        "t-en-adherence-3-0",
        "t-en-adherence-3-1",
        "t-en-adherence-3-2",
    ]
    assert len(set(turn_ids)) == 7  # 3 + 4 turns, no two alike


def test_turn_record_shows_the_dialogue_up_to_the_turn_with_llm_suggestions():
    records = build_records([dialogue("ko", "v2r", 4)])
    turn = next(r for r in records if r.id == "t-ko-v2r-4-2")

    assert turn.fields["turn"] == "감사합니다!"
    assert [m["role"] for m in turn.fields["context"]] == ["김민수", "이지은", "김민수"]
    assert turn.metadata == {
        "dialogue_id": "ko-v2r-4",
        "culture": "kr",
        "language": "ko",
        "type": "v2r",
        "category": "request",
        "n_turns": 4,
        "turn_index": 2,
    }
    by_question = {s.question: s for s in turn.suggestions}
    assert by_question["arc_stage"].value == "repair"
    assert by_question["intent"].value == "THX"
    assert {s.agent for s in turn.suggestions} == {"scripted-model"}
    assert {s.score for s in turn.suggestions} == {1.0}  # judge consistency 5 of 5


def test_non_v2r_turns_get_no_arc_stage_suggestion_and_valid_records_pass():
    records = build_records([dialogue("zh"), dialogue("en", "v2r", 5)])
    zh_turn = next(r for r in records if r.id == "t-zh-adherence-3-0")

    assert "arc_stage" not in {s.question for s in zh_turn.suggestions}
    validate_records(records)  # raises on any problem
    assert all(check_record(r) == [] for r in records)


def _turn(**changes) -> AnnotationRecord:
    record = build_records([dialogue("en")])[1]
    return record.model_copy(update=changes)


def test_empty_and_null_fields_are_named_with_record_and_field():
    fields = {**_turn().fields, "turn": "  ", "norm": None}
    with pytest.raises(AnnotationError) as err:
        validate_records([_turn(fields=fields)])

    message = str(err.value)
    assert "record t-en-adherence-3-0: field 'turn': empty or null" in message
    assert "record t-en-adherence-3-0: field 'norm': empty or null" in message
    assert "nothing was uploaded" in message


def test_suggestion_outside_labels_and_score_outside_unit_interval_are_refused():
    bad = [
        Suggestion(question="norm_label", value="maybe", score=0.5),
        Suggestion(question="emotion", value="joy", score=1.5),
        Suggestion(question="nonsense", value="x"),
    ]
    problems = [str(p) for p in check_record(_turn(suggestions=bad))]

    assert problems == [
        "record t-en-adherence-3-0: suggestion 'norm_label': value 'maybe' is not one "
        "of ['adhered', 'violated', 'not_relevant']",
        "record t-en-adherence-3-0: suggestion 'emotion': score 1.5 is not in [0, 1]",
        "record t-en-adherence-3-0: suggestion 'nonsense': no such question; known: "
        "['arc_stage', 'emotion', 'intent', 'norm_label', 'rationale']",
    ]


def test_chat_messages_must_be_role_and_content():
    fields = {
        **_turn().fields,
        "context": [{"role": "Amy", "content": "Hi"}, {"speaker": "Ben", "text": "Yo"}],
    }
    problems = [str(p) for p in check_record(_turn(fields=fields))]

    assert len(problems) == 1
    assert problems[0].startswith(
        "record t-en-adherence-3-0: field 'context' message 1: expected an object "
        "with exactly 'role' and 'content'"
    )


def test_dialogue_record_with_empty_situation_and_duplicate_ids_are_caught():
    d = dialogue("en").model_copy(update={"situation": ""})
    records = build_records([d])
    with pytest.raises(AnnotationError) as err:
        validate_records(records + records[:1])

    assert "record d-en-adherence-3: field 'situation': empty or null" in str(err.value)
    assert "record d-en-adherence-3: id: two records have this id" in str(err.value)


def test_dataset_names_are_safe_slugs_per_level():
    assert (
        dataset_name("normloom", "demo run/1", Level.TURNS)
        == "normloom-demo-run-1-turns"
    )
    assert dataset_name("x", "runs", Level.DIALOGUES) == "x-runs-dialogues"
