"""Records passed between the stages, as pydantic models.

Each stage takes some of these and returns others; template variables are the
field names used here.
"""

from __future__ import annotations

import hashlib
import unicodedata
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator


def nfc(text: str) -> str:
    """Return ``text`` in Unicode normal form C with outer whitespace removed."""
    return unicodedata.normalize("NFC", text).strip()


def stable_id(*parts: object, length: int = 16) -> str:
    """Return a short hex id that depends only on ``parts``."""
    joined = "\x1f".join(nfc(str(p)) for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:length]


class DialogueType(StrEnum):
    """How a dialogue relates to its norm."""

    ADHERENCE = "adherence"
    VIOLATION = "violation"
    V2R = "v2r"


class NormLabel(StrEnum):
    """Whether one turn follows the norm."""

    ADHERED = "adhered"
    VIOLATED = "violated"
    NOT_RELEVANT = "not_relevant"


class Intent(StrEnum):
    """What the speaker does with a turn."""

    ACK = "ACK"  # acknowledges
    AGR = "AGR"  # agrees
    DIS = "DIS"  # disagrees
    APO = "APO"  # apologises
    THX = "THX"  # thanks
    EMP = "EMP"  # shows empathy
    JUS = "JUS"  # justifies or explains
    SUG = "SUG"  # suggests
    QUE = "QUE"  # asks
    CRT = "CRT"  # criticises
    NONE = "none"


class Emotion(StrEnum):
    """The speaker's main emotion in a turn (Ekman's six plus neutral and gratitude)."""

    NEUTRAL = "neutral"
    JOY = "joy"
    GRATITUDE = "gratitude"
    SADNESS = "sadness"
    ANGER = "anger"
    FEAR = "fear"
    SURPRISE = "surprise"
    DISGUST = "disgust"


class ArcStage(StrEnum):
    """Where a turn sits in a violation-to-resolution arc."""

    SETUP = "setup"
    VIOLATION = "violation"
    RECOGNITION = "recognition"
    REPAIR = "repair"
    RESOLUTION = "resolution"


class Verdict(StrEnum):
    """The final state of one work item."""

    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FAILED = "failed"


Text = Annotated[str, Field(min_length=1)]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SeedNorm(_Record):
    """One seed norm, the input of the whole pipeline."""

    id: Text
    culture: Text
    language: Text
    category: Text
    norm: Text = Field(max_length=2000)
    setting: str | None = Field(default=None, max_length=2000)
    roles: list[str] = Field(default_factory=list)
    notes: str | None = None
    source: str | None = Field(
        default=None, description="File and line the seed was read from."
    )
    source_id: str | None = Field(
        default=None, description="The record's id in the norm bank it came from."
    )
    origin: str | None = Field(
        default=None,
        description="File and line in the norm bank it was imported from; kept on reload.",
    )
    source_label: NormLabel | None = Field(
        default=None,
        description=(
            "The bank's judgement of the behaviour in our labels: expected/yes "
            "adhered, taboo/no violated, normal/neutral not_relevant."
        ),
    )
    pair: str | None = Field(
        default=None,
        description="Comparable mode: seeds of different cultures with one pair key are matched.",
    )

    @field_validator(
        "id", "culture", "language", "category", "norm", "setting", "notes"
    )
    @classmethod
    def _nfc(cls, value: str | None) -> str | None:
        return nfc(value) if value is not None else None

    @field_validator("roles")
    @classmethod
    def _nfc_roles(cls, value: list[str]) -> list[str]:
        return [nfc(r) for r in value if nfc(r)]


class WorkItem(_Record):
    """One dialogue to produce: a norm, a type and a sample index."""

    seed: SeedNorm
    type: DialogueType
    sample: int = Field(ge=0, description="Index of this sample for the norm and type.")
    pair_id: str | None = Field(
        default=None, description="Comparable mode: shared by the matched items."
    )

    @property
    def id(self) -> str:
        """Stable id of the item: the same norm, type and sample give the same id."""
        return stable_id(self.seed.id, self.type.value, self.sample)


class Participant(_Record):
    """A named person in a scenario."""

    name: Text
    role: Text


class Scenario(_Record):
    """A one-line scenario and a short situation for one work item."""

    item_id: Text
    seed_id: Text
    type: DialogueType
    sample: int
    scenario: Text
    situation: Text
    participants: list[Participant] = Field(min_length=2)
    relation: Text
    setting: Text
    pair_id: str | None = Field(
        default=None, description="Comparable mode: shared by the matched scenarios."
    )


class JudgeScores(_Record):
    """Scores a judge gives a situation during refinement, each from 1 to 5."""

    task_relevance: int = Field(ge=1, le=5)
    linguistic_quality: int = Field(ge=1, le=5)
    semantic_preservation: int = Field(ge=1, le=5)

    def minimum(self) -> int:
        """Return the lowest of the three scores."""
        return min(
            self.task_relevance, self.linguistic_quality, self.semantic_preservation
        )


class RefinementRound(_Record):
    """One round of refinement: the situation as it stood and how it was scored."""

    round: int = Field(ge=0, description="0 is the situation before any revision.")
    situation: Text
    scores: JudgeScores
    exemplar_ids: list[str] = Field(default_factory=list)


class Refinement(_Record):
    """Every round of refinement of one scenario, and the situation it ended with."""

    item_id: Text
    rounds: list[RefinementRound] = Field(min_length=1)
    final_situation: Text
    converged: bool


class Exemplar(_Record):
    """An expert-written situation used to steer refinement."""

    id: Text
    culture: Text
    language: Text
    category: Text
    type: DialogueType
    norm: Text
    scenario: Text
    situation: Text


class Turn(_Record):
    """One turn of a dialogue as generated."""

    speaker: Text
    text: Text


class TurnLabel(_Record):
    """The labels of one turn."""

    norm_label: NormLabel
    intent: Intent
    emotion: Emotion
    arc_stage: ArcStage | None = Field(
        default=None, description="Set for v2r dialogues only."
    )
    rationale: Text


class LabelledTurn(Turn):
    """A turn together with its labels."""

    index: int = Field(ge=0)
    labels: TurnLabel


class DialogueScores(_Record):
    """The LLM judge's scores of a finished dialogue, each from 1 to 5."""

    consistency: int = Field(ge=1, le=5)
    naturalness: int = Field(ge=1, le=5)
    relevance: int = Field(ge=1, le=5)
    coherence: int = Field(ge=1, le=5, description="Scenario-dialogue coherence.")
    emotion_appropriateness: int = Field(ge=1, le=5)
    norm_scale: int = Field(
        ge=1,
        le=5,
        description=(
            "1 fully violated, 2 partly violated, 3 violated then resolved, "
            "4 partly adhered, 5 fully adhered."
        ),
    )
    rationale: str = ""


class CheckResult(_Record):
    """The outcome of one rule or judge check."""

    name: Text
    passed: bool
    detail: str = ""


class DialogueRecord(_Record):
    """A finished work item: the dialogue, its labels, checks and verdict."""

    id: Text
    seed_id: Text
    culture: Text
    language: Text
    category: Text
    type: DialogueType
    sample: int
    norm: Text
    scenario: str = ""
    situation: str = ""
    participants: list[Participant] = Field(default_factory=list)
    turns: list[LabelledTurn] = Field(default_factory=list)
    checks: list[CheckResult] = Field(default_factory=list)
    judge: DialogueScores | None = None
    verdict: Verdict
    reasons: list[str] = Field(default_factory=list)
    model: str = ""
    pair_id: str | None = Field(
        default=None,
        description="Comparable mode: the same id on the matched dialogues of each culture.",
    )
