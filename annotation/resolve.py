"""One answer per turn and per dialogue from several annotators' answers.

Labels are resolved by majority; when two or more labels share the top count the row
is flagged ``tie`` for review, and the label that comes first in the question's own
order is kept so the file stays complete. Ratings are resolved by their median.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from typing import Any

from annotation.datasets import Level, question
from pipeline.schemas import DialogueRecord, Exemplar

TURN_LABELS = ("norm_label", "intent", "emotion", "arc_stage")
MIN_EXEMPLAR_RATING = 4


def majority(values: list[Any], order: tuple[Any, ...]) -> tuple[Any, bool]:
    """Return the most frequent value and whether another value shares its count.

    ``None`` answers are left out; with no answer at all the result is (None, False).
    """
    counts = Counter(v for v in values if v is not None)
    if not counts:
        return None, False
    top = max(counts.values())
    tied = [v for v, n in counts.items() if n == top]
    rank = {label: i for i, label in enumerate(order)}
    tied.sort(key=lambda v: (rank.get(v, len(rank)), str(v)))
    return tied[0], len(tied) > 1


def _group(rows: list[dict], *keys: str) -> dict[tuple, list[dict]]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in keys)].append(row)
    return dict(sorted(groups.items(), key=lambda kv: tuple(str(k) for k in kv[0])))


def resolve_turns(rows: list[dict]) -> list[dict]:
    """Resolve the turn-level rows (one per record x annotator) to one row per turn."""
    resolved = []
    for (dialogue_id, turn_index), group in _group(
        rows, "dialogue_id", "turn_index"
    ).items():
        out: dict[str, Any] = {"dialogue_id": dialogue_id, "turn_index": turn_index}
        tie = False
        for name in TURN_LABELS:
            labels = question(Level.TURNS, name).labels
            out[name], tied = majority([r.get(name) for r in group], labels)
            tie = tie or tied
        # The rationale of an annotator who chose the resolved norm label, if any.
        rationales = [
            r["rationale"]
            for r in sorted(
                group, key=lambda r: r.get("norm_label") != out["norm_label"]
            )
            if isinstance(r.get("rationale"), str) and r["rationale"].strip()
        ]
        out["rationale"] = rationales[0] if rationales else None
        out.update(n_annotators=len(group), tie=tie, source="human")
        resolved.append(out)
    return resolved


def _median(values: list[Any]) -> float | None:
    numbers = [v for v in values if isinstance(v, int | float)]
    return float(statistics.median(numbers)) if numbers else None


def resolve_dialogues(rows: list[dict]) -> list[dict]:
    """Resolve the dialogue-level rows to one row per dialogue.

    Ratings take the median; yes/no questions the majority, ``None`` on a tie.
    """
    resolved = []
    for (dialogue_id,), group in _group(rows, "dialogue_id").items():
        out: dict[str, Any] = {"dialogue_id": dialogue_id}
        for name in ("naturalness", "cultural_appropriateness"):
            out[name] = _median([r.get(name) for r in group])
        for name in ("norm_correct", "arc_matches"):
            value, tied = majority([r.get(name) for r in group], ("yes", "no"))
            out[name] = None if tied else value
        out["n_annotators"] = len(group)
        resolved.append(out)
    return resolved


def approved(row: dict) -> bool:
    """Tell whether annotators judged a dialogue good enough to steer the next run."""
    return (
        row.get("norm_correct") == "yes"
        and row.get("arc_matches") == "yes"
        and (row.get("naturalness") or 0) >= MIN_EXEMPLAR_RATING
        and (row.get("cultural_appropriateness") or 0) >= MIN_EXEMPLAR_RATING
    )


def exemplars_from(
    dialogue_rows: list[dict], dialogues: dict[str, DialogueRecord]
) -> list[Exemplar]:
    """Turn the dialogues annotators approved into exemplars for the next run.

    An approved dialogue is one judged to depict its norm correctly, with the arc of
    its type, and rated at least 4 for naturalness and cultural appropriateness.
    """
    pool = []
    for row in dialogue_rows:
        dialogue = dialogues.get(row["dialogue_id"])
        if dialogue is None or not approved(row):
            continue
        if not dialogue.scenario.strip() or not dialogue.situation.strip():
            continue
        pool.append(
            Exemplar(
                id=f"human-{dialogue.id}",
                culture=dialogue.culture,
                language=dialogue.language,
                category=dialogue.category,
                type=dialogue.type,
                norm=dialogue.norm,
                scenario=dialogue.scenario,
                situation=dialogue.situation,
            )
        )
    return pool
