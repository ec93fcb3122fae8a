"""The two Argilla datasets of a run: what annotators see and what they are asked.

The dialogue-level dataset has one record per dialogue; the turn-level dataset one
record per turn. Questions are described here as plain data, so records can be
validated without a server, and turned into Argilla settings when a dataset is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import argilla as rg

from pipeline.schemas import ArcStage, Emotion, Intent, NormLabel

GUIDELINES = Path(__file__).resolve().parent / "guidelines"


class Level(StrEnum):
    """Which of a run's two datasets a record belongs to."""

    DIALOGUES = "dialogues"
    TURNS = "turns"


@dataclass(frozen=True)
class Question:
    """One question: a label choice, a 1-5 rating or free text."""

    name: str
    title: str
    kind: str  # "label", "rating" or "text"
    labels: tuple[str, ...] = ()
    required: bool = True

    def allows(self, value: object) -> bool:
        """Tell whether ``value`` is an answer this question accepts."""
        if self.kind == "text":
            return isinstance(value, str) and bool(value.strip())
        return value in self.labels


YES_NO = ("yes", "no")
RATING = (1, 2, 3, 4, 5)

TURN_QUESTIONS = (
    Question("norm_label", "Norm label", "label", tuple(v.value for v in NormLabel)),
    Question("intent", "Intent", "label", tuple(v.value for v in Intent)),
    Question("emotion", "Emotion", "label", tuple(v.value for v in Emotion)),
    Question(
        "arc_stage",
        "Arc stage (v2r only)",
        "label",
        tuple(v.value for v in ArcStage),
        required=False,
    ),
    Question("rationale", "Rationale (one sentence)", "text", required=False),
)

DIALOGUE_QUESTIONS = (
    Question("naturalness", "Naturalness (1-5)", "rating", RATING),
    Question(
        "cultural_appropriateness", "Cultural appropriateness (1-5)", "rating", RATING
    ),
    Question("norm_correct", "Is the norm depicted correctly?", "label", YES_NO),
    Question("arc_matches", "Does the arc match its type?", "label", YES_NO),
    Question("comment", "Comment", "text", required=False),
)

QUESTIONS = {Level.DIALOGUES: DIALOGUE_QUESTIONS, Level.TURNS: TURN_QUESTIONS}

# field name -> (kind, title); every field is required, so none may be empty.
FIELDS = {
    Level.DIALOGUES: {
        "dialogue": ("chat", "Dialogue"),
        "norm": ("text", "Norm"),
        "scenario": ("text", "Scenario"),
        "situation": ("text", "Situation"),
    },
    Level.TURNS: {
        "context": ("chat", "Context (the dialogue up to this turn)"),
        "turn": ("text", "Turn"),
        "norm": ("text", "Norm"),
    },
}

TERMS_METADATA = ("dialogue_id", "culture", "language", "type", "category")
INTEGER_METADATA = {
    Level.DIALOGUES: ("n_turns",),
    Level.TURNS: ("turn_index", "n_turns"),
}


def question(level: Level, name: str) -> Question:
    """Return the question called ``name`` of a dataset level."""
    return next(q for q in QUESTIONS[level] if q.name == name)


def dataset_name(prefix: str, run_id: str, level: Level) -> str:
    """Return the Argilla dataset name of one level of a run."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", run_id).strip("-") or "run"
    return f"{prefix}-{slug}-{level.value}"


def guidelines(level: Level) -> str:
    """Return the annotator guidelines of a level (Markdown)."""
    return (GUIDELINES / f"{level.value}.md").read_text("utf-8")


def _question(q: Question, client: rg.Argilla) -> rg.QuestionType:
    common = {
        "name": q.name,
        "title": q.title,
        "required": q.required,
        "client": client,
    }
    if q.kind == "rating":
        return rg.RatingQuestion(values=list(q.labels), **common)
    if q.kind == "label":
        return rg.LabelQuestion(labels=list(q.labels), **common)
    return rg.TextQuestion(**common)


def argilla_settings(
    level: Level, min_submitted: int, client: rg.Argilla
) -> rg.Settings:
    """Build the Argilla settings (fields, questions, metadata) of a level.

    The SDK ties every part of the settings to a client; ``client`` is that one.
    """
    fields = [
        rg.ChatField(name=name, title=title, required=True, _client=client)
        if kind == "chat"
        else rg.TextField(
            name=name, title=title, required=True, use_markdown=False, client=client
        )
        for name, (kind, title) in FIELDS[level].items()
    ]
    metadata = [
        rg.TermsMetadataProperty(name=n, client=client) for n in TERMS_METADATA
    ] + [
        rg.IntegerMetadataProperty(name=n, client=client)
        for n in INTEGER_METADATA[level]
    ]
    return rg.Settings(
        guidelines=guidelines(level),
        fields=fields,
        questions=[_question(q, client) for q in QUESTIONS[level]],
        metadata=metadata,
        distribution=rg.TaskDistribution(min_submitted=min_submitted),
        allow_extra_metadata=False,
    )
