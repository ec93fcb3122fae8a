"""Gold dialogues: dialogues from a norm bank with a norm label on every turn."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from pipeline.errors import SeedError
from pipeline.schemas import DialogueType, NormLabel, Text
from pipeline.storage import read_records


class GoldTurn(BaseModel):
    """One turn of a gold dialogue and the label the source gave it."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    index: int = Field(ge=0)
    speaker: Text
    text: Text
    norm_label: NormLabel
    rationale: str = ""


class GoldDialogue(BaseModel):
    """A dialogue whose turns carry gold norm labels, traced to its source line."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    id: Text
    culture: Text
    language: Text
    category: Text
    type: DialogueType
    norm: Text
    situation: str = ""
    turns: list[GoldTurn] = Field(min_length=1)
    source: str = Field(default="", description="File and line in the norm bank.")


def load_gold(path: Path) -> list[GoldDialogue]:
    """Read a gold set written by ``normloom seeds import --gold``.

    Raises:
        SeedError: A line is not JSON or does not fit GoldDialogue; every bad line
            is listed with its field.
    """
    path = Path(path)
    dialogues, problems = read_records(path, GoldDialogue)
    if problems:
        raise SeedError(problems, none_usable=not dialogues)
    return dialogues
