"""Stage d: label every turn with norm adherence, intent, emotion and arc stage."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, ConfigDict, Field, create_model

from pipeline.prompts import render
from pipeline.schemas import (
    ArcStage,
    DialogueType,
    Emotion,
    Intent,
    LabelledTurn,
    NormLabel,
    Scenario,
    SeedNorm,
    Turn,
    TurnLabel,
)
from pipeline.stages import StageContext
from pipeline.stages.dialogues import MAX_TURNS


class _Label(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0, le=MAX_TURNS)
    norm_label: NormLabel
    intent: Intent
    emotion: Emotion
    arc_stage: ArcStage | None
    rationale: str = Field(min_length=1, max_length=140)


class LabelsReply(BaseModel):
    """The shape the model must return for turn labels."""

    model_config = ConfigDict(extra="forbid")

    labels: list[_Label] = Field(min_length=1, max_length=MAX_TURNS)


@cache
def labels_reply(turns: int) -> type[LabelsReply]:
    """Return the reply model that holds exactly one label per turn."""
    exact = Field(min_length=turns, max_length=turns)
    return create_model(
        "LabelsReply", __base__=LabelsReply, labels=(list[_Label], exact)
    )


def label_turns(
    turns: list[Turn], scenario: Scenario, seed: SeedNorm, ctx: StageContext
) -> list[LabelledTurn]:
    """Label each turn of a dialogue.

    Raises:
        LLMSchemaError: The labeller did not return exactly one label per turn,
            even after the allowed retries.
    """
    messages = render(
        "labels",
        seed=seed,
        type=scenario.type.value,
        turns=turns,
        culture=ctx.culture,
        language=ctx.language,
    )
    reply = ctx.llm.complete(
        messages,
        labels_reply(len(turns)),
        stage="labels",
        sample=scenario.sample,
        max_tokens=70 * len(turns) + 40,
    )
    v2r = scenario.type is DialogueType.V2R
    return [
        LabelledTurn(
            index=i,
            speaker=turn.speaker,
            text=turn.text,
            labels=TurnLabel(
                norm_label=label.norm_label,
                intent=label.intent,
                emotion=label.emotion,
                arc_stage=label.arc_stage if v2r else None,
                rationale=label.rationale,
            ),
        )
        for i, (turn, label) in enumerate(zip(turns, reply.labels, strict=True))
    ]
