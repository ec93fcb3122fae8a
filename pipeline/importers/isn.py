"""Iranian Social Norms (ISN): norms in English and Persian with a judgement.

Columns: ``Norm - EN``, ``Environment - EN``, ``Norm - FA``, ``Environment - FA``,
``Scope - EN``, demographic columns and Label (Expected, Normal, Taboo). Seeds are
Iran/Persian (``ir``/``fa``) and take the Persian text; a row without Persian text
takes the English one and says so in its notes.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.importers.base import (
    FileBatch,
    ImportContext,
    map_category,
    new_draft,
    read_label,
    read_table,
)
from pipeline.schemas import nfc

NAME = "isn"
TEXT_COLUMNS = {
    "norm-en",
    "environment-en",
    "norm-fa",
    "environment-fa",
    "scope-en",
    "label",
}


def detect(path: Path, header: list[str]) -> bool:
    """Tell ISN by its ``Norm - EN`` and ``Norm - FA`` columns."""
    return {"norm-en", "norm-fa"} <= set(header)


def read(path: Path, ctx: ImportContext) -> FileBatch:
    """Draft one seed per norm."""
    table = read_table(path)
    batch = FileBatch.of_table(table)
    demographic = [c for c in table.header if c and c not in TEXT_COLUMNS]
    for line, row in table.rows:
        english, persian = nfc(row.get("norm-en", "")), nfc(row.get("norm-fa", ""))
        if not (english or persian):
            batch.skip(ctx.name, line, "Norm - FA", "the norm is empty")
            continue
        label = read_label(
            row.get("label", ""),
            batch,
            ctx.name,
            line,
            "Label",
            "Expected, Normal or Taboo",
        )
        if label is None:
            continue
        notes = [f"English: {english}"] if persian and english else []
        if not persian:
            notes.append("No Persian text in the source; the English norm is used.")
        notes += [f"{c}: {nfc(row[c])}" for c in demographic if nfc(row.get(c, ""))]
        setting = nfc(row.get("environment-fa", "")) or nfc(
            row.get("environment-en", "")
        )
        scope = nfc(row.get("scope-en", ""))
        batch.drafts.append(
            new_draft(
                ctx,
                line,
                "ir",
                "fa",
                id=f"isn-{line}",
                category=map_category(scope) if scope else "general",
                norm=persian or english,
                setting=setting,
                notes="\n".join(notes),
                source_id=str(line),
                source_label=label,
            )
        )
    return batch
