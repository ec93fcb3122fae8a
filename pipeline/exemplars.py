"""The pool of expert exemplars and how the closest ones are chosen."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.errors import RowProblem, SeedError
from pipeline.schemas import DialogueType, Exemplar, SeedNorm, nfc
from pipeline.storage import read_records

log = logging.getLogger(__name__)


def load_exemplars(directory: Path) -> list[Exemplar]:
    """Read every ``*.jsonl`` file in ``directory`` as exemplars.

    Raises:
        SeedError: A line is not valid JSON or does not fit the Exemplar fields.
    """
    exemplars: list[Exemplar] = []
    problems: list[RowProblem] = []
    for path in sorted(Path(directory).glob("*.jsonl")):
        found, bad = read_records(path, Exemplar)
        exemplars.extend(found)
        problems.extend(bad)
    if problems:
        raise SeedError(problems)
    log.debug("Loaded %d exemplars from %s", len(exemplars), directory)
    return exemplars


def _grams(text: str) -> set[str]:
    text = nfc(text).casefold()
    return {text[i : i + 3] for i in range(max(1, len(text) - 2))}


def _similarity(a: str, b: str) -> float:
    ga, gb = _grams(a), _grams(b)
    return len(ga & gb) / len(ga | gb) if ga and gb else 0.0


def closest_exemplars(
    pool: list[Exemplar], seed: SeedNorm, dialogue_type: DialogueType, k: int
) -> list[Exemplar]:
    """Pick the ``k`` exemplars closest to a seed norm and dialogue type.

    Same culture and category come first, then same culture and type, then same
    culture, then the rest; ties are broken by character-trigram overlap of the norms.
    """

    def rank(ex: Exemplar) -> tuple:
        same_culture = ex.culture == seed.culture
        return (
            same_culture and ex.category == seed.category,
            same_culture and ex.type == dialogue_type,
            same_culture,
            ex.type == dialogue_type,
            _similarity(ex.norm, seed.norm),
        )

    return sorted(pool, key=rank, reverse=True)[:k]
