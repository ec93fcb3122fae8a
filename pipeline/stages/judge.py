"""Stage e (second half): the LLM judge of a finished dialogue."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from pipeline.prompts import render
from pipeline.schemas import (
    CheckResult,
    DialogueScores,
    DialogueType,
    LabelledTurn,
    Scenario,
    SeedNorm,
)
from pipeline.settings import CheckSettings
from pipeline.stages import StageContext

# Which points of the norm scale fit each dialogue type.
NORM_SCALE_FOR_TYPE = {
    DialogueType.ADHERENCE: {4, 5},
    DialogueType.VIOLATION: {1, 2},
    DialogueType.V2R: {3},
}

QUALITY_AXES = (
    "consistency",
    "naturalness",
    "relevance",
    "coherence",
    "emotion_appropriateness",
)


class JudgeReply(DialogueScores):
    """The shape the model must return as the judge."""

    model_config = ConfigDict(extra="forbid")

    rationale: str = Field(default="", max_length=300)


def judge_dialogue(
    turns: list[LabelledTurn],
    scenario: Scenario,
    situation: str,
    seed: SeedNorm,
    ctx: StageContext,
) -> DialogueScores:
    """Score a dialogue on five quality axes and place it on the norm scale."""
    messages = render(
        "judge",
        seed=seed,
        type=scenario.type.value,
        scenario=scenario.scenario,
        situation=situation,
        turns=turns,
        culture=ctx.culture,
        language=ctx.language,
    )
    reply = ctx.llm.complete(
        messages,
        JudgeReply,
        stage="judge",
        sample=scenario.sample,
        max_tokens=250,
    )
    return DialogueScores.model_validate(reply.model_dump())


def judge_checks(
    scores: DialogueScores, dialogue_type: DialogueType, checks: CheckSettings
) -> list[CheckResult]:
    """Turn judge scores into pass/fail checks against the configured thresholds."""
    low = {
        axis: getattr(scores, axis)
        for axis in QUALITY_AXES
        if getattr(scores, axis) < checks.min_judge_score
    }
    fits = NORM_SCALE_FOR_TYPE[dialogue_type]
    return [
        CheckResult(
            name="judge_quality",
            passed=not low,
            detail=(
                f"below {checks.min_judge_score}: "
                + ", ".join(f"{k}={v}" for k, v in low.items())
                if low
                else ""
            ),
        ),
        CheckResult(
            name="judge_norm_scale",
            passed=scores.norm_scale in fits,
            detail=(
                ""
                if scores.norm_scale in fits
                else f"norm_scale {scores.norm_scale} does not fit type "
                f"'{dialogue_type.value}' (expected one of {sorted(fits)})"
            ),
        ),
    ]
