"""NormAd: stories about rules of thumb per country, with a yes/no/neutral label.

Columns: ID, Country, Background, Axis, Subaxis, Value, Rule-of-Thumb, Story,
Explanation, Gold Label. The text is English whatever the country; a seed takes the
country's culture and that culture's first language, so dialogues are written in it.
A country missing from the culture registry is reported, or imported under the
culture given with ``--unknown-culture``.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.importers.base import (
    FileBatch,
    ImportContext,
    english_note,
    map_category,
    new_draft,
    place_culture,
    read_label,
    read_table,
)
from pipeline.schemas import nfc

NAME = "normad"
NOTES = ("value", "story", "explanation")


def detect(path: Path, header: list[str]) -> bool:
    """Tell NormAd by its Country, Rule-of-Thumb and Gold Label columns."""
    return {"country", "rule-of-thumb", "gold label"} <= set(header)


def read(path: Path, ctx: ImportContext) -> FileBatch:
    """Draft one seed per story."""
    table = read_table(path)
    batch = FileBatch.of_table(table)
    for line, row in table.rows:
        rot = nfc(row.get("rule-of-thumb", ""))
        if not rot:
            batch.skip(ctx.name, line, "Rule-of-Thumb", "the rule of thumb is empty")
            continue
        label = read_label(
            row.get("gold label", ""),
            batch,
            ctx.name,
            line,
            "Gold Label",
            "yes, no or neutral",
        )
        if label is None:
            continue
        culture = place_culture(
            nfc(row.get("country", "")), ctx, ctx.name, line, "Country", batch
        )
        if culture is None:
            continue
        source_id = nfc(row.get("id", "")) or str(line)
        axis = nfc(row.get("subaxis", "")) or nfc(row.get("axis", "")) or "general"
        notes = "\n".join(
            english_note(culture)
            + [
                f"{key.title()}: {nfc(row[key])}"
                for key in NOTES
                if nfc(row.get(key, ""))
            ]
        )
        batch.drafts.append(
            new_draft(
                ctx,
                line,
                culture.id,
                culture.languages[0],
                id=f"normad-{culture.id}-{source_id}",
                category=map_category(axis),
                norm=rot,
                notes=notes,
                source_id=source_id,
                source_label=label,
            )
        )
    return batch
