"""Norm-bank growth: from a few seed norms per culture and category, many sub-norms.

For each (culture, language, category) the model writes sub-norms, one per
specification of tone, honorifics and relational distance. Candidates that repeat
a seed or an earlier candidate (MinHash, as for dialogues) are dropped, a judge
keeps only plausible, specific ones, and the round repeats while fewer than ``k``
remain. The result is a seed list meant for a person to review before use.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from functools import cache

from pydantic import BaseModel, ConfigDict, Field, create_model

from pipeline.checks import DuplicateIndex
from pipeline.cultures import Registry
from pipeline.llm import LLMClient
from pipeline.prompts import render
from pipeline.schemas import SeedNorm, stable_id
from pipeline.settings import CheckSettings, Settings
from pipeline.stages import StageContext

logger = logging.getLogger(__name__)


class Spec(BaseModel):
    """The parameters one sub-norm is written for."""

    tone: str
    honorifics: str
    distance: str


class _SubNorm(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    norm: str = Field(min_length=5, max_length=400)
    setting: str = Field(min_length=1, max_length=120)


class GrowReply(BaseModel):
    """The shape the model must return for sub-norms."""

    model_config = ConfigDict(extra="forbid")

    norms: list[_SubNorm] = Field(min_length=1)


class _Verdict(BaseModel):
    model_config = ConfigDict(extra="forbid")

    index: int = Field(ge=0)
    valid: bool
    reason: str = Field(min_length=1, max_length=160)


class GrowJudgeReply(BaseModel):
    """The shape the model must return as the judge of sub-norms."""

    model_config = ConfigDict(extra="forbid")

    verdicts: list[_Verdict] = Field(min_length=1)


@cache
def _exactly(base: type[BaseModel], name: str, item: type, n: int) -> type[BaseModel]:
    """Return ``base`` with its list field ``name`` holding exactly ``n`` items."""
    exact = Field(min_length=n, max_length=n)
    return create_model(base.__name__, __base__=base, **{name: (list[item], exact)})


@dataclass
class Candidate:
    """A sub-norm the model wrote, with the specification it was written for."""

    norm: str
    setting: str
    tone: str
    honorifics: str
    distance: str


@dataclass
class Growth:
    """The grown seeds, and each candidate left out with the reason."""

    seeds: list[SeedNorm] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)


def specs_for(settings: Settings, start: int, n: int) -> list[Spec]:
    """Return ``n`` specifications, cycling through the grid from ``start``."""
    g = settings.growth
    grid = list(itertools.product(g.tones, g.honorifics, g.distances))
    return [
        Spec(tone=t, honorifics=h, distance=d)
        for t, h, d in (grid[(start + i) % len(grid)] for i in range(n))
    ]


def grow_norms(
    seeds: list[SeedNorm],
    llm: LLMClient,
    settings: Settings,
    registry: Registry,
    k: int | None = None,
) -> Growth:
    """Grow ``k`` sub-norms for every culture, language and category in ``seeds``.

    Args:
        seeds: The hand-written seeds; each group's seeds are shown to the model.
        llm: The model that writes and judges.
        settings: ``growth`` holds k, the parameter lists, rounds and threshold.
        registry: Cultures and languages of the seeds.
        k: Sub-norms per group; None: ``growth.k``.

    Returns:
        The grown seeds (at most ``k`` per group) and the rejected candidates.
    """
    k = k or settings.growth.k
    growth = Growth()
    groups: dict[tuple[str, str, str], list[SeedNorm]] = {}
    for seed in seeds:
        groups.setdefault((seed.culture, seed.language, seed.category), []).append(seed)
    for (culture, language, _), group in groups.items():
        ctx = StageContext(
            llm, settings, registry.culture(culture), registry.language(language)
        )
        kept, rejected = grow_group(group, ctx, k)
        growth.seeds.extend(kept)
        growth.rejected.extend(rejected)
    logger.info(
        "Grew %d sub-norm(s) from %d seed(s) in %d group(s); %d candidate(s) left out.",
        len(growth.seeds),
        len(seeds),
        len(groups),
        len(growth.rejected),
    )
    return growth


def grow_group(
    seeds: list[SeedNorm], ctx: StageContext, k: int
) -> tuple[list[SeedNorm], list[tuple[str, str]]]:
    """Grow up to ``k`` sub-norms for one culture and category.

    Returns:
        The accepted sub-norms as seeds, and (norm, reason) of each left out.
    """
    growth = ctx.settings.growth
    index = DuplicateIndex(
        CheckSettings(duplicate_threshold=growth.duplicate_threshold)
    )
    for seed in seeds:
        index.add(f"seed:{seed.id}", seed.norm)
    first = seeds[0]
    kept: list[SeedNorm] = []
    rejected: list[tuple[str, str]] = []

    for round_ in range(growth.rounds):
        if len(kept) >= k:
            break
        specs = specs_for(ctx.settings, len(kept) + round_ * k, k - len(kept))
        fresh = []
        for i, candidate in enumerate(_write(seeds, specs, ctx, round_)):
            # The key must be new: the index never counts a text under its own key.
            check = index.check(f"round {round_} norm {i}", candidate.norm)
            if check.passed:
                fresh.append(candidate)
            else:
                rejected.append((candidate.norm, check.detail))
        for candidate, verdict in zip(
            fresh, _judge(seeds, fresh, ctx, round_), strict=True
        ):
            if not verdict.valid:
                rejected.append((candidate.norm, f"judge: {verdict.reason}"))
                continue
            digest = stable_id(candidate.norm, length=8)
            kept.append(
                SeedNorm(
                    id=f"{first.culture}-{first.category}-grown-{digest}",
                    culture=first.culture,
                    language=first.language,
                    category=first.category,
                    norm=candidate.norm,
                    setting=candidate.setting,
                    notes=(
                        f"tone: {candidate.tone}; honorifics: {candidate.honorifics}; "
                        f"relational distance: {candidate.distance}"
                    ),
                    origin="grown from " + ", ".join(s.id for s in seeds),
                )
            )
    return kept[:k], rejected


def _write(
    seeds: list[SeedNorm], specs: list[Spec], ctx: StageContext, round_: int
) -> list[Candidate]:
    """Ask for one sub-norm per specification."""
    messages = render(
        "grow_norms",
        seeds=seeds,
        category=seeds[0].category,
        specs=specs,
        culture=ctx.culture,
        language=ctx.language,
    )
    reply = ctx.llm.complete(
        messages,
        _exactly(GrowReply, "norms", _SubNorm, len(specs)),
        stage="grow_norms",
        sample=round_,
        max_tokens=ctx.budget(90 * len(specs) + 40),
    )
    return [
        Candidate(norm=n.norm, setting=n.setting, **spec.model_dump())
        for n, spec in zip(reply.norms, specs, strict=True)
    ]


def _judge(
    seeds: list[SeedNorm], candidates: list[Candidate], ctx: StageContext, round_: int
) -> list[_Verdict]:
    """Have the judge keep or reject each candidate."""
    if not candidates:
        return []
    messages = render(
        "grow_judge",
        seeds=seeds,
        category=seeds[0].category,
        candidates=candidates,
        culture=ctx.culture,
        language=ctx.language,
    )
    reply = ctx.llm.complete(
        messages,
        _exactly(GrowJudgeReply, "verdicts", _Verdict, len(candidates)),
        stage="grow_judge",
        sample=round_,
        max_tokens=45 * len(candidates) + 40,
    )
    return reply.verdicts
