"""Read a run's dialogues.jsonl for publishing or annotation, every bad line named."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from pipeline.errors import NormloomError
from pipeline.schemas import DialogueRecord


def read_dialogues(
    path: Path, error: type[NormloomError] = NormloomError
) -> list[DialogueRecord]:
    """Return the dialogue records of ``path``; raise ``error`` naming bad lines.

    Every line is checked, so one message lists every damaged line with its number
    and what to do, instead of a decoder's traceback.
    """
    path = Path(path)
    records: list[DialogueRecord] = []
    problems: list[str] = []
    try:
        lines = path.read_text("utf-8").split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"Cannot read {path}: {err}.") from err
    last = max((i for i, line in enumerate(lines, 1) if line.strip()), default=0)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            hint = (
                "a half-written last line: run the same `normloom generate` command "
                "again to repair it (or delete the line)"
                if number == last
                else "delete or fix the line"
            )
            problems.append(
                f"{path}:{number}: not valid JSON ({err.msg} at column {err.colno}); {hint}"
            )
            continue
        if not isinstance(row, dict):
            problems.append(
                f"{path}:{number}: expected a JSON object, got {type(row).__name__}"
            )
            continue
        try:
            records.append(DialogueRecord.model_validate(row))
        except ValidationError as err:
            for e in err.errors()[:5]:
                field = ".".join(str(p) for p in e["loc"]) or "(row)"
                problems.append(f"{path}:{number}: field '{field}': {e['msg']}")
    if problems:
        shown = "\n".join(f"  - {p}" for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise error(
            f"{path} holds {len(problems)} problem(s); it must hold one dialogue "
            f"record a line, as `normloom generate` writes it:\n{shown}{more}"
        )
    return records
