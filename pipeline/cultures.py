"""Cultures and languages normloom knows, and how to tell their text apart.

The built-in registry lives in ``data/cultures.json``; a file named by the
``cultures_path`` setting is merged over it, so any culture/language pair can be added
without code.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from pydantic import BaseModel, Field

from pipeline.errors import ConfigError

BUILTIN_PATH = Path(__file__).resolve().parent.parent / "data" / "cultures.json"


class Language(BaseModel):
    """A language: its names, its lingua identifier and its writing system."""

    code: str
    name: str
    native_name: str
    lingua: str = Field(description="Name of the language in lingua's Language enum.")
    script: str = Field(
        description="Prefix of the Unicode character names of its letters (LATIN, CJK, ...)."
    )
    instruction: str = Field(
        description="One sentence, in the language itself, telling the model to write in it."
    )
    token_factor: float = Field(
        default=1.0,
        description="Tokens per English-equivalent token; scales max_tokens budgets.",
    )


class Culture(BaseModel):
    """A culture and the languages its dialogues may be written in."""

    id: str
    name: str
    native_name: str
    languages: list[str]
    aliases: list[str] = Field(default_factory=list)


class Registry(BaseModel):
    """Every known culture and language."""

    languages: dict[str, Language]
    cultures: dict[str, Culture]

    def culture(self, name: str) -> Culture | None:
        """Return the culture with this id or alias (case-insensitive), or None."""
        key = name.strip().casefold()
        for culture in self.cultures.values():
            names = [culture.id, culture.name, *culture.aliases]
            if key in (n.casefold() for n in names):
                return culture
        return None

    def language(self, code: str) -> Language | None:
        """Return the language with this code or English name, or None."""
        key = code.strip().casefold()
        for lang in self.languages.values():
            if key in (lang.code.casefold(), lang.name.casefold()):
                return lang
        return None


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(
            f"Could not read the culture registry {path}: {err}. "
            "Expected a JSON object with 'languages' and 'cultures'."
        ) from err


@cache
def load_registry(extra: Path | None = None) -> Registry:
    """Load the built-in registry and merge ``extra`` over it."""
    data = _read(BUILTIN_PATH)
    if extra is not None:
        more = _read(Path(extra))
        data["languages"].update(more.get("languages", {}))
        data["cultures"].update(more.get("cultures", {}))
    languages = {k: Language(code=k, **v) for k, v in data["languages"].items()}
    cultures = {k: Culture(id=k, **v) for k, v in data["cultures"].items()}
    for culture in cultures.values():
        unknown = [c for c in culture.languages if c not in languages]
        if unknown:
            raise ConfigError(
                f"Culture '{culture.id}' names unknown language(s) {unknown}; "
                f"known: {sorted(languages)}. Add them under 'languages'."
            )
    return Registry(languages=languages, cultures=cultures)
