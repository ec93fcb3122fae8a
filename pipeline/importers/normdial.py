"""NormDial (EMNLP 2023): labelled dialogues per culture, type and category.

Files sit at ``<Culture>/<adherence|violation>/<category>/cleaned_dialogue.csv``.
American files have the columns (unnamed index), American_Norm,
American_Situation, Labeled_Dialogue; Chinese ones (unnamed index), Norm,
Situation, cn_Norm, cn_Situation, Labeled_Dialogue. Chinese seeds take the Chinese
norm and situation.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.errors import RowProblem
from pipeline.importers.base import (
    FileBatch,
    ImportContext,
    first_sentence,
    map_category,
    new_draft,
    place_culture,
    read_table,
    strip_prefix,
)
from pipeline.schemas import NormLabel, nfc

NAME = "normdial"
TYPES = ("adherence", "violation")
NORM_PREFIXES = ("Norm:", "规范：", "规范:")
SITUATION_PREFIXES = ("Situation:", "情境：", "情境:", "情景：", "情景:")

LABELS = {
    "adhered": NormLabel.ADHERED,
    "adhere": NormLabel.ADHERED,
    "violated": NormLabel.VIOLATED,
    "violate": NormLabel.VIOLATED,
    "not relevant": NormLabel.NOT_RELEVANT,
    "not-relevant": NormLabel.NOT_RELEVANT,
    "irrelevant": NormLabel.NOT_RELEVANT,
    "遵守": NormLabel.ADHERED,
    "符合": NormLabel.ADHERED,
    "违反": NormLabel.VIOLATED,
    "违背": NormLabel.VIOLATED,
    "不相关": NormLabel.NOT_RELEVANT,
    "无关": NormLabel.NOT_RELEVANT,
}
_LABEL = "|".join(sorted((re.escape(k) for k in LABELS), key=len, reverse=True))
# Alice: Hi there! <Adhered> | She greets first.
AMERICAN_TURN = re.compile(
    rf"^(?P<speaker>[^:：()（）]{{1,60}})[:：]\s*(?P<text>.+?)\s*"
    rf"[<\[(（]?\s*(?P<label>{_LABEL})\s*[>\])）]?\s*(?:[|｜]\s*(?P<why>.*))?$",
    re.I,
)
# (小明: 您好): <Adhered> | 他先问好。 -- the colons are sometimes full-width.
CHINESE_TURN = re.compile(
    rf"^[(（]\s*(?P<speaker>[^:：]{{1,60}}?)\s*[:：]\s*(?P<text>.+)[)）]\s*[:：]?\s*"
    rf"[<\[(（]?\s*(?P<label>{_LABEL})\s*[>\])）]?\s*(?:[|｜]\s*(?P<why>.*))?$",
    re.I,
)


# A heading line some cells start with, before the first turn.
HEADING = re.compile(
    r"^(dialogue|conversation|labeled dialogue|对话|对话内容)\s*[:：]?$", re.I
)


def detect(path: Path, header: list[str]) -> bool:
    """Tell a NormDial CSV by its Labeled_Dialogue and norm columns."""
    return "labeled dialogue" in header and (
        "american norm" in header or "cn norm" in header
    )


def read(path: Path, ctx: ImportContext) -> FileBatch:
    """Draft one seed per row; its dialogue becomes an exemplar and a gold dialogue."""
    table = read_table(path)
    batch = FileBatch.of_table(table)
    chinese = "cn norm" in table.header
    place, kind, category = _from_path(path, chinese)
    culture = place_culture(place, ctx, ctx.name, 1, "(path)", batch)
    if culture is None:
        return batch
    if category is None:
        category = "general"
        batch.warnings.append(
            RowProblem(
                ctx.name,
                1,
                "(path)",
                "no <category> folder above the file; category 'general' used",
            )
        )

    for line, row in table.rows:
        index = nfc(row.get("", "") or row.get("unnamed: 0", "")) or str(line)
        norm, situation, notes = _texts(row, chinese)
        if not norm:
            column = "cn_Norm" if chinese else "American_Norm"
            batch.skip(ctx.name, line, column, "the norm is empty")
            continue

        draft = new_draft(
            ctx,
            line,
            culture.id,
            culture.languages[0],
            id=f"normdial-{culture.id}-{kind or 'x'}-{category}-{index}",
            category=map_category(category),
            norm=norm,
            setting=situation,
            notes=notes,
            source_id=index,
        )
        turns, bad = parse_turns(row.get("labeled dialogue", ""))
        if bad:
            batch.warnings.append(
                RowProblem(
                    ctx.name,
                    line,
                    "Labeled_Dialogue",
                    f"turn line {bad!r} is not 'Speaker: text <label> | rationale'; "
                    "seed imported, dialogue left out of exemplars and gold",
                )
            )
        elif turns:
            dialogue_type = kind or _type_of(turns)
            if situation:
                draft.exemplar = {
                    "type": dialogue_type,
                    "scenario": first_sentence(situation),
                    "situation": situation,
                }
            draft.gold = {"type": dialogue_type, "situation": situation, "turns": turns}
        batch.drafts.append(draft)
    return batch


def parse_turns(text: str) -> tuple[list[dict], str | None]:
    """Split a Labeled_Dialogue cell into labelled turns.

    Returns:
        The turns (speaker, text, norm_label, rationale), and the first line that
        fits neither the American nor the Chinese turn format (None when all do).
    """
    turns: list[dict] = []
    for raw in re.split(r"\r\n|\r|\n", text):
        line = nfc(raw)
        if not line or (not turns and HEADING.match(line)):
            continue
        match = CHINESE_TURN.match(line) or AMERICAN_TURN.match(line)
        if match is None:
            return turns, line[:80]
        turns.append(
            {
                "index": len(turns),
                "speaker": nfc(match["speaker"]),
                "text": nfc(match["text"]),
                "norm_label": LABELS[match["label"].casefold()],
                "rationale": nfc(match["why"] or ""),
            }
        )
    return turns, None


def _texts(row: dict[str, str], chinese: bool) -> tuple[str, str, str]:
    """Return the norm, situation and notes of a row, without their labels.

    Chinese rows take the Chinese text and keep the English norm in the notes; a
    row without Chinese text takes the English one and says so.
    """
    if not chinese:
        norm = strip_prefix(row.get("american norm", ""), *NORM_PREFIXES)
        situation = strip_prefix(row.get("american situation", ""), *SITUATION_PREFIXES)
        return norm, situation, ""
    english = strip_prefix(row.get("norm", ""), *NORM_PREFIXES)
    norm = strip_prefix(row.get("cn norm", ""), *NORM_PREFIXES)
    situation = strip_prefix(row.get("cn situation", ""), *SITUATION_PREFIXES)
    if norm or not english:
        return norm, situation, f"English norm: {english}" if english else ""
    situation = situation or strip_prefix(row.get("situation", ""), *SITUATION_PREFIXES)
    return english, situation, "No Chinese norm in the source; the English one is used."


def _from_path(path: Path, chinese: bool) -> tuple[str, str | None, str | None]:
    """Read culture, type and category from ``<Culture>/<type>/<category>/file``."""
    parts = [p.lower() for p in path.resolve().parts]
    for i, part in enumerate(parts):
        if part in TYPES and 0 < i < len(parts) - 2:
            original = path.resolve().parts
            return original[i - 1], part, original[i + 1]
    return ("Chinese" if chinese else "American"), None, None


def _type_of(turns: list[dict]) -> str:
    """Guess adherence or violation from the labels when the path does not say."""
    violated = any(t["norm_label"] is NormLabel.VIOLATED for t in turns)
    return "violation" if violated else "adherence"
