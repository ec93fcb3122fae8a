"""The statistics of a release, computed once and shared by the card, plots and report."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.release_rows import JUDGE_AXES, LABEL_VALUES, RunData

SCORE_AXES = ("task_relevance", "linguistic_quality", "semantic_preservation")


@dataclass
class ReleaseStats:
    """Every number the card and the report show."""

    counts: pd.DataFrame  # one row per split and a total: dialogues, turns, norms, ...
    cells: pd.DataFrame  # culture, type, category, dialogues
    labels: dict[str, pd.DataFrame]  # label -> value x source (human, llm) counts
    judge: pd.DataFrame  # one row per dialogue with a judge score, one column per axis
    refinement: pd.DataFrame  # axis, before, after, n: mean scores, round 0 vs final
    agreement: list[dict]  # one entry per run with an agreement.json
    languages: list[str]


def _counts(rows_by_split: dict[str, list[dict]]) -> pd.DataFrame:
    def line(name: str, rows: list[dict]) -> dict:
        return {
            "split": name,
            "dialogues": len(rows),
            "turns": sum(len(r["turns"]) for r in rows),
            "norms": len({r["seed_id"] for r in rows}),
            "human_labelled_turns": sum(r["n_human_turns"] for r in rows),
            "human_rated_dialogues": sum(r["human"] is not None for r in rows),
        }

    every = [r for rows in rows_by_split.values() for r in rows]
    lines = [line(n, rs) for n, rs in rows_by_split.items()] + [line("total", every)]
    return pd.DataFrame(lines)


def _cells(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(
        [(r["culture"], r["type"], r["category"]) for r in rows],
        columns=["culture", "type", "category"],
    )
    return (
        frame.groupby(["culture", "type", "category"])
        .size()
        .rename("dialogues")
        .reset_index()
    )


def _labels(rows: list[dict]) -> dict[str, pd.DataFrame]:
    turns = pd.DataFrame([t for r in rows for t in r["turns"]])
    tables = {}
    for label, values in LABEL_VALUES.items():
        table = pd.DataFrame(0, index=values, columns=["human", "llm"])
        if len(turns):
            counted = turns.groupby([label, "label_source"]).size()
            for (value, source), n in counted.items():
                if value in table.index:
                    table.loc[value, source] = int(n)
        tables[label] = table
    return tables


def _judge(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(
        [r["judge"] for r in rows if r["judge"] is not None], columns=list(JUDGE_AXES)
    )


def _refinement(runs: list[RunData], ids: set[str]) -> pd.DataFrame:
    before, after = [], []
    for run in runs:
        for refinement in run.refinements:
            if refinement["item_id"] in ids and refinement.get("rounds"):
                before.append(refinement["rounds"][0]["scores"])
                after.append(refinement["rounds"][-1]["scores"])
    lines = []
    for axis in SCORE_AXES:
        lines.append(
            {
                "axis": axis,
                "before": pd.Series([s[axis] for s in before], dtype=float).mean(),
                "after": pd.Series([s[axis] for s in after], dtype=float).mean(),
                "n": len(before),
            }
        )
    return pd.DataFrame(lines)


def compute_stats(
    rows_by_split: dict[str, list[dict]], runs: list[RunData]
) -> ReleaseStats:
    """Compute the statistics of the rows of a release and the runs they came from."""
    rows = [r for split in rows_by_split.values() for r in split]
    return ReleaseStats(
        counts=_counts(rows_by_split),
        cells=_cells(rows),
        labels=_labels(rows),
        judge=_judge(rows),
        refinement=_refinement(runs, {r["id"] for r in rows}),
        agreement=[
            {"run": run.path.name, **run.agreement}
            for run in runs
            if run.agreement is not None
        ],
        languages=sorted({r["language"] for r in rows}),
    )
