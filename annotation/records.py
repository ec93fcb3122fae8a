"""Argilla records built from accepted dialogues, and their checks before upload.

A record's id is derived from its content key (the dialogue id, and the turn index for
a turn), so the same turn always gets the same id and pushing twice updates instead
of adding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from annotation.datasets import (
    FIELDS,
    INTEGER_METADATA,
    QUESTIONS,
    TERMS_METADATA,
    Level,
    question,
)
from pipeline.errors import AnnotationError
from pipeline.schemas import DialogueRecord, DialogueType

MAX_SHOWN = 30


class Suggestion(BaseModel):
    """A model's answer to one question, shown to annotators pre-filled."""

    model_config = ConfigDict(extra="forbid")

    question: str
    value: Any
    score: float | None = None
    agent: str | None = None


class AnnotationRecord(BaseModel):
    """One record of one of a run's two datasets, as sent to Argilla."""

    model_config = ConfigDict(extra="forbid")

    id: str
    level: Level
    dialogue_id: str
    turn_index: int | None = None
    fields: dict[str, Any]
    metadata: dict[str, Any]
    suggestions: list[Suggestion] = Field(default_factory=list)


def dialogue_record_id(dialogue_id: str) -> str:
    """Return the record id of a dialogue in the dialogue-level dataset."""
    return f"d-{dialogue_id}"


def turn_record_id(dialogue_id: str, turn_index: int) -> str:
    """Return the record id of one turn in the turn-level dataset."""
    return f"t-{dialogue_id}-{turn_index}"


def _score(dialogue: DialogueRecord) -> float | None:
    # The labeller gives no confidence of its own; the judge's consistency score of
    # the whole dialogue, scaled to [0, 1], stands in for it.
    if dialogue.judge is None:
        return None
    return round((dialogue.judge.consistency - 1) / 4, 4)


def _metadata(dialogue: DialogueRecord) -> dict[str, Any]:
    return {
        "dialogue_id": dialogue.id,
        "culture": dialogue.culture,
        "language": dialogue.language,
        "type": dialogue.type.value,
        "category": dialogue.category,
        "n_turns": len(dialogue.turns),
    }


def _chat(dialogue: DialogueRecord, upto: int | None = None) -> list[dict[str, str]]:
    turns = dialogue.turns if upto is None else dialogue.turns[: upto + 1]
    return [{"role": t.speaker, "content": t.text} for t in turns]


def dialogue_records(dialogue: DialogueRecord) -> list[AnnotationRecord]:
    """Build the dialogue-level record and one turn-level record per turn."""
    agent = dialogue.model or None
    score = _score(dialogue)
    suggestions = []
    if dialogue.judge is not None:
        suggestions.append(
            Suggestion(
                question="naturalness",
                value=dialogue.judge.naturalness,
                score=score,
                agent=agent,
            )
        )
    records = [
        AnnotationRecord(
            id=dialogue_record_id(dialogue.id),
            level=Level.DIALOGUES,
            dialogue_id=dialogue.id,
            fields={
                "dialogue": _chat(dialogue),
                "norm": dialogue.norm,
                "scenario": dialogue.scenario,
                "situation": dialogue.situation,
            },
            metadata=_metadata(dialogue),
            suggestions=suggestions,
        )
    ]
    for turn in dialogue.turns:
        labels = turn.labels
        values = {
            "norm_label": labels.norm_label.value,
            "intent": labels.intent.value,
            "emotion": labels.emotion.value,
            "rationale": labels.rationale,
        }
        if dialogue.type is DialogueType.V2R and labels.arc_stage is not None:
            values["arc_stage"] = labels.arc_stage.value
        records.append(
            AnnotationRecord(
                id=turn_record_id(dialogue.id, turn.index),
                level=Level.TURNS,
                dialogue_id=dialogue.id,
                turn_index=turn.index,
                fields={
                    "context": _chat(dialogue, upto=turn.index),
                    "turn": turn.text,
                    "norm": dialogue.norm,
                },
                metadata={**_metadata(dialogue), "turn_index": turn.index},
                suggestions=[
                    Suggestion(question=q, value=v, score=score, agent=agent)
                    for q, v in values.items()
                ],
            )
        )
    return records


def build_records(dialogues: list[DialogueRecord]) -> list[AnnotationRecord]:
    """Build every record of a run's dialogues, dialogue-level ones first."""
    records = [r for d in dialogues for r in dialogue_records(d)]
    return sorted(records, key=lambda r: r.level != Level.DIALOGUES)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one record."""

    record_id: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"record {self.record_id}: {self.field}: {self.message}"


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _check_chat(record_id: str, name: str, messages: Any) -> list[Problem]:
    where = f"field '{name}'"
    if not isinstance(messages, list) or not messages:
        return [Problem(record_id, where, "expected a non-empty list of messages")]
    problems = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            problems.append(
                Problem(
                    record_id,
                    f"{where} message {i}",
                    f"expected an object with exactly 'role' and 'content', got "
                    f"{message!r:.80}",
                )
            )
            continue
        for key in ("role", "content"):
            if not isinstance(message[key], str) or _empty(message[key]):
                problems.append(
                    Problem(record_id, f"{where} message {i} {key}", "empty or null")
                )
    return problems


def check_record(record: AnnotationRecord) -> list[Problem]:
    """Return everything that would make Argilla refuse the record, or mislead."""
    rid, problems = record.id, []
    for name, (kind, _title) in FIELDS[record.level].items():
        value = record.fields.get(name)
        if kind == "chat":
            problems += _check_chat(rid, name, value)
        elif _empty(value) or not isinstance(value, str):
            problems.append(Problem(rid, f"field '{name}'", "empty or null"))
    extra = set(record.fields) - set(FIELDS[record.level])
    if extra:
        problems.append(Problem(rid, "fields", f"unknown fields {sorted(extra)}"))

    for name in TERMS_METADATA + INTEGER_METADATA[record.level]:
        value = record.metadata.get(name)
        if _empty(value):
            problems.append(Problem(rid, f"metadata '{name}'", "empty or null"))
        elif name in INTEGER_METADATA[record.level] and type(value) is not int:
            problems.append(
                Problem(
                    rid, f"metadata '{name}'", f"expected an integer, got {value!r}"
                )
            )

    known = {q.name for q in QUESTIONS[record.level]}
    for s in record.suggestions:
        where = f"suggestion '{s.question}'"
        if s.question not in known:
            problems.append(
                Problem(rid, where, f"no such question; known: {sorted(known)}")
            )
            continue
        q = question(record.level, s.question)
        if not q.allows(s.value):
            expected = "non-empty text" if q.kind == "text" else list(q.labels)
            problems.append(
                Problem(rid, where, f"value {s.value!r} is not one of {expected}")
            )
        if s.score is not None and not 0.0 <= s.score <= 1.0:
            problems.append(Problem(rid, where, f"score {s.score} is not in [0, 1]"))
        if s.agent is not None and _empty(s.agent):
            problems.append(Problem(rid, where, "agent is an empty string"))
    return problems


def validate_records(records: list[AnnotationRecord]) -> None:
    """Check every record; raise one error listing every problem.

    Raises:
        AnnotationError: A record has an empty or null field, a malformed chat
            message, a suggestion outside its question's labels, a score outside
            [0, 1], or two records share an id.
    """
    problems: list[Problem] = []
    seen: set[str] = set()
    for record in records:
        if record.id in seen:
            problems.append(Problem(record.id, "id", "two records have this id"))
        seen.add(record.id)
        problems += check_record(record)
    if not problems:
        return
    shown = "\n".join(f"  - {p}" for p in problems[:MAX_SHOWN])
    more = len(problems) - MAX_SHOWN
    tail = f"\n  ... and {more} more" if more > 0 else ""
    raise AnnotationError(
        f"{len(problems)} problem(s) in the records for Argilla; nothing was "
        f"uploaded:\n{shown}{tail}\nFix the dialogues in dialogues.jsonl (or the "
        "stage that wrote them) and push again."
    )
