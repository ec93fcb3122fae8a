"""The PNG plots of a release, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402 - after the backend is chosen
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pipeline.release_stats import ReleaseStats  # noqa: E402

log = logging.getLogger(__name__)

SOURCE_COLOURS = {"human": "#d95f02", "llm": "#1b9e77"}
SCORES = np.arange(1, 6)


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


def _empty(fig: Figure, message: str) -> None:
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, message, ha="center", va="center")
    ax.set_axis_off()


def plot_cells(stats: ReleaseStats, path: Path) -> Path:
    """Draw dialogues by category (rows) and culture x type (columns) as a heat map."""
    cells = stats.cells
    columns = max(1, len(cells.groupby(["culture", "type"])))
    rows = max(1, cells["category"].nunique())
    fig = Figure(figsize=(2.5 + 0.9 * columns, 1.5 + 0.45 * rows))
    if cells.empty:
        _empty(fig, "no dialogues")
        return _save(fig, path)
    table = cells.pivot_table(
        index="category",
        columns=["culture", "type"],
        values="dialogues",
        fill_value=0,
        aggfunc="sum",
    )
    ax = fig.add_subplot()
    image = ax.imshow(table.to_numpy(), cmap="Blues", aspect="auto")
    ax.set_xticks(range(table.shape[1]), [f"{c}\n{t}" for c, t in table.columns])
    ax.set_yticks(range(table.shape[0]), table.index)
    for (i, j), n in np.ndenumerate(table.to_numpy()):
        ax.text(j, i, str(int(n)), ha="center", va="center", fontsize=8)
    ax.set_title("Dialogues by culture x type x category")
    fig.colorbar(image, ax=ax, label="dialogues")
    return _save(fig, path)


def plot_labels(stats: ReleaseStats, path: Path) -> Path:
    """Draw the count of every turn label value, human and LLM answers stacked."""
    fig = Figure(figsize=(11, 7))
    for n, (label, table) in enumerate(stats.labels.items(), start=1):
        ax = fig.add_subplot(2, 2, n)
        left = np.zeros(len(table))
        for source in ("llm", "human"):
            ax.barh(
                table.index,
                table[source],
                left=left,
                color=SOURCE_COLOURS[source],
                label=source,
            )
            left += table[source].to_numpy()
        ax.invert_yaxis()
        ax.set_title(label)
        ax.set_xlabel("turns")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.axes[0].legend(title="label source")
    fig.suptitle("Turn labels")
    fig.tight_layout()
    return _save(fig, path)


def plot_judge(stats: ReleaseStats, path: Path) -> Path:
    """Draw a histogram of every judge score axis (1 to 5)."""
    fig = Figure(figsize=(11, 6))
    if stats.judge.empty:
        _empty(fig, "no judge scores (the judge was off)")
        return _save(fig, path)
    for n, axis in enumerate(stats.judge.columns, start=1):
        ax = fig.add_subplot(2, 3, n)
        counts = stats.judge[axis].value_counts().reindex(SCORES, fill_value=0)
        ax.bar(SCORES, counts.to_numpy(), color="#7570b3")
        ax.set_xticks(SCORES)
        ax.set_title(axis)
        ax.set_xlabel("score")
        ax.set_ylabel("dialogues")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle("LLM judge scores of the released dialogues")
    fig.tight_layout()
    return _save(fig, path)


def plot_refinement(stats: ReleaseStats, path: Path) -> Path:
    """Draw mean situation scores before refinement (round 0) and after (last round)."""
    frame = stats.refinement
    fig = Figure(figsize=(7, 4))
    if frame.empty or not frame["n"].max():
        _empty(fig, "no refinement rounds for the released dialogues")
        return _save(fig, path)
    ax = fig.add_subplot()
    x = np.arange(len(frame))
    ax.bar(x - 0.2, frame["before"], width=0.4, label="round 0", color="#bbbbbb")
    ax.bar(x + 0.2, frame["after"], width=0.4, label="final round", color="#1b9e77")
    ax.set_xticks(x, frame["axis"])
    ax.set_ylim(0, 6)
    ax.set_ylabel("mean score (1-5)")
    ax.set_title(f"Situation scores before and after refinement (n={frame['n'][0]})")
    ax.legend(loc="upper center", ncols=2)
    return _save(fig, path)


def plot_agreement(stats: ReleaseStats, path: Path) -> Path:
    """Draw Krippendorff's alpha per question and human-LLM agreement per label."""
    fig = Figure(figsize=(11, 4))
    if not stats.agreement:
        _empty(fig, "no human annotations in this release")
        return _save(fig, path)
    alpha_ax, llm_ax = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    width = 0.8 / len(stats.agreement)
    lowest = -0.2
    for n, entry in enumerate(stats.agreement):
        alpha = entry.get("alpha", {})
        names = list(alpha)
        values = [np.nan if alpha[k] is None else alpha[k] for k in names]
        lowest = min([lowest, *(v - 0.05 for v in values if not np.isnan(v))])
        offset = np.arange(len(names)) + n * width
        alpha_ax.bar(offset, values, width=width, label=entry["run"])
        alpha_ax.set_xticks(offset, names, rotation=30, ha="right")
        human_llm = entry.get("human_llm", {})
        labels = list(human_llm)
        offset = np.arange(len(labels)) + n * width
        shares = [human_llm[k]["agreement"] for k in labels]
        shares = [np.nan if share is None else share for share in shares]
        llm_ax.bar(offset, shares, width=width)
        llm_ax.set_xticks(offset, labels, rotation=30, ha="right")
    alpha_ax.set_title("Krippendorff's alpha between annotators")
    alpha_ax.set_ylim(lowest, 1)
    alpha_ax.axhline(0, color="black", linewidth=0.5)
    llm_ax.set_title("Human-LLM label agreement")
    llm_ax.set_ylim(0, 1)
    if len(stats.agreement) > 1:
        alpha_ax.legend(title="run")
    fig.tight_layout()
    return _save(fig, path)


PLOTS = {
    "cells": plot_cells,
    "labels": plot_labels,
    "judge": plot_judge,
    "refinement": plot_refinement,
    "agreement": plot_agreement,
}


def draw_all(stats: ReleaseStats, directory: Path) -> dict[str, Path]:
    """Draw every plot into ``directory``; return the PNG paths by name."""
    paths = {
        name: draw(stats, directory / f"{name}.png") for name, draw in PLOTS.items()
    }
    log.info("Drew %d plots in %s", len(paths), directory)
    return paths
