"""How far annotators agree with each other, and with the LLM's labels.

Krippendorff's alpha is computed per question over the records that annotators
answered: nominal for labels and yes/no, ordinal for 1-5 ratings. It is ``None``
when it is undefined: fewer than two annotators answered one record in common, or
every answer is the same value (no variation to agree on).
"""

from __future__ import annotations

import math
from collections import defaultdict

import krippendorff
import numpy as np

from annotation.datasets import QUESTIONS, Level
from annotation.resolve import TURN_LABELS
from pipeline.schemas import DialogueRecord


def alpha(rows: list[dict], level: Level, name: str) -> float | None:
    """Return Krippendorff's alpha of one question between annotators, or None."""
    q = next(q for q in QUESTIONS[level] if q.name == name)
    code = {label: i for i, label in enumerate(q.labels)}
    annotators = sorted({r["annotator"] for r in rows})
    units = sorted({r["record_id"] for r in rows})
    data = np.full((len(annotators), len(units)), np.nan)
    a_index = {a: i for i, a in enumerate(annotators)}
    u_index = {u: i for i, u in enumerate(units)}
    for row in rows:
        value = row.get(name)
        if value in code:
            data[a_index[row["annotator"]], u_index[row["record_id"]]] = code[value]

    pairable = (~np.isnan(data)).sum(axis=0) >= 2
    if len(annotators) < 2 or not pairable.any():
        return None
    data = data[:, pairable]
    if len(np.unique(data[~np.isnan(data)])) < 2:
        return None
    level_of = "ordinal" if q.kind == "rating" else "nominal"
    value = krippendorff.alpha(
        reliability_data=data,
        level_of_measurement=level_of,
        value_domain=list(range(len(q.labels))),
    )
    return None if math.isnan(value) else round(float(value), 4)


def alphas(turn_rows: list[dict], dialogue_rows: list[dict]) -> dict[str, float | None]:
    """Return alpha for every label and rating question of both levels."""
    out = {}
    for level, rows in ((Level.TURNS, turn_rows), (Level.DIALOGUES, dialogue_rows)):
        for q in QUESTIONS[level]:
            if q.kind != "text":
                out[q.name] = alpha(rows, level, q.name)
    return out


def human_llm(
    resolved: list[dict], dialogues: dict[str, DialogueRecord]
) -> dict[str, dict]:
    """Compare the resolved human labels (gold) with the LLM's (predicted), per label.

    Returns, for each turn label, the share of turns where they agree, how many
    turns were compared (those with a human label), and a confusion table
    ``{gold: {predicted: count}}``; a turn the LLM left without the label counts
    as predicted "null". ``agreement`` is None when no turn was compared.
    """
    llm = {
        (d.id, t.index): t.labels.model_dump(mode="json")
        for d in dialogues.values()
        for t in d.turns
    }
    out = {}
    for name in TURN_LABELS:
        confusion: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        n = same = 0
        for row in resolved:
            gold = row.get(name)
            labels = llm.get((row["dialogue_id"], row["turn_index"]))
            if gold is None or labels is None:
                continue
            pred = labels.get(name)
            confusion[gold][str(pred) if pred is not None else "null"] += 1
            n += 1
            same += pred == gold
        out[name] = {
            "agreement": round(same / n, 4) if n else None,
            "n": n,
            "confusion": {
                g: dict(sorted(p.items())) for g, p in sorted(confusion.items())
            },
        }
    return out


def agreement_report(
    turn_rows: list[dict],
    dialogue_rows: list[dict],
    resolved_turns: list[dict],
    dialogues: dict[str, DialogueRecord],
) -> dict:
    """Build agreement.json: alpha per question, human-vs-LLM per label, counts."""
    rows = turn_rows + dialogue_rows
    return {
        "alpha": alphas(turn_rows, dialogue_rows),
        "human_llm": human_llm(resolved_turns, dialogues),
        "n_records": len({(r["dataset"], r["record_id"]) for r in rows}),
        "n_responses": len(rows),
    }
