"""Stage c: write the dialogue of one scenario, following its dialogue type."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, ConfigDict, Field, create_model

from pipeline.prompts import render
from pipeline.schemas import Scenario, SeedNorm, Turn
from pipeline.stages import StageContext

# The most turns any dialogue may have, whatever the settings say.
MAX_TURNS = 20


class _Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speaker: str = Field(min_length=1, max_length=40)
    text: str = Field(min_length=1, max_length=280)


class DialogueReply(BaseModel):
    """The shape the model must return for a dialogue."""

    model_config = ConfigDict(extra="forbid")

    turns: list[_Turn] = Field(min_length=2, max_length=MAX_TURNS)


@cache
def dialogue_reply(min_turns: int, max_turns: int) -> type[DialogueReply]:
    """Return the reply model bounded to the configured number of turns.

    A server that enforces the schema cannot stop early or run on; for one that
    does not, a reply out of range is a schema error and is asked for again.
    """
    bounds = Field(min_length=max(min_turns, 1), max_length=min(max_turns, MAX_TURNS))
    return create_model(
        "DialogueReply", __base__=DialogueReply, turns=(list[_Turn], bounds)
    )


def generate_dialogue(
    scenario: Scenario, situation: str, seed: SeedNorm, ctx: StageContext
) -> list[Turn]:
    """Write a dialogue between the scenario's participants.

    Adherence dialogues follow the norm throughout, violation dialogues break it
    without repair, and v2r dialogues go from violation to recognition, repair and
    resolution.
    """
    gen = ctx.settings.generation
    messages = render(
        "dialogue",
        seed=seed,
        type=scenario.type.value,
        scenario=scenario,
        situation=situation,
        min_turns=gen.min_turns,
        max_turns=gen.max_turns,
        culture=ctx.culture,
        language=ctx.language,
    )
    reply = ctx.llm.complete(
        messages,
        dialogue_reply(gen.min_turns, gen.max_turns),
        stage="dialogue",
        sample=scenario.sample,
        max_tokens=ctx.budget(55 * gen.max_turns + 20),
    )
    return [Turn(speaker=t.speaker, text=t.text) for t in reply.turns]
