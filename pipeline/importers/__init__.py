"""Importers of the public norm banks, and the registry that picks one per file.

``import_norms`` reads a file, or every file below a folder, detects each file's
format from its header, name or JSON shape (or takes the one given), and checks
every drafted seed with the native seed rules. Every source record ends up either
imported or in the report's ``skipped`` list with its file, line and reason.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from pipeline.cultures import Registry, load_registry
from pipeline.errors import ConfigError, RowProblem, SeedError
from pipeline.gold import GoldDialogue
from pipeline.importers import (
    culturebank,
    isn,
    native,
    normad,
    normbank,
    normdial,
    normgenesis,
    socialchem,
)
from pipeline.importers.base import (
    Draft,
    FileBatch,
    ImportContext,
    ImportReport,
    ImportResult,
    read_table,
)
from pipeline.schemas import Exemplar, SeedNorm, nfc
from pipeline.seeds import validate_rows

logger = logging.getLogger(__name__)

SUFFIXES = (".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".txt")
TABLE_SUFFIXES = (".csv", ".tsv")

__all__ = ["FORMATS", "ImportReport", "ImportResult", "detect_format", "import_norms"]


@dataclass(frozen=True)
class Format:
    """One source format: how to recognise a file of it and how to read one."""

    name: str
    detect: Callable[[Path, list[str]], bool]
    read: Callable[[Path, ImportContext], FileBatch]


# In detection order: the most specific headers first, file-name rules last.
FORMATS = {
    f.name: f
    for f in (
        Format(normdial.NAME, normdial.detect, normdial.read),
        Format(socialchem.NAME, socialchem.detect, socialchem.read),
        Format(normad.NAME, normad.detect, normad.read),
        Format(isn.NAME, isn.detect, isn.read),
        Format(culturebank.NAME, culturebank.detect, culturebank.read),
        Format(normbank.NAME, normbank.detect, normbank.read),
        Format(native.NAME, native.detect, native.read),
        Format(normgenesis.NAME, normgenesis.detect, normgenesis.read),
        Format(normbank.LIST_NAME, normbank.detect_list, normbank.read_list),
    )
}


def detect_format(path: Path) -> str | None:
    """Return the name of the format of ``path``, or None when none fits."""
    path = Path(path)
    header: list[str] = []
    if path.suffix.lower() in TABLE_SUFFIXES:
        header = read_table(path, header_only=True).header
    return next((f.name for f in FORMATS.values() if f.detect(path, header)), None)


def import_norms(
    path: Path,
    fmt: str | None = None,
    registry: Registry | None = None,
    unknown_culture: str | None = None,
) -> ImportResult:
    """Import the seed norms, exemplars and gold dialogues of a norm bank.

    Args:
        path: A file, or a folder whose files (``.csv``, ``.tsv``, ``.json``,
            ``.jsonl``, ``.txt``, at any depth) are all imported.
        fmt: The format of every file (see ``FORMATS``); None detects it per file.
        registry: Known cultures and languages; None: the built-in registry.
        unknown_culture: Culture id for records whose culture the registry does not
            know; None reports such records as skipped.

    Returns:
        The valid seeds, exemplars and gold dialogues, and the report.

    Raises:
        ConfigError: The path does not exist, the format or the fallback culture
            is unknown.
    """
    path = Path(path)
    registry = registry or load_registry()
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(
            f"Unknown format '{fmt}'; expected one of {', '.join(FORMATS)}."
        )
    if unknown_culture and registry.culture(unknown_culture) is None:
        raise ConfigError(
            f"--unknown-culture '{unknown_culture}' is not in the culture registry; "
            f"known: {', '.join(sorted(registry.cultures))}."
        )
    if not path.exists():
        raise ConfigError(f"Nothing to import at {path}: no such file or folder.")
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES)
    )

    result = ImportResult()
    ids: set[str] = set()
    norms: dict[tuple, str] = {}
    for file in files:
        name = file.relative_to(path).as_posix() if path.is_dir() else file.name
        ctx = ImportContext(registry, name, unknown_culture)
        found = fmt or detect_format(file)
        if found is None:
            result.report.skipped.append(
                RowProblem(
                    name,
                    1,
                    "(file)",
                    "format not recognised from the header or name; pass --format "
                    f"({', '.join(FORMATS)})",
                )
            )
            continue
        result.report.formats[name] = found
        try:
            batch = FORMATS[found].read(file, ctx)
        except SeedError as err:
            lines = {p.line for p in err.problems}
            batch = FileBatch(skipped=err.problems, records=len(lines))
        _finish(batch, ctx, result, ids, norms)

    report = result.report
    report.imported = len(result.seeds)
    report.exemplars, report.gold = len(result.exemplars), len(result.gold)
    logger.info(
        "Imported %d seed(s), %d exemplar(s), %d gold dialogue(s) from %s; "
        "%d record(s) skipped.",
        report.imported,
        report.exemplars,
        report.gold,
        path,
        report.skipped_records,
    )
    return result


def _finish(
    batch: FileBatch,
    ctx: ImportContext,
    result: ImportResult,
    ids: set[str],
    norms: dict[tuple, str],
) -> None:
    """Check one file's drafts and add its seeds, exemplars and gold to ``result``."""
    report = result.report
    report.warnings.extend(batch.warnings)
    report.skipped.extend(batch.skipped)
    report.records += batch.records

    # Keyed by id, not line: the records of a one-line JSON file share line 1.
    kept: dict[str, Draft] = {}
    for draft in batch.drafts:
        key = tuple(
            str(draft.fields.get(k) or "")
            for k in ("culture", "category", "norm", "setting", "notes", "source_label")
        )
        if key in norms:
            report.skipped.append(
                RowProblem(
                    ctx.name, draft.line, "norm", f"the same norm as {norms[key]}"
                )
            )
            continue
        norms[key] = f"{ctx.name}:{draft.line}"
        # Ids must be unique across every file of the import, not only within one.
        if draft.fields["id"] in ids:
            draft.fields["id"] = f"{draft.fields['id']}-l{draft.line}"
        ids.add(str(draft.fields["id"]))
        kept[nfc(str(draft.fields["id"]))] = draft

    rows = [(d.line, d.fields) for d in kept.values()]
    seeds, problems = validate_rows(rows, Path(ctx.name), ctx.registry, ctx.name)
    report.skipped.extend(problems)
    for seed in seeds:
        result.seeds.append(seed)
        _add_dialogue(kept[seed.id], seed, ctx, result)


def _add_dialogue(
    draft: Draft, seed: SeedNorm, ctx: ImportContext, result: ImportResult
) -> None:
    """Add the exemplar and gold dialogue a draft holds, if they are valid."""
    base = {
        "id": seed.id,
        "culture": seed.culture,
        "language": seed.language,
        "category": seed.category,
        "norm": seed.norm,
    }
    try:
        if draft.exemplar:
            result.exemplars.append(Exemplar(**base, **draft.exemplar))
        if draft.gold:
            source = f"{ctx.name}:{draft.line}"
            result.gold.append(GoldDialogue(**base, **draft.gold, source=source))
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        result.report.warnings.append(
            RowProblem(
                ctx.name,
                draft.line,
                where or "(dialogue)",
                f"{first['msg']}; seed imported, dialogue left out",
            )
        )
