"""Social-Chem-101: rules of thumb (``rot``) with situations, in one TSV file.

Multi-valued cells are joined with ``|`` and empty strings occur. Every row is a
US English rule of thumb; rows the annotators marked bad (``rot-bad`` = 1) are
reported, not imported.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.importers.base import (
    FileBatch,
    ImportContext,
    map_category,
    new_draft,
    read_table,
)
from pipeline.schemas import nfc

NAME = "socialchem"
# Cells kept in the notes, with the names they are shown under.
NOTES = {
    "action": "action",
    "rot-judgment": "judgment",
    "rot-moral-foundations": "moral foundations",
    "rot-agree": "agreement",
    "area": "area",
}


def detect(path: Path, header: list[str]) -> bool:
    """Tell Social-Chem-101 by its rot, rot-id and situation columns."""
    return {"rot", "rot-id", "situation"} <= set(header)


def read(path: Path, ctx: ImportContext) -> FileBatch:
    """Draft one seed per rule of thumb."""
    table = read_table(path)
    batch = FileBatch.of_table(table)
    for line, row in table.rows:
        rot = nfc(row.get("rot", ""))
        if not rot:
            batch.skip(ctx.name, line, "rot", "the rule of thumb is empty")
            continue
        if nfc(row.get("rot-bad", "")) == "1":
            batch.skip(
                ctx.name, line, "rot-bad", "annotators marked this rule of thumb bad"
            )
            continue
        kinds = [
            c
            for c in (nfc(v) for v in row.get("rot-categorization", "").split("|"))
            if c
        ]
        source_id = nfc(row.get("rot-id", "")) or str(line)
        notes = [
            f"{label}: {' | '.join(_values(row.get(key, '')))}"
            for key, label in NOTES.items()
            if _values(row.get(key, ""))
        ]
        batch.drafts.append(
            new_draft(
                ctx,
                line,
                "us",
                "en",
                id=f"socialchem-{source_id}",
                category=map_category(kinds[0]) if kinds else "general",
                norm=rot,
                setting=nfc(row.get("situation", "")),
                notes="; ".join(notes),
                source_id=source_id,
            )
        )
    return batch


def _values(cell: str) -> list[str]:
    """Split a ``|``-joined cell into its non-empty values."""
    return [v for v in (nfc(p) for p in cell.split("|")) if v]
