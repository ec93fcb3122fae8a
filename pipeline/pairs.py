"""Comparable mode: which seeds of different cultures are rendered as one scenario.

Seeds that share a ``pair`` key are matched; the others are matched by category,
the first seed of each culture in a category with the first of every other
culture, the second with the second, and so on. A group holds one seed per
culture; a seed left without a partner is generated on its own.
"""

from __future__ import annotations

from itertools import zip_longest

from pipeline.items import plan_items
from pipeline.schemas import DialogueType, SeedNorm, WorkItem, stable_id

# The culture whose seed leads a group when it has one: its scenario is written
# first, in English, and adapted to the others.
LEAD_CULTURE = "us"


def comparable_groups(
    seeds: list[SeedNorm],
) -> tuple[list[list[SeedNorm]], list[SeedNorm]]:
    """Split seeds into matched groups (two cultures or more) and the unmatched.

    Returns:
        Groups, each led by its ``us`` seed if any, else by the seed that comes
        first in the file; and the seeds that have no partner.
    """
    position = {s.id: i for i, s in enumerate(seeds)}
    keyed: dict[str, dict[str, list[SeedNorm]]] = {}
    for seed in seeds:
        key = f"pair:{seed.pair}" if seed.pair else f"category:{seed.category}"
        keyed.setdefault(key, {}).setdefault(seed.culture, []).append(seed)

    groups: list[list[SeedNorm]] = []
    single: list[SeedNorm] = []
    for by_culture in keyed.values():
        for row in zip_longest(*by_culture.values()):
            group = [s for s in row if s is not None]
            if len(group) < 2:
                single.extend(group)
                continue
            group.sort(key=lambda s: (s.culture != LEAD_CULTURE, position[s.id]))
            groups.append(group)
    return groups, single


def plan_pairs(
    seeds: list[SeedNorm], types: list[DialogueType], per_norm: int
) -> tuple[list[list[WorkItem]], list[WorkItem]]:
    """Return the matched items (one list per scenario) and the unmatched items.

    Every item of a matched list carries the same ``pair_id``; its first item leads.
    """
    groups, single = comparable_groups(seeds)
    pairs = []
    for group in groups:
        for kind in types:
            for sample in range(per_norm):
                pair_id = stable_id("pair", *(s.id for s in group), kind.value, sample)
                pairs.append(
                    [
                        WorkItem(seed=s, type=kind, sample=sample, pair_id=pair_id)
                        for s in group
                    ]
                )
    return pairs, plan_items(single, types, per_norm)
