"""The generation stages, each a plain function from pydantic records to records."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.cultures import Culture, Language
from pipeline.llm import LLMClient
from pipeline.settings import Settings


@dataclass(frozen=True)
class StageContext:
    """What every stage needs besides its records: the model, settings and locale."""

    llm: LLMClient
    settings: Settings
    culture: Culture
    language: Language

    def budget(self, english_tokens: int) -> int:
        """Scale an English token budget to the target language's tokenisation."""
        return int(english_tokens * self.language.token_factor)
