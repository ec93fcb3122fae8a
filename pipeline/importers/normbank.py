"""NormBank: behaviours judged in a setting, as CSV or as raw behaviour lists.

The CSV has setting, behavior, constraints, label (0 taboo, 1 normal, 2 expected)
and split. A raw list holds one behaviour a line, its setting being the file's
name (which may contain spaces), and no judgement. NormBank is US English.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.importers.base import (
    Draft,
    FileBatch,
    ImportContext,
    kebab,
    new_draft,
    read_table,
)
from pipeline.schemas import NormLabel, nfc, stable_id
from pipeline.seeds import read_text

NAME = "normbank"
LIST_NAME = "normbank-list"
CATEGORY = "behavior"
NOT_LISTS = re.compile(r"(readme|license|licence|changelog|requirements|notice)", re.I)
LABELS = {
    "0": ("taboo", NormLabel.VIOLATED),
    "1": ("normal", NormLabel.NOT_RELEVANT),
    "2": ("expected", NormLabel.ADHERED),
}


def detect(path: Path, header: list[str]) -> bool:
    """Tell a NormBank CSV by its setting, behavior and label columns."""
    return {"setting", "behavior", "label"} <= set(header)


def detect_list(path: Path, header: list[str]) -> bool:
    """Tell a raw behaviour list: a ``.txt`` file that is not a README or licence."""
    return path.suffix.lower() == ".txt" and not NOT_LISTS.match(path.stem)


def read(path: Path, ctx: ImportContext) -> FileBatch:
    """Draft one seed per judged behaviour."""
    table = read_table(path)
    batch = FileBatch.of_table(table)
    for line, row in table.rows:
        setting, behavior = nfc(row.get("setting", "")), nfc(row.get("behavior", ""))
        raw_label = nfc(row.get("label", ""))
        # Labels saved by pandas or Excel may read "2.0".
        raw_label = raw_label.removesuffix(".0")
        if not behavior:
            batch.skip(ctx.name, line, "behavior", "the behaviour is empty")
            continue
        if raw_label not in LABELS:
            batch.skip(
                ctx.name,
                line,
                "label",
                f"label '{raw_label}' is not 0 (taboo), 1 (normal) or 2 (expected)",
            )
            continue
        word, label = LABELS[raw_label]
        constraints = nfc(row.get("constraints", ""))
        norm = f"In {setting or 'any setting'}, to {behavior} is {word}"
        norm += f" when {constraints}." if constraints else "."
        notes = f"split: {nfc(row.get('split', ''))}" if row.get("split") else ""
        batch.drafts.append(
            _draft(ctx, line, f"{line}", norm, setting, notes, label.value)
        )
    return batch


def read_list(path: Path, ctx: ImportContext) -> FileBatch:
    """Draft one seed per behaviour line; the setting is the file's name."""
    batch = FileBatch()
    setting = nfc(path.stem.replace("_", " "))
    for line, raw in enumerate(read_text(path).splitlines(), start=1):
        behavior = nfc(raw)
        if not behavior or behavior.startswith("#"):
            continue
        norm = f"In {setting}, people {behavior}."
        batch.drafts.append(
            _draft(ctx, line, f"{kebab(setting)}-{line}", norm, setting, "", "")
        )
    batch.records = len(batch.drafts)
    return batch


def _draft(
    ctx: ImportContext,
    line: int,
    source_id: str,
    norm: str,
    setting: str,
    notes: str,
    label: str,
) -> Draft:
    """Build the draft of one NormBank behaviour."""
    return new_draft(
        ctx,
        line,
        "us",
        "en",
        id=f"normbank-{stable_id(ctx.name, length=6)}-{source_id}",
        category=CATEGORY,
        norm=norm,
        setting=setting,
        notes=notes,
        source_id=source_id,
        source_label=label,
    )
