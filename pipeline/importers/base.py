"""What every norm-bank importer shares: drafts, the report, tables and mappings.

An importer turns the records of one file into drafts: seed fields keyed like a
native seed row, with the physical line the record starts on, and optionally the
exemplar and gold dialogue the record holds. The registry checks every draft with
the native seed rules, so an imported seed is as valid as a hand-written one.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.cultures import Culture, Registry
from pipeline.errors import RowProblem
from pipeline.gold import GoldDialogue
from pipeline.schemas import Exemplar, NormLabel, SeedNorm, nfc
from pipeline.seeds import csv_records, read_text, sniff_delimiter, too_many_cells

# Source category names that mean one of ours; the rest are kept in kebab-case.
CATEGORY_ALIASES = {
    "compliments": "compliment",
    "respond-compliments": "respond-to-compliment",
    "respond-compliment": "respond-to-compliment",
    "responding-to-compliments": "respond-to-compliment",
    "apologies": "apology",
    "apologizing": "apology",
    "greetings": "greeting",
    "requests": "request",
    "thanking": "thanks",
    "gratitude": "thanks",
    "leave-taking": "leave",
    "leaving": "leave",
    "condolences": "condolence",
    "criticisms": "criticism",
    "persuading": "persuasion",
}

# Our labels for the three-way judgements of NormBank, NormAd and ISN.
LABEL_WORDS = {
    "expected": NormLabel.ADHERED,
    "yes": NormLabel.ADHERED,
    "normal": NormLabel.NOT_RELEVANT,
    "neutral": NormLabel.NOT_RELEVANT,
    "taboo": NormLabel.VIOLATED,
    "no": NormLabel.VIOLATED,
}


@dataclass
class Draft:
    """One record of a source file, before the seed rules are applied.

    Attributes:
        line: Physical line of the file the record starts on.
        fields: Seed fields (id, culture, language, category, norm, ...).
        exemplar: Exemplar fields other than the seed's, when the record holds a
            usable scenario and situation.
        gold: Gold dialogue fields other than the seed's, when its turns are labelled.
    """

    line: int
    fields: dict[str, object]
    exemplar: dict | None = None
    gold: dict | None = None


def new_draft(
    ctx: ImportContext, line: int, culture: str, language: str, **fields: object
) -> Draft:
    """Draft the seed of the record at ``line``; its ``origin`` names file and line."""
    return Draft(
        line=line,
        fields={
            "culture": culture,
            "language": language,
            **fields,
            "origin": f"{ctx.name}:{line}",
        },
    )


@dataclass
class FileBatch:
    """The drafts of one file and the records of it that could not be drafted."""

    drafts: list[Draft] = field(default_factory=list)
    skipped: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    records: int = 0

    @classmethod
    def of_table(cls, table: Table) -> FileBatch:
        """Start the batch of a table: its unparseable records are skipped."""
        return cls(
            skipped=list(table.problems), records=len(table.rows) + len(table.problems)
        )

    def skip(self, file: str, line: int, column: str, reason: str) -> None:
        """Report the record at ``line`` as not imported, for ``reason``."""
        self.skipped.append(RowProblem(file, line, column, reason))


@dataclass
class ImportContext:
    """What an importer needs besides the file.

    Attributes:
        registry: Known cultures and languages.
        name: How the file is named in ``source`` and ``origin`` (its path relative
            to the imported folder, or its file name).
        unknown_culture: Culture id given to records whose culture is not in the
            registry; None reports them as skipped instead.
    """

    registry: Registry
    name: str
    unknown_culture: str | None = None


@dataclass
class ImportReport:
    """What an import did: counts, and every record left out with its reason."""

    formats: dict[str, str] = field(default_factory=dict)
    records: int = 0
    imported: int = 0
    exemplars: int = 0
    gold: int = 0
    skipped: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)

    @property
    def skipped_records(self) -> int:
        """The number of source records read but not imported."""
        return self.records - self.imported

    def as_dict(self) -> dict:
        """Return the report as plain data for ``--json``."""
        return {
            "formats": self.formats,
            "records": self.records,
            "imported": self.imported,
            "skipped_records": self.skipped_records,
            "exemplars": self.exemplars,
            "gold": self.gold,
            "skipped": [vars(p) for p in self.skipped],
            "warnings": [vars(p) for p in self.warnings],
        }


@dataclass
class ImportResult:
    """Seeds, exemplars and gold dialogues read from one file or folder."""

    seeds: list[SeedNorm] = field(default_factory=list)
    exemplars: list[Exemplar] = field(default_factory=list)
    gold: list[GoldDialogue] = field(default_factory=list)
    report: ImportReport = field(default_factory=ImportReport)


@dataclass
class Table:
    """A delimited file as rows keyed by normalised column name."""

    header: list[str]
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


def column_key(name: str) -> str:
    """Normalise a column name so that spellings of one name meet.

    Case-folded, ``_`` read as a space, runs of spaces as one, no spaces around
    ``-``: ``Norm - EN`` and ``norm-en`` give ``norm-en``, ``actor_behavior`` gives
    ``actor behavior``.
    """
    key = re.sub(r"\s+", " ", nfc(name).casefold().replace("_", " "))
    return re.sub(r"\s*-\s*", "-", key).strip()


def read_table(
    path: Path, delimiter: str | None = None, header_only: bool = False
) -> Table:
    """Read a CSV or TSV file saved by any tool, Excel included.

    A BOM, CRLF line ends, ``;`` or tab delimiters, multi-line quoted cells and
    doubled quotes are all handled. Each row keeps the physical line it starts on.

    Args:
        path: The file.
        delimiter: The delimiter; None: a tab for ``.tsv``, else sniffed from the
            header.
        header_only: Read the header and no rows (to detect the format).

    Returns:
        The header and the non-empty rows, and a problem for each record that
        does not parse.
    """
    text = read_text(path)
    if delimiter is None:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else sniff_delimiter(text)
    # Social-Chem's TSV quotes nothing; a stray quote must not swallow lines.
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, quoting=quoting
    )
    file = str(path)
    try:
        header = [column_key(c) for c in next(reader)]
    except StopIteration:
        return Table(header=[])
    except csv.Error as err:
        return Table(header=[], problems=[RowProblem(file, 1, "(csv)", str(err))])

    table = Table(header=header)
    if header_only:
        return table
    for start, cells in csv_records(reader):
        if isinstance(cells, csv.Error):
            table.problems.append(RowProblem(file, start, "(csv)", str(cells)))
            continue
        if len(cells) > len(header):
            table.problems.append(too_many_cells(file, start, len(cells), len(header)))
            continue
        table.rows.append((start, dict(zip(header, cells, strict=False))))
    return table


def kebab(text: str) -> str:
    """Return ``text`` in lower kebab-case."""
    return re.sub(r"[\s_/-]+", "-", nfc(text).lower()).strip("-")


def map_category(raw: str) -> str:
    """Map a source category to ours (compliments -> compliment); else kebab-case."""
    key = kebab(raw)
    return CATEGORY_ALIASES.get(key, key)


def find_culture(name: str, registry: Registry) -> Culture | None:
    """Find a culture by id, name or alias; ``south_korea`` and ``Koreans`` match too."""
    name = nfc(name)
    if not name:
        return None
    spaced = re.sub(r"[_-]+", " ", name)
    for candidate in (name, spaced, re.sub(r"s$", "", spaced)):
        found = registry.culture(candidate)
        if found is not None:
            return found
    return None


def place_culture(
    name: str, ctx: ImportContext, file: str, line: int, column: str, batch: FileBatch
) -> Culture | None:
    """Resolve a source's culture name, reporting what could not be mapped.

    An unknown name goes to ``ctx.unknown_culture`` with a warning when one is
    configured; otherwise the record is skipped with the reason.
    """
    found = find_culture(name, ctx.registry)
    if found is not None:
        return found
    known = ", ".join(sorted(ctx.registry.cultures))
    if ctx.unknown_culture:
        fallback = ctx.registry.culture(ctx.unknown_culture)
        batch.warnings.append(
            RowProblem(
                file,
                line,
                column,
                f"'{name}' is not in the culture registry; imported as "
                f"'{ctx.unknown_culture}' (--unknown-culture)",
            )
        )
        return fallback
    batch.skip(
        file,
        line,
        column,
        f"culture '{name}' is not in the culture registry (known: {known}); add it "
        "to a cultures file (NORMLOOM_CULTURES_PATH) or pass --unknown-culture ID",
    )
    return None


def strip_prefix(text: str, *prefixes: str) -> str:
    """Remove a leading label such as ``Norm:`` or ``规范：`` from a cell."""
    text = nfc(text)
    for prefix in prefixes:
        if text.casefold().startswith(prefix.casefold()):
            return text[len(prefix) :].lstrip(" :：")
    return text


def first_sentence(text: str, limit: int = 200) -> str:
    """Return the first sentence of ``text`` (Latin or CJK full stop), cut at limit."""
    match = re.match(r"(.+?[.!?。！？])(\s|$)", nfc(text), flags=re.S)
    sentence = match.group(1) if match else nfc(text)
    return sentence[:limit].strip()


def read_label(
    raw: str, batch: FileBatch, file: str, line: int, column: str, expected: str
) -> str | None:
    """Map a judgement word (Expected, taboo, yes, ...) to our label's value.

    Returns:
        The label's value, "" for an empty cell, or None (the record is reported as
        skipped) for a word that is not one of ``expected``.
    """
    raw = nfc(raw)
    label = LABEL_WORDS.get(raw.casefold())
    if raw and label is None:
        batch.skip(file, line, column, f"'{raw}' is not {expected}")
        return None
    return label.value if label else ""


def english_note(culture: Culture) -> list[str]:
    """Say that an English source's norm stands for a culture of another language."""
    if "en" in culture.languages:
        return []
    return [f"The source is English; dialogues are written in {culture.languages[0]}."]


def line_of(text: str, offset: int) -> int:
    """Return the 1-based line of character ``offset`` in ``text``."""
    return text.count("\n", 0, offset) + 1
