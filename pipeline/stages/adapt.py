"""Stage a' (comparable mode): carry one culture's scenario over to another culture."""

from __future__ import annotations

from pipeline.prompts import render
from pipeline.schemas import Scenario, SeedNorm, WorkItem
from pipeline.stages import StageContext
from pipeline.stages.scenarios import ask_scenario


def adapt_scenario(
    lead: Scenario, lead_seed: SeedNorm, item: WorkItem, ctx: StageContext
) -> Scenario:
    """Rewrite the lead scenario of a pair for ``item``'s culture and language.

    The events, relation and stakes stay those of ``lead``; names, places and
    customs become the target culture's, so the dialogues of a pair can be compared.
    """
    messages = render(
        "adapt_scenario",
        lead=lead,
        lead_seed=lead_seed,
        seed=item.seed,
        type=item.type.value,
        culture=ctx.culture,
        language=ctx.language,
    )
    return ask_scenario(messages, item, ctx, "adapt_scenario")
