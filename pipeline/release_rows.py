"""Release rows: accepted dialogues joined with the human labels of their turns.

A turn's published labels are the human ones where annotators answered and the LLM's
otherwise; ``label_source`` says which. The LLM's labels are kept beside them, so the
two can be compared. Annotations are read from ``<run>/annotations/`` when present.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ReleaseError
from pipeline.run_files import read_dialogues
from pipeline.schemas import (
    ArcStage,
    DialogueRecord,
    Emotion,
    Intent,
    LabelledTurn,
    NormLabel,
)
from pipeline.storage import read_jsonl

log = logging.getLogger(__name__)

LABELS = ("norm_label", "intent", "emotion", "arc_stage", "rationale")
JUDGE_AXES = (
    "consistency",
    "naturalness",
    "relevance",
    "coherence",
    "emotion_appropriateness",
    "norm_scale",
)
LABEL_VALUES = {
    "norm_label": [v.value for v in NormLabel],
    "intent": [v.value for v in Intent],
    "emotion": [v.value for v in Emotion],
    "arc_stage": [v.value for v in ArcStage],
}
HUMAN_DIALOGUE_SCORES = ("naturalness", "cultural_appropriateness")
HUMAN_DIALOGUE_CHECKS = ("norm_correct", "arc_matches")


@dataclass
class RunData:
    """What one run directory holds for a release."""

    path: Path
    dialogues: list[DialogueRecord]
    refinements: list[dict]
    turn_labels: dict[tuple[str, int], dict] = field(default_factory=dict)
    dialogue_labels: dict[str, dict] = field(default_factory=dict)
    agreement: dict | None = None


def check_run_dir(run_dir: Path) -> Path:
    """Return the run's dialogues.jsonl path.

    Raises:
        ReleaseError: The directory holds no dialogues.jsonl.
    """
    dialogues_path = Path(run_dir) / "dialogues.jsonl"
    if not dialogues_path.exists():
        raise ReleaseError(
            f"{run_dir} is not a normloom run: expected {dialogues_path}, found no "
            "such file. Pass the directory `normloom generate` wrote (runs/<id>)."
        )
    return dialogues_path


def load_run(run_dir: Path) -> RunData:
    """Read a run's accepted dialogues, refinements and any resolved annotations."""
    run_dir = Path(run_dir)
    dialogues_path = check_run_dir(run_dir)
    dialogues = read_dialogues(dialogues_path, ReleaseError)

    annotations = run_dir / "annotations"
    turn_labels = {
        (r["dialogue_id"], int(r["turn_index"])): r
        for r in read_jsonl(annotations / "resolved.jsonl")
    }
    dialogue_labels = {
        r["dialogue_id"]: r for r in read_jsonl(annotations / "dialogue_resolved.jsonl")
    }
    agreement_path = annotations / "agreement.json"
    agreement = None
    if agreement_path.exists():
        agreement = json.loads(agreement_path.read_text("utf-8"))
    log.debug(
        "%s: %d dialogues, %d human-labelled turns",
        run_dir,
        len(dialogues),
        len(turn_labels),
    )
    return RunData(
        path=run_dir,
        dialogues=dialogues,
        refinements=list(read_jsonl(run_dir / "refinements.jsonl")),
        turn_labels=turn_labels,
        dialogue_labels=dialogue_labels,
        agreement=agreement,
    )


def _turn_row(turn: LabelledTurn, human: dict | None) -> dict:
    llm = turn.labels.model_dump(mode="json")
    answered = human is not None and any(human.get(k) is not None for k in LABELS[:4])
    row = {"index": turn.index, "speaker": turn.speaker, "text": turn.text}
    for label in LABELS:
        # A question the annotators left open keeps the LLM's answer for that label.
        value = human.get(label) if answered else None
        if value is not None and label in LABEL_VALUES:
            value = _known(label, value, turn)
        row[label] = value if value is not None else llm[label]
    row["label_source"] = "human" if answered else "llm"
    row["n_annotators"] = int(human.get("n_annotators") or 0) if answered else 0
    row["tie"] = bool(human.get("tie")) if answered else None
    row.update({f"llm_{label}": llm[label] for label in LABELS[:4]})
    return row


def _known(label: str, value: object, turn: LabelledTurn) -> str | None:
    if value in LABEL_VALUES[label]:
        return str(value)
    log.warning(
        "Turn %d: human %s %r is none of %s; the LLM's label is kept",
        turn.index,
        label,
        value,
        ", ".join(LABEL_VALUES[label]),
    )
    return None


def _as_bool(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value).strip().lower()
    if text in {"yes", "true", "y", "1", "correct"}:
        return True
    if text in {"no", "false", "n", "0", "incorrect"}:
        return False
    return None


def _human_row(answers: dict | None) -> dict | None:
    if answers is None:
        return None
    row: dict = {
        k: None if answers.get(k) is None else float(answers[k])
        for k in HUMAN_DIALOGUE_SCORES
    }
    row.update({k: _as_bool(answers.get(k)) for k in HUMAN_DIALOGUE_CHECKS})
    row["n_annotators"] = int(answers.get("n_annotators") or 0)
    return row


def dialogue_row(record: DialogueRecord, run: RunData) -> dict:
    """Return the release row of one accepted dialogue."""
    turns = [
        _turn_row(t, run.turn_labels.get((record.id, t.index))) for t in record.turns
    ]
    judge = record.judge.model_dump(mode="json") if record.judge else None
    return {
        "id": record.id,
        "seed_id": record.seed_id,
        "culture": record.culture,
        "language": record.language,
        "category": record.category,
        "type": record.type.value,
        "sample": record.sample,
        "norm": record.norm,
        "scenario": record.scenario,
        "situation": record.situation,
        "participants": [p.model_dump(mode="json") for p in record.participants],
        "turns": turns,
        "judge": None if judge is None else {k: judge[k] for k in JUDGE_AXES},
        "judge_rationale": judge["rationale"] if judge else None,
        "human": _human_row(run.dialogue_labels.get(record.id)),
        "n_human_turns": sum(t["label_source"] == "human" for t in turns),
        "model": record.model,
        "run": run.path.name,
    }


def build_rows(runs: list[RunData]) -> list[dict]:
    """Return the release rows of every run, one per dialogue id, sorted by id.

    A dialogue id found in several runs is taken from the last run given.
    """
    rows: dict[str, dict] = {}
    for run in runs:
        for record in run.dialogues:
            if record.id in rows:
                log.info(
                    "%s: dialogue %s replaces an earlier copy", run.path, record.id
                )
            rows[record.id] = dialogue_row(record, run)
    return [rows[k] for k in sorted(rows)]
