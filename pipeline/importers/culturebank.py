"""CultureBank: clustered descriptions of cultural behaviour, in English CSV.

Columns: cluster_id, cultural group, context, goal, relation, actor,
actor_behavior, recipient, recipient_behavior, other_descriptions, topic,
agreement, num_support_bin, time_range. The norm is written from actor, behaviour,
recipient and context. The cultural group becomes a culture when the registry knows
it; otherwise the row is reported (or imported under ``--unknown-culture``).
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
    read_table,
)
from pipeline.schemas import nfc

NAME = "culturebank"
NOTES = (
    "goal",
    "relation",
    "other descriptions",
    "agreement",
    "num support bin",
    "time range",
)


def detect(path: Path, header: list[str]) -> bool:
    """Tell CultureBank by its cultural group and actor_behavior columns."""
    return {"cultural group", "actor behavior"} <= set(header)


def read(path: Path, ctx: ImportContext) -> FileBatch:
    """Draft one seed per cluster."""
    table = read_table(path)
    batch = FileBatch.of_table(table)
    for line, row in table.rows:
        cell = {k: nfc(v) for k, v in row.items()}
        if not cell.get("actor behavior"):
            batch.skip(ctx.name, line, "actor_behavior", "the behaviour is empty")
            continue
        culture = place_culture(
            cell.get("cultural group", ""), ctx, ctx.name, line, "cultural group", batch
        )
        if culture is None:
            continue
        norm = f"{cell.get('actor') or 'People'} {cell['actor behavior']}"
        if cell.get("context"):
            norm = f"In {cell['context']}, {norm[0].lower()}{norm[1:]}"
        if cell.get("recipient behavior"):
            norm += f"; {cell.get('recipient') or 'the other person'} {cell['recipient behavior']}"
        source_id = cell.get("cluster id") or str(line)
        batch.drafts.append(
            new_draft(
                ctx,
                line,
                culture.id,
                culture.languages[0],
                id=f"culturebank-{culture.id}-{source_id}",
                category=map_category(cell.get("topic") or "general"),
                norm=norm.rstrip(".") + ".",
                setting=cell.get("context", ""),
                roles=[r for r in (cell.get("actor"), cell.get("recipient")) if r],
                notes="\n".join(
                    english_note(culture)
                    + [f"{k}: {cell[k]}" for k in NOTES if cell.get(k)]
                ),
                source_id=source_id,
            )
        )
    return batch
