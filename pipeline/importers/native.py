"""normloom's own seed format (CSV or JSON Lines), so any seed file can be imported."""

from __future__ import annotations

from pathlib import Path

from pipeline.importers.base import Draft, FileBatch, ImportContext
from pipeline.seeds import REQUIRED, load_seeds

NAME = "native"


def detect(path: Path, header: list[str]) -> bool:
    """Tell a native seed file by its required columns, or a ``.jsonl`` suffix."""
    return set(REQUIRED) <= set(header) or path.suffix.lower() in (".jsonl", ".ndjson")


def read(path: Path, ctx: ImportContext) -> FileBatch:
    """Read the file with the native loader; bad rows come back as skipped."""
    loaded = load_seeds(path, ctx.registry, skip_invalid=True)
    drafts = [
        Draft(
            line=int((seed.source or ":0").rsplit(":", 1)[1]),
            fields=seed.model_dump(exclude={"source"}, exclude_none=True),
        )
        for seed in loaded.seeds
    ]
    records = len(drafts) + len({p.line for p in loaded.skipped})
    return FileBatch(drafts=drafts, skipped=loaded.skipped, records=records)
