"""Stage b: revise a situation toward expert exemplars until a judge is satisfied."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pipeline.exemplars import closest_exemplars
from pipeline.prompts import render
from pipeline.schemas import (
    Exemplar,
    JudgeScores,
    Refinement,
    RefinementRound,
    Scenario,
    SeedNorm,
)
from pipeline.stages import StageContext


class SituationScoreReply(JudgeScores):
    """The judge's scores of a situation, with feedback for the next revision."""

    feedback: str = Field(default="", max_length=300)


class RevisionReply(BaseModel):
    """A revised situation."""

    model_config = ConfigDict(extra="forbid")

    situation: str = Field(min_length=20, max_length=900)


def _score(
    scenario: Scenario, seed: SeedNorm, situation: str, ctx: StageContext, n: int
) -> SituationScoreReply:
    messages = render(
        "refine_judge",
        seed=seed,
        type=scenario.type.value,
        scenario=scenario,
        original=scenario.situation,
        situation=situation,
        culture=ctx.culture,
        language=ctx.language,
    )
    return ctx.llm.complete(
        messages,
        SituationScoreReply,
        stage="refine_judge",
        sample=scenario.sample * 10 + n,
        max_tokens=200,
    )


def refine_scenario(
    scenario: Scenario, seed: SeedNorm, pool: list[Exemplar], ctx: StageContext
) -> Refinement:
    """Score a situation and revise it toward the closest exemplars.

    The unrevised situation is scored as round 0. It is then revised at least
    once, and again while a score is below ``generation.refine_threshold``, for at
    most ``generation.refine_rounds`` revisions. Every round is kept.
    """
    gen = ctx.settings.generation
    exemplars = closest_exemplars(pool, seed, scenario.type, gen.exemplars)
    exemplar_ids = [e.id for e in exemplars]

    situation = scenario.situation
    scores = _score(scenario, seed, situation, ctx, 0)
    rounds = [RefinementRound(round=0, situation=situation, scores=_plain(scores))]

    # Round 0 only measures the unrevised situation; at least one revision toward
    # the exemplars follows, then more while a score stays below the threshold.
    for n in range(1, gen.refine_rounds + 1):
        if n > 1 and scores.minimum() >= gen.refine_threshold:
            break
        messages = render(
            "refine_revise",
            seed=seed,
            type=scenario.type.value,
            scenario=scenario,
            situation=situation,
            feedback=scores.feedback,
            exemplars=exemplars,
            culture=ctx.culture,
            language=ctx.language,
        )
        revision = ctx.llm.complete(
            messages,
            RevisionReply,
            stage="refine_revise",
            sample=scenario.sample * 10 + n,
            max_tokens=ctx.budget(400),
        )
        situation = revision.situation
        scores = _score(scenario, seed, situation, ctx, n)
        rounds.append(
            RefinementRound(
                round=n,
                situation=situation,
                scores=_plain(scores),
                exemplar_ids=exemplar_ids,
            )
        )

    return Refinement(
        item_id=scenario.item_id,
        rounds=rounds,
        final_situation=situation,
        converged=scores.minimum() >= gen.refine_threshold,
    )


def _plain(scores: SituationScoreReply) -> JudgeScores:
    return JudgeScores(
        task_relevance=scores.task_relevance,
        linguistic_quality=scores.linguistic_quality,
        semantic_preservation=scores.semantic_preservation,
    )
