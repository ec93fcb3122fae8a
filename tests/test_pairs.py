"""Which seeds comparable mode renders as one scenario."""

from __future__ import annotations

from pipeline.pairs import comparable_groups, plan_pairs
from pipeline.schemas import DialogueType, SeedNorm


def _seed(id_: str, culture: str, category: str, pair: str | None = None) -> SeedNorm:
    language = {"us": "en", "cn": "zh", "kr": "ko"}[culture]
    return SeedNorm(
        id=id_,
        culture=culture,
        language=language,
        category=category,
        norm="n",
        pair=pair,
    )


SEEDS = [
    _seed("kr-req-1", "kr", "request"),
    _seed("cn-req-1", "cn", "request"),
    _seed("us-req-1", "us", "request"),
    _seed("kr-req-2", "kr", "request"),
    _seed("us-thx", "us", "thanks", pair="gift"),
    _seed("cn-gift", "cn", "apology", pair="gift"),
    _seed("kr-greet", "kr", "greeting"),
]


def test_groups_by_pair_key_then_by_category_with_the_us_seed_first() -> None:
    groups, single = comparable_groups(SEEDS)

    assert [[s.id for s in g] for g in groups] == [
        ["us-req-1", "kr-req-1", "cn-req-1"],
        ["us-thx", "cn-gift"],
    ]
    assert [s.id for s in single] == ["kr-req-2", "kr-greet"]


def test_matched_items_share_one_pair_id_per_type_and_sample() -> None:
    pairs, single = plan_pairs(SEEDS, [DialogueType.ADHERENCE, DialogueType.V2R], 2)

    assert len(pairs) == 2 * 2 * 2 and len(single) == 2 * 2 * 2
    assert all(len({i.pair_id for i in p}) == 1 for p in pairs)
    assert len({p[0].pair_id for p in pairs}) == 8
    assert all(i.pair_id is None for i in single)
    assert {(i.type, i.sample) for i in pairs[0]} == {(DialogueType.ADHERENCE, 0)}
