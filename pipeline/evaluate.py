"""How well the turn labeller agrees with gold turn labels, per culture.

Each gold dialogue is labelled by the same stage (``stages.labels.label_turns``)
that labels generated dialogues; its predicted norm labels are compared with the
gold ones turn by turn. Scores are computed here with pandas (scikit-learn is not
a dependency): accuracy, macro-F1 over the labels seen in gold or predictions, and
a confusion table of gold (rows) against predicted (columns) labels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from pipeline.cultures import Registry
from pipeline.errors import NormloomError
from pipeline.gold import GoldDialogue
from pipeline.llm import LLMClient
from pipeline.schemas import NormLabel, Participant, Scenario, SeedNorm, Turn
from pipeline.settings import Settings
from pipeline.stages import StageContext
from pipeline.stages.dialogues import MAX_TURNS
from pipeline.stages.labels import label_turns

logger = logging.getLogger(__name__)

LABELS = [label.value for label in NormLabel]
ALL = "all"


@dataclass
class CultureScores:
    """Agreement of predicted with gold labels over one culture's turns."""

    dialogues: int
    turns: int
    accuracy: float
    macro_f1: float
    confusion: pd.DataFrame

    def as_dict(self) -> dict:
        """Return the scores as plain data; confusion as gold -> predicted -> count."""
        return {
            "dialogues": self.dialogues,
            "turns": self.turns,
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "confusion": {
                gold: {pred: int(n) for pred, n in row.items()}
                for gold, row in self.confusion.iterrows()
            },
        }


@dataclass
class LabelEvaluation:
    """Scores per culture (and over all, under ``all``) and dialogues not labelled."""

    scores: dict[str, CultureScores] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Return the evaluation as plain data for ``--json``."""
        return {
            "scores": {c: s.as_dict() for c, s in self.scores.items()},
            "failed": self.failed,
        }


def predict_labels(gold: GoldDialogue, ctx: StageContext) -> list[NormLabel]:
    """Label a gold dialogue's turns with our labeller; return its norm labels."""
    turns = [Turn(speaker=t.speaker, text=t.text) for t in gold.turns]
    seed = SeedNorm(
        id=gold.id,
        culture=gold.culture,
        language=gold.language,
        category=gold.category,
        norm=gold.norm,
    )
    speakers = list(dict.fromkeys(t.speaker for t in gold.turns))
    # The labeller reads only the type and the sample; the rest is filled in so
    # that the scenario record is complete.
    scenario = Scenario(
        item_id=gold.id,
        seed_id=gold.id,
        type=gold.type,
        sample=0,
        scenario=gold.situation or gold.norm,
        situation=gold.situation or gold.norm,
        participants=[Participant(name=s, role="speaker") for s in (speakers * 2)[:2]],
        relation="as in the situation",
        setting="as in the situation",
    )
    return [t.labels.norm_label for t in label_turns(turns, scenario, seed, ctx)]


def evaluate_labels(
    gold: list[GoldDialogue],
    llm: LLMClient,
    settings: Settings,
    registry: Registry,
    on_done: Callable[[], None] | None = None,
) -> LabelEvaluation:
    """Label every gold dialogue and score the labels against the gold ones.

    Args:
        gold: Gold dialogues (``normloom seeds import --gold``).
        llm: The model that labels.
        settings: Settings; ``llm.concurrency`` dialogues are labelled at once.
        registry: Cultures and languages of the dialogues.
        on_done: Called after each dialogue, for a progress bar.

    Returns:
        Scores per culture and over all, and the dialogues that could not be
        labelled with the reason.
    """
    evaluation = LabelEvaluation()
    rows: list[tuple[str, str, str]] = []

    def one(dialogue: GoldDialogue) -> None:
        try:
            if len(dialogue.turns) > MAX_TURNS:
                raise NormloomError(
                    f"{len(dialogue.turns)} turns; the labeller takes {MAX_TURNS}"
                )
            culture, language = (
                registry.culture(dialogue.culture),
                registry.language(dialogue.language),
            )
            if culture is None or language is None:
                raise NormloomError(
                    f"culture '{dialogue.culture}' or language '{dialogue.language}' "
                    "is not in the registry"
                )
            predicted = predict_labels(
                dialogue, StageContext(llm, settings, culture, language)
            )
            rows.extend(
                (dialogue.culture, t.norm_label.value, p.value)
                for t, p in zip(dialogue.turns, predicted, strict=True)
            )
        except NormloomError as err:
            evaluation.failed[dialogue.id] = str(err)
        finally:
            if on_done is not None:
                on_done()

    with ThreadPoolExecutor(max_workers=max(1, settings.llm.concurrency)) as pool:
        list(pool.map(one, gold))

    frame = pd.DataFrame(rows, columns=["culture", "gold", "predicted"])
    counts = pd.Series([d.culture for d in gold if d.id not in evaluation.failed])
    for culture, group in frame.groupby("culture"):
        evaluation.scores[str(culture)] = score(group, int((counts == culture).sum()))
    if not frame.empty:
        evaluation.scores[ALL] = score(frame, len(counts))
    logger.info(
        "Labelled %d of %d gold dialogues; %d failed.",
        len(counts),
        len(gold),
        len(evaluation.failed),
    )
    return evaluation


def score(frame: pd.DataFrame, dialogues: int) -> CultureScores:
    """Score predicted against gold labels (columns ``gold`` and ``predicted``)."""
    confusion = pd.crosstab(frame["gold"], frame["predicted"]).reindex(
        index=LABELS, columns=LABELS, fill_value=0
    )
    seen = [
        label
        for label in LABELS
        if confusion.loc[label].sum() or confusion[label].sum()
    ]
    f1s = []
    for label in seen:
        true_pos = confusion.loc[label, label]
        gold_n, pred_n = confusion.loc[label].sum(), confusion[label].sum()
        f1s.append(2 * true_pos / (gold_n + pred_n) if gold_n + pred_n else 0.0)
    return CultureScores(
        dialogues=dialogues,
        turns=len(frame),
        accuracy=float((frame["gold"] == frame["predicted"]).mean()),
        macro_f1=float(sum(f1s) / len(f1s)) if f1s else 0.0,
        confusion=confusion,
    )
