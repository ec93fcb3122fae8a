"""Seed norms: read them from CSV or JSON Lines, check every row, write them back.

A seed file is the user's own data, so every bad row is reported at once, each with
the physical line it starts on, instead of stopping at the first one.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import jsonlines
import pandas as pd
from pydantic import ValidationError

from pipeline.cultures import Registry, load_registry
from pipeline.errors import ConfigError, RowProblem, SeedError
from pipeline.schemas import SeedNorm, nfc
from pipeline.storage import write_jsonl

logger = logging.getLogger(__name__)

REQUIRED = ("id", "culture", "language", "category", "norm")
OPTIONAL = ("setting", "roles", "notes", "source_id", "origin", "source_label", "pair")
# write_seeds stores where each seed came from; loading sets it afresh.
RECOMPUTED = ("source",)
# Where an imported seed came from and how it pairs; kept as they are on reload.
TRACE = ("source_id", "origin", "source_label", "pair")
KNOWN = (*REQUIRED, *OPTIONAL, *RECOMPUTED)
_FIELD_ORDER = {name: i for i, name in enumerate(KNOWN)}

CSV_SUFFIXES = (".csv", ".tsv")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
DELIMITERS = (",", ";", "\t")

_Row = tuple[int, dict[str, object]]


@dataclass
class SeedLoad:
    """The seeds read from one file and the problems of the rows left out."""

    seeds: list[SeedNorm]
    skipped: list[RowProblem] = field(default_factory=list)


@dataclass
class _Parsed:
    """Rows of a file before checking, with the problems found while parsing."""

    rows: list[_Row] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)
    unknown: set[str] = field(default_factory=set)


def load_seeds(
    path: Path, registry: Registry | None = None, skip_invalid: bool = False
) -> SeedLoad:
    """Read and check the seed norms in a CSV, TSV or JSON Lines file.

    Every problem in the file is collected before anything is raised. Cultures and
    languages are stored under their canonical ids (``Korean`` becomes ``kr``), all
    text is NFC-normalised and categories become kebab-case.

    Args:
        path: A ``.csv``/``.tsv`` file with a header row, or a ``.jsonl``/``.ndjson``/
            ``.json`` file holding one JSON object per line.
        registry: Known cultures and languages. None: the built-in registry.
        skip_invalid: Leave bad rows out and report them in ``skipped`` instead of
            raising.

    Returns:
        The valid seeds in file order and, with ``skip_invalid``, the problems of
        the rows left out.

    Raises:
        ConfigError: The file is missing or its extension is not a known format.
        SeedError: Some rows are bad (and ``skip_invalid`` is off), or no row at all
            is usable.
    """
    path = Path(path)
    registry = registry or load_registry()
    file = str(path)

    suffix = path.suffix.lower()
    if suffix not in (*CSV_SUFFIXES, *JSONL_SUFFIXES):
        raise ConfigError(
            f"Cannot read seeds from {file}: unknown extension '{path.suffix}'. "
            f"Expected one of {', '.join(CSV_SUFFIXES + JSONL_SUFFIXES)}; "
            "rename the file or convert it to CSV or JSON Lines."
        )
    text = read_text(path)
    if not text.strip():
        raise SeedError(
            [RowProblem(file, 1, "(file)", "the file is empty; expected seed rows")],
            none_usable=True,
        )

    if suffix in CSV_SUFFIXES:
        parsed = _parse_csv(text, file, "\t" if suffix == ".tsv" else None)
    else:
        parsed = _parse_jsonl(text, file)
    if parsed.unknown:
        logger.warning(
            "Ignoring unknown column(s) %s in %s; known columns are %s.",
            sorted(parsed.unknown),
            file,
            ", ".join(REQUIRED + OPTIONAL),
        )

    seeds, problems = _check_rows(parsed, path, registry)
    if not seeds and not problems:
        problems.append(
            RowProblem(file, 1, "(file)", "the file holds no seed rows, only a header")
        )
    if problems and (not skip_invalid or not seeds):
        # --skip-invalid only helps when some row is good.
        raise SeedError(problems, none_usable=not seeds)

    if problems:
        logger.warning(
            "Skipped %d invalid row(s) of %s (%d problem(s)).",
            len({p.line for p in problems}),
            file,
            len(problems),
        )
    logger.info("Loaded %d seed(s) from %s.", len(seeds), file)
    return SeedLoad(seeds=seeds, skipped=problems)


def write_seeds(seeds: Iterable[SeedNorm], path: Path) -> int:
    """Write seeds to a JSON Lines file, keeping non-ASCII text as it is.

    Args:
        seeds: The seeds to write.
        path: The file to create or replace; missing folders are created.

    Returns:
        The number of seeds written.
    """
    count = write_jsonl(seeds, path)
    logger.info("Wrote %d seed(s) to %s.", count, path)
    return count


def seed_stats(seeds: Iterable[SeedNorm]) -> pd.DataFrame:
    """Count seeds by culture, language and category.

    Returns:
        One row per (culture, language, category) with its ``count``, sorted by
        those three columns.
    """
    keys = ["culture", "language", "category"]
    frame = pd.DataFrame(
        [(s.culture, s.language, s.category) for s in seeds], columns=keys
    )
    counts = frame.groupby(keys).size().reset_index(name="count")
    return counts.sort_values(keys, ignore_index=True)


def read_text(path: Path) -> str:
    """Return the file's text, decoded as UTF-8 with an optional BOM.

    Raises:
        ConfigError: The file cannot be read.
        SeedError: The file is not UTF-8; the problem names the line.
    """
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(
            f"Cannot read the seed file {path}: {err.strerror or err}. Check the path."
        ) from err
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        problem = RowProblem(
            str(path),
            line,
            "(encoding)",
            f"byte 0x{data[err.start]:02x} is not UTF-8; save the file as UTF-8",
        )
        raise SeedError([problem], none_usable=True) from err


def sniff_delimiter(text: str) -> str:
    """Return the delimiter used most in the header line: ',', ';' or a tab."""
    header = re.split(r"\r\n|\r|\n", text, maxsplit=1)[0]
    header = re.sub(r'"[^"]*"', "", header)
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def _parse_csv(text: str, file: str, delimiter: str | None) -> _Parsed:
    """Split CSV text into rows keyed by column, each with its first physical line."""
    parsed = _Parsed()
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter or sniff_delimiter(text),
        strict=True,
    )
    try:
        header = [nfc(c).casefold() for c in next(reader)]
    except csv.Error as err:
        parsed.problems.append(RowProblem(file, 1, "(csv)", f"bad header: {err}"))
        return parsed

    index: dict[str, int] = {}
    for i, name in enumerate(header):
        if name in index:
            parsed.problems.append(
                RowProblem(
                    file,
                    1,
                    name,
                    "the column appears twice; remove one (with --skip-invalid the first is used)",
                )
            )
        elif name:
            index[name] = i
    parsed.unknown = set(index) - set(KNOWN)
    for name in REQUIRED:
        if name not in index:
            parsed.missing.add(name)
            parsed.problems.append(
                RowProblem(
                    file,
                    1,
                    name,
                    f"required column '{name}' is missing from the header "
                    f"({', '.join(header)}); required: {', '.join(REQUIRED)}",
                )
            )

    for start, cells in csv_records(reader):
        if isinstance(cells, csv.Error):
            parsed.problems.append(_csv_problem(file, start, cells))
            continue
        if len(cells) > len(header):
            parsed.problems.append(too_many_cells(file, start, len(cells), len(header)))
        row = {name: cells[i] for name, i in index.items() if i < len(cells)}
        parsed.rows.append((start, row))
    return parsed


def csv_records(
    reader: Iterator[list[str]],
) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """Yield each non-empty record of a csv reader with the line it starts on.

    A record that does not parse is yielded as its ``csv.Error``, and reading goes on.
    """
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            yield start, err
            continue
        if any(c.strip() for c in cells):
            yield start, cells


def too_many_cells(file: str, line: int, cells: int, header: int) -> RowProblem:
    """Describe a record with more cells than the header has columns."""
    return RowProblem(
        file,
        line,
        "(row)",
        f"{cells} cells but the header has {header}; quote cells that contain the delimiter",
    )


def _csv_problem(file: str, line: int, err: csv.Error) -> RowProblem:
    """Describe a CSV syntax error at the record starting on ``line``."""
    message = str(err)
    if "field larger than field limit" in message:
        message = (
            f"a cell is longer than {csv.field_size_limit()} characters (a norm may "
            "have at most 2000): shorten it, or close an unclosed quote that runs "
            "on into the following text"
        )
    elif "unexpected end of data" in message:
        message = (
            "a quoted cell opened in this record is never closed, so the rest of "
            'the file was read into it; close the quote (write "" for a quote '
            "inside a cell)"
        )
    return RowProblem(file, line, "(csv)", message)


def _parse_jsonl(text: str, file: str) -> _Parsed:
    """Split JSON Lines text into objects, each with its physical line."""
    parsed = _Parsed()
    lineno = 0

    def numbered(lines: list[str]) -> Iterator[str]:
        nonlocal lineno
        for line in lines:
            lineno += 1
            yield line

    # Only "\n" ends a line: a raw U+2028 inside a JSON string is legal.
    reader = jsonlines.Reader(numbered(text.split("\n")))
    while True:
        try:
            value = reader.read(allow_none=True, skip_empty=True)
        except EOFError:
            break
        except jsonlines.InvalidLineError as err:
            parsed.problems.append(_json_problem(file, err))
            continue
        if not isinstance(value, dict):
            kind = "null" if value is None else type(value).__name__
            message = f"expected a JSON object, got {kind}"
            if isinstance(value, list) and value and isinstance(value[0], dict):
                message += (
                    "; this looks like a JSON array, write one object per line instead"
                )
            parsed.problems.append(RowProblem(file, lineno, "(json)", message))
            continue
        row = {nfc(str(k)).casefold(): v for k, v in value.items()}
        parsed.unknown |= set(row) - set(KNOWN)
        parsed.rows.append((lineno, row))
    return parsed


def _json_problem(file: str, err: jsonlines.InvalidLineError) -> RowProblem:
    """Describe a line that does not parse as JSON."""
    line = str(err.line).strip()
    # The decoder counts lines within this one line only; keep just the column.
    cause = re.sub(
        r"line \d+ column (\d+) \(char \d+\)", r"column \1", str(err.__cause__ or err)
    )
    message = f"not valid JSON ({cause}); each line must hold one JSON object"
    if err.lineno == 1 and line.startswith("["):
        message += "; this looks like a JSON array, write one object per line instead"
    return RowProblem(file, err.lineno, "(json)", message)


def validate_rows(
    rows: Iterable[tuple[int, dict[str, object]]],
    path: Path,
    registry: Registry,
    source_name: str | None = None,
) -> tuple[list[SeedNorm], list[RowProblem]]:
    """Check rows given as (line, fields) the way a seed file's rows are checked.

    Importers of other formats build rows keyed by the seed fields and pass them
    here, so every seed, whatever its origin, meets the same rules.

    Args:
        rows: (physical line, field values) pairs, in file order.
        path: The file the rows come from; problems name it.
        registry: Known cultures and languages.
        source_name: How ``source`` names the file ("name:line"); the file's name
            when None.

    Returns:
        The valid seeds and every problem, sorted by line.
    """
    return _check_rows(_Parsed(rows=list(rows)), path, registry, source_name)


def _check_rows(
    parsed: _Parsed, path: Path, registry: Registry, source_name: str | None = None
) -> tuple[list[SeedNorm], list[RowProblem]]:
    """Check every parsed row; return the valid seeds and all problems by line."""
    seeds: list[SeedNorm] = []
    problems = list(parsed.problems)
    first_line: dict[str, int] = {}
    source_name = source_name or path.name

    # A row whose cells did not split cleanly is never used, even if its fields
    # happen to look valid: they may hold each other's text.
    broken = {p.line for p in parsed.problems if p.field == "(row)"}
    for line, raw in parsed.rows:
        seed, row_problems = _check_row(
            line, raw, path, registry, parsed.missing, first_line, source_name
        )
        problems.extend(row_problems)
        if seed is not None and not row_problems and line not in broken:
            seeds.append(seed)

    problems.sort(key=lambda p: (p.line, _FIELD_ORDER.get(p.field, -1)))
    return seeds, problems


def _check_row(
    line: int,
    raw: dict[str, object],
    path: Path,
    registry: Registry,
    missing: set[str],
    first_line: dict[str, int],
    source_name: str,
) -> tuple[SeedNorm | None, list[RowProblem]]:
    """Check one row; return its seed (None if unusable) and its problems."""
    file = str(path)
    problems: list[RowProblem] = []

    def problem(name: str, message: str) -> None:
        problems.append(RowProblem(file, line, name, message))

    values: dict[str, str] = {}
    for name in (*REQUIRED, "setting", "notes", *TRACE):
        value, error = _as_text(raw.get(name))
        if error:
            problem(name, error)
        elif not _visible(value) and name in REQUIRED and name not in missing:
            problem(name, f"required field '{name}' is empty or missing")
        values[name] = value
    roles, error = _as_roles(raw.get("roles"))
    if error:
        problem("roles", error)

    seed_id = values["id"]
    if seed_id in first_line:
        problem(
            "id",
            f"duplicate id '{seed_id}', first used at line {first_line[seed_id]}; "
            "give every seed its own id",
        )
    elif seed_id:
        first_line[seed_id] = line

    culture_id, language_code, error_at = _resolve_place(
        values["culture"], values["language"], registry
    )
    for name, message in error_at:
        problem(name, message)

    category = re.sub(r"[\s_-]+", "-", values["category"].lower()).strip("-")
    if values["category"] and not category:
        problem("category", f"category '{values['category']}' has no letters")
    # A missing column was reported once at line 1; no row can be a seed without it.
    if problems or missing:
        return None, problems

    try:
        seed = SeedNorm(
            id=seed_id,
            culture=culture_id,
            language=language_code,
            category=category,
            norm=values["norm"],
            setting=values["setting"] or None,
            roles=roles,
            notes=values["notes"] or None,
            source=f"{source_name}:{line}",
            **{name: values[name] or None for name in TRACE},
        )
    except ValidationError as err:
        for e in err.errors():
            problem(str(e["loc"][0]) if e["loc"] else "(row)", e["msg"])
        return None, problems
    return seed, problems


def _resolve_place(
    culture: str, language: str, registry: Registry
) -> tuple[str, str, list[tuple[str, str]]]:
    """Map a culture and language to canonical ids; also return (field, message)s."""
    errors: list[tuple[str, str]] = []

    found = registry.culture(culture) if culture else None
    if culture and found is None:
        known = ", ".join(f"{c.id} ({c.name})" for c in registry.cultures.values())
        errors.append(
            (
                "culture",
                f"unknown culture '{culture}'; known: {known}. Use one of these ids "
                "or aliases, or add the culture to a cultures file "
                "(NORMLOOM_CULTURES_PATH)",
            )
        )

    lang = registry.language(language) if language else None
    if language and lang is None:
        # Accept region-tagged codes such as "ko-KR" or "zh_Hans".
        lang = registry.language(re.split(r"[-_]", language, maxsplit=1)[0])
    if language and lang is None:
        errors.append(
            (
                "language",
                f"unknown language '{language}'; known codes: "
                f"{', '.join(sorted(registry.languages))}",
            )
        )
    elif lang is not None and found is not None and lang.code not in found.languages:
        errors.append(
            (
                "language",
                f"language '{lang.code}' is not a language of culture '{found.id}' "
                f"(expected one of: {', '.join(found.languages)}); fix the language "
                "or add it to the culture's languages in the registry",
            )
        )

    return (
        found.id if found else culture,
        lang.code if lang else language,
        errors,
    )


def _as_text(value: object) -> tuple[str, str | None]:
    """Return a cell as NFC text with Unix line ends, or an error message."""
    if value is None:
        return "", None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return "", f"expected text, got {type(value).__name__}"
    text = re.sub(r"\r\n?", "\n", str(value))
    found = _CONTROL.search(text)
    if found is not None:
        return "", (
            f"contains the control character U+{ord(found.group()):04X}; remove it "
            "(only line breaks and tabs are allowed in text)"
        )
    return nfc(text), None


# Unicode's control characters (category Cc) but line feed and tab; a regex
# instead of a per-character category look-up keeps large banks fast.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _visible(text: str) -> bool:
    """Tell whether text holds anything but spaces and invisible format marks."""
    return any(not ch.isspace() and unicodedata.category(ch) != "Cf" for ch in text)


def _as_roles(value: object) -> tuple[list[str], str | None]:
    """Return roles from a "|" or ";" separated string or a list of strings."""
    if value is None:
        return [], None
    if isinstance(value, str):
        parts = re.split(r"[|;]", value)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        parts = value
    else:
        got = (
            "a list with non-text items"
            if isinstance(value, list)
            else type(value).__name__
        )
        return [], (
            f"expected a list of strings or a string separated by '|' or ';', got {got}"
        )
    return [nfc(p) for p in parts if nfc(p)], None
