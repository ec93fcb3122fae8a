"""Work items: which dialogues a run makes, and the record each one ends as."""

from __future__ import annotations

from pipeline.checks import failed_reasons
from pipeline.errors import LLMError, NormloomError
from pipeline.schemas import (
    CheckResult,
    DialogueRecord,
    DialogueScores,
    DialogueType,
    LabelledTurn,
    Scenario,
    SeedNorm,
    Verdict,
    WorkItem,
)


def plan_items(
    seeds: list[SeedNorm], types: list[DialogueType], per_norm: int
) -> list[WorkItem]:
    """Return one work item per seed, dialogue type and sample index."""
    return [
        WorkItem(seed=seed, type=t, sample=i)
        for seed in seeds
        for t in types
        for i in range(per_norm)
    ]


def finished_record(
    item: WorkItem,
    scenario: Scenario,
    situation: str,
    turns: list[LabelledTurn],
    checks: list[CheckResult],
    judge: DialogueScores | None,
    model: str,
) -> DialogueRecord:
    """Build the record of a dialogue that went through every check."""
    reasons = failed_reasons(checks)
    return DialogueRecord(
        **_identity(item),
        scenario=scenario.scenario,
        situation=situation,
        participants=scenario.participants,
        turns=turns,
        checks=checks,
        judge=judge,
        verdict=Verdict.REJECTED if reasons else Verdict.ACCEPTED,
        reasons=reasons,
        model=model,
    )


def failed_record(
    item: WorkItem,
    error: NormloomError,
    stage: str,
    model: str,
    scenario: Scenario | None = None,
) -> DialogueRecord:
    """Build the record of an item that could not be finished, with the reason."""
    kind = error.kind if isinstance(error, LLMError) else type(error).__name__
    return DialogueRecord(
        **_identity(item),
        scenario=scenario.scenario if scenario else "",
        situation=scenario.situation if scenario else "",
        participants=scenario.participants if scenario else [],
        verdict=Verdict.FAILED,
        reasons=[f"{stage}: {kind}: {error}"],
        model=model,
    )


def _identity(item: WorkItem) -> dict:
    return {
        "id": item.id,
        "seed_id": item.seed.id,
        "culture": item.seed.culture,
        "language": item.seed.language,
        "category": item.seed.category,
        "type": item.type,
        "sample": item.sample,
        "norm": item.seed.norm,
        "pair_id": item.pair_id,
    }


# Failures that say nothing about the item itself: the endpoint was down, slow or
# out of quota. A re-run tries such items again; every other outcome stands.
RETRYABLE_KINDS = ("transport", "quota")


def should_retry(row: dict) -> bool:
    """Tell whether a finished row failed only because the endpoint did."""
    if row.get("verdict") != "failed":
        return False
    return any(
        f": {kind}: " in r for r in row.get("reasons", []) for kind in RETRYABLE_KINDS
    )
