"""Stage a: write a scenario and situation for one norm, type and sample."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pipeline.prompts import render
from pipeline.schemas import Participant, Scenario, WorkItem
from pipeline.stages import StageContext


class _Person(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40)
    role: str = Field(min_length=1, max_length=60)


class ScenarioReply(BaseModel):
    """The shape the model must return for a scenario."""

    model_config = ConfigDict(extra="forbid")

    scenario: str = Field(min_length=5, max_length=240)
    situation: str = Field(min_length=20, max_length=900)
    participants: list[_Person] = Field(min_length=2, max_length=3)
    relation: str = Field(min_length=1, max_length=120)
    setting: str = Field(min_length=1, max_length=160)


def generate_scenario(item: WorkItem, ctx: StageContext) -> Scenario:
    """Write a one-line scenario and a 3-5 sentence situation for ``item``."""
    messages = render(
        "scenario",
        seed=item.seed,
        type=item.type.value,
        sample=item.sample,
        culture=ctx.culture,
        language=ctx.language,
    )
    return ask_scenario(messages, item, ctx, "scenario")


def ask_scenario(
    messages: list[dict], item: WorkItem, ctx: StageContext, stage: str
) -> Scenario:
    """Ask for a scenario with rendered ``messages``; return it as ``item``'s record."""
    reply = ctx.llm.complete(
        messages,
        ScenarioReply,
        stage=stage,
        sample=item.sample,
        max_tokens=ctx.budget(450),
    )
    return Scenario(
        item_id=item.id,
        seed_id=item.seed.id,
        type=item.type,
        sample=item.sample,
        scenario=reply.scenario,
        situation=reply.situation,
        participants=[
            Participant(name=p.name, role=p.role) for p in reply.participants
        ],
        relation=reply.relation,
        setting=reply.setting,
        pair_id=item.pair_id,
    )
