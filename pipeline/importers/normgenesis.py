"""NormGenesis (EMNLP 2025): JSON arrays of dialogues per culture and type.

Files are named ``dialogue_<american|chinese|korean>_<adherence|violation|v2r>.json``;
each record has ``scenario``, ``situation``, ``dialogue``, ``category`` and ``norm``.
Dialogues are ``Name: utterance`` lines with stage directions in parentheses. Records
the source marks ``parsing_failed`` or with an ``error_msg``, and records whose text
is the generating model's leaked reasoning, are reported and not imported.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pipeline.errors import RowProblem
from pipeline.importers.base import (
    FileBatch,
    ImportContext,
    line_of,
    map_category,
    new_draft,
    place_culture,
)
from pipeline.importers.normdial import parse_turns
from pipeline.schemas import nfc
from pipeline.seeds import read_text

NAME = "normgenesis"
FILE_NAME = re.compile(
    r"dialogue_(?P<culture>[a-z]+)_(?P<type>adherence|violation|v2r)", re.I
)
TEXT_KEYS = ("norm", "scenario", "situation", "dialogue")
# Reasoning a model wrote instead of (or before) the answer.
LEAKED = re.compile(
    r"</?think>|^\s*(let me|i need to|okay, so|ok, so|alright, so|first, i|wait,|"
    r"hmm,)",
    re.I | re.M,
)
TURN = re.compile(r"^\s*\**(?P<speaker>[^:：()（）*]{1,60})\**\s*[:：]\s*(?P<text>.*)$")
STAGE_DIRECTION = re.compile(r"[(（][^()（）]*[)）]|\*[^*]+\*")


def detect(path: Path, header: list[str]) -> bool:
    """Tell a NormGenesis file by its name, or a JSON array of dialogue records."""
    if FILE_NAME.search(path.name):
        return True
    if path.suffix.lower() != ".json":
        return False
    head = read_text(path)[:4000]
    return head.lstrip().startswith("[") and all(
        f'"{key}"' in head for key in ("dialogue", "norm")
    )


def read(path: Path, ctx: ImportContext) -> FileBatch:
    """Draft one seed per record; its dialogue becomes an exemplar (and gold if labelled)."""
    batch = FileBatch()
    text = read_text(path)
    named = FILE_NAME.search(path.name)
    records, problems = _records(text, ctx.name)
    # An unclosed array loses no record of its own: a warning, not a skip.
    cut = [p for p in problems if "never closed" in p.message]
    problems = [p for p in problems if p not in cut]
    batch.warnings.extend(cut)
    batch.skipped.extend(problems)
    batch.records = len(records) + len(problems)
    for line, index, record in records:
        place = nfc(str(record.get("culture") or (named and named["culture"]) or ""))
        kind = nfc(str(record.get("type") or (named and named["type"]) or "")).lower()
        culture = place_culture(place, ctx, ctx.name, line, "culture", batch)
        if culture is None:
            continue
        reason = _unusable(record)
        if reason:
            batch.skip(ctx.name, line, *reason)
            continue

        source_id = nfc(str(record.get("id", index)))
        category = map_category(str(record.get("category") or "general"))
        situation = nfc(str(record.get("situation") or ""))
        scenario = nfc(str(record.get("scenario") or ""))
        draft = new_draft(
            ctx,
            line,
            culture.id,
            culture.languages[0],
            id=f"normgenesis-{culture.id}-{kind or 'x'}-{source_id}",
            category=category,
            norm=nfc(str(record.get("norm") or "")),
            setting=situation,
            source_id=source_id,
        )
        if kind in ("adherence", "violation", "v2r") and scenario and situation:
            draft.exemplar = {
                "type": kind,
                "scenario": scenario,
                "situation": situation,
            }
            turns = _labelled_turns(record.get("dialogue"))
            if turns:
                draft.gold = {"type": kind, "situation": situation, "turns": turns}
        batch.drafts.append(draft)
    return batch


def dialogue_turns(value: object) -> list[dict]:
    """Split a dialogue (text or list of lines) into speaker turns.

    Stage directions in parentheses or asterisks are removed; a line that holds
    nothing else is dropped, and a line without ``Name:`` continues the turn before.
    """
    lines = value if isinstance(value, list) else str(value or "").splitlines()
    turns: list[dict] = []
    for raw in lines:
        line = nfc(_as_line(raw))
        match = TURN.match(line)
        said = nfc(STAGE_DIRECTION.sub("", match["text"] if match else line))
        if not said:
            continue
        if match:
            turns.append({"speaker": nfc(match["speaker"]), "text": said})
        elif turns:
            turns[-1]["text"] += " " + said
    return turns


def _as_line(item: object) -> str:
    """Return a dialogue item as a ``Name: utterance`` line (it may be an object)."""
    if not isinstance(item, dict):
        return str(item)
    speaker = next((item[k] for k in ("speaker", "name", "role") if item.get(k)), "")
    text = next((item[k] for k in ("utterance", "text", "content") if item.get(k)), "")
    return f"{speaker}: {text}" if speaker else str(text)


def _labelled_turns(value: object) -> list[dict]:
    """Return gold turns when every line carries a NormDial-style label, else []."""
    if isinstance(value, list):
        value = "\n".join(_as_line(v) for v in value)
    turns, bad = parse_turns(str(value or ""))
    return [] if bad else turns


def _unusable(record: dict) -> tuple[str, str] | None:
    """Return (field, reason) when a record must not be imported."""
    if str(record.get("parsing_failed", "")).casefold() not in (
        "",
        "false",
        "0",
        "none",
    ):
        return "parsing_failed", "the source marks this record parsing_failed"
    if nfc(str(record.get("error_msg") or "")):
        return "error_msg", f"the source reports an error: {record['error_msg']!s:.120}"
    for key in TEXT_KEYS:
        value = record.get(key)
        text = (
            "\n".join(map(str, value)) if isinstance(value, list) else str(value or "")
        )
        match = LEAKED.search(text)
        if match:
            return key, (
                f"holds the generating model's reasoning ({match.group(0).strip()!r}), "
                "not data"
            )
    if not nfc(str(record.get("norm") or "")):
        return "norm", "the norm is empty"
    if len(dialogue_turns(record.get("dialogue"))) < 2:
        return "dialogue", "fewer than two 'Name: utterance' turns"
    return None


def _records(
    text: str, file: str
) -> tuple[list[tuple[int, int, dict]], list[RowProblem]]:
    """Return (line, index, record) for each object of a JSON array, in order."""
    decoder = json.JSONDecoder()
    start = text.find("[")
    if start < 0 or text[:start].strip():
        return [], [RowProblem(file, 1, "(json)", "expected a JSON array of records")]
    records: list[tuple[int, int, dict]] = []
    problems: list[RowProblem] = []
    pos, index = start + 1, 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            problems.append(
                RowProblem(
                    file,
                    line_of(text, len(text)),
                    "(json)",
                    "the JSON array is never closed (no ']'): the file looks "
                    "truncated; the records before this point were read",
                )
            )
            return records, problems
        if text[pos] == "]":
            return records, problems
        line = line_of(text, pos)
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            problems.append(
                RowProblem(
                    file,
                    line,
                    "(json)",
                    f"not valid JSON ({err.msg}); the rest is skipped",
                )
            )
            return records, problems
        if isinstance(value, dict):
            records.append((line, index, value))
        else:
            kind = type(value).__name__
            problems.append(
                RowProblem(file, line, "(json)", f"expected an object, got {kind}")
            )
        index, pos = index + 1, end
