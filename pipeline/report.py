"""The HTML run report of a release: the card's tables and plots in one file.

The PNGs are embedded, so the report opens on its own (from a Prefect artifact's
file:// link, or copied elsewhere).
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from pipeline.card import COUNT_COLUMNS
from pipeline.release_stats import ReleaseStats

TITLES = {
    "cells": "Dialogues by culture x type x category",
    "labels": "Turn labels",
    "judge": "Judge scores",
    "refinement": "Refinement: round 0 vs final",
    "agreement": "Annotator agreement",
}
STYLE = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}"
    "th:first-child,td:first-child{text-align:left}img{max-width:100%}"
)


def _image(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def render_report(
    stats: ReleaseStats, version: str, plots: dict[str, Path], changelog: str
) -> str:
    """Return the HTML report of a release."""
    counts = stats.counts.rename(columns=COUNT_COLUMNS).to_html(index=False)
    body = [
        f"<h1>normloom release {html.escape(version)}</h1>",
        "<h2>Counts</h2>",
        counts,
        "<h2>What changed</h2>",
        f"<pre>{html.escape(changelog)}</pre>",
    ]
    for name, title in TITLES.items():
        body += [f"<h2>{html.escape(title)}</h2>", _image(plots[name])]
    body += ["<h2>Dialogues by cell</h2>", stats.cells.to_html(index=False)]
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>normloom release {html.escape(version)}</title>"
        f"<style>{STYLE}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_report(
    stats: ReleaseStats,
    version: str,
    plots: dict[str, Path],
    changelog: str,
    path: Path,
) -> Path:
    """Write the HTML report and return its path."""
    path.write_text(render_report(stats, version, plots, changelog), "utf-8")
    return path
