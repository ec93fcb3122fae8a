"""Run directories for the release tests, written from the pipeline's own models."""

from __future__ import annotations

import json
from pathlib import Path

import jsonlines

from pipeline.schemas import (
    ArcStage,
    DialogueRecord,
    DialogueScores,
    DialogueType,
    Emotion,
    Intent,
    JudgeScores,
    LabelledTurn,
    NormLabel,
    Participant,
    Refinement,
    RefinementRound,
    TurnLabel,
    Verdict,
    stable_id,
)

CULTURES = [("us", "en"), ("cn", "zh"), ("kr", "ko")]
CATEGORIES = ["request", "thanks", "apology", "greeting"]
TEXT = {
    "en": ["Could you help me with this, please?", "Of course, happy to help."],
    "zh": ["请问您能帮我一下吗？", "当然可以，没问题。"],
    "ko": ["이것 좀 도와주실 수 있을까요?", "물론이죠, 기꺼이 도와드릴게요."],
}
V2R_ARC = [
    ArcStage.VIOLATION,
    ArcStage.RECOGNITION,
    ArcStage.REPAIR,
    ArcStage.RESOLUTION,
]


def _turns(kind: DialogueType, language: str) -> list[LabelledTurn]:
    turns = []
    for index in range(4):
        if kind is DialogueType.V2R:
            arc = V2R_ARC[index]
            norm = NormLabel.VIOLATED if index == 0 else NormLabel.ADHERED
        else:
            arc = None
            norm = (
                NormLabel.VIOLATED
                if kind is DialogueType.VIOLATION
                else NormLabel.ADHERED
            )
        turns.append(
            LabelledTurn(
                index=index,
                speaker="Alex" if index % 2 == 0 else "Sam",
                text=f"{TEXT[language][index % 2]} ({index})",
                labels=TurnLabel(
                    norm_label=norm,
                    intent=Intent.QUE if index % 2 == 0 else Intent.AGR,
                    emotion=Emotion.NEUTRAL if index else Emotion.JOY,
                    arc_stage=arc,
                    rationale="The speaker asks politely.",
                ),
            )
        )
    return turns


def make_record(
    seed_id: str, culture: str, language: str, category: str, kind, sample=0
):
    """Return one accepted dialogue record."""
    return DialogueRecord(
        id=stable_id(seed_id, kind.value, sample),
        seed_id=seed_id,
        culture=culture,
        language=language,
        category=category,
        type=kind,
        sample=sample,
        norm=f"Norm {seed_id}: ask before you take.",
        scenario="Two colleagues at the office.",
        situation="Alex needs help with a report; Sam is busy.",
        participants=[
            Participant(name="Alex", role="junior"),
            Participant(name="Sam", role="senior"),
        ],
        turns=_turns(kind, language),
        judge=DialogueScores(
            consistency=4,
            naturalness=3 + sample % 3,
            relevance=5,
            coherence=4,
            emotion_appropriateness=4,
            norm_scale={"adherence": 5, "violation": 1, "v2r": 3}[kind.value],
            rationale="Fine.",
        ),
        verdict=Verdict.ACCEPTED,
        model="fixture-model",
    )


def seed_ids(n_norms: int) -> list[tuple[str, str, str, str]]:
    """Return ``n_norms`` (seed id, culture, language, category) tuples."""
    return [
        (
            f"{CULTURES[i % 3][0]}-{CATEGORIES[i % 4]}-{i}",
            *CULTURES[i % 3],
            CATEGORIES[i % 4],
        )
        for i in range(n_norms)
    ]


def write_run(
    run_dir: Path, n_norms: int = 12, per_norm: int = 1, first: int = 0
) -> list[DialogueRecord]:
    """Write a run directory with every type for each norm; return its dialogues."""
    run_dir.mkdir(parents=True, exist_ok=True)
    records = [
        make_record(seed, culture, language, category, kind, sample)
        for seed, culture, language, category in seed_ids(first + n_norms)[first:]
        for kind in DialogueType
        for sample in range(per_norm)
    ]
    refinements = [
        Refinement(
            item_id=r.id,
            rounds=[
                RefinementRound(
                    round=n,
                    situation=f"Situation, round {n}.",
                    scores=JudgeScores(
                        task_relevance=2 + n,
                        linguistic_quality=3 + n,
                        semantic_preservation=3,
                    ),
                )
                for n in range(3)
            ],
            final_situation="Situation, round 2.",
            converged=True,
        )
        for r in records
    ]
    for name, rows in (("dialogues", records), ("refinements", refinements)):
        with jsonlines.open(run_dir / f"{name}.jsonl", mode="w") as writer:
            writer.write_all(x.model_dump(mode="json") for x in rows)
    for name in ("seeds", "scenarios", "rejected"):
        (run_dir / f"{name}.jsonl").touch()
    return records


def write_annotations(run_dir: Path, records: list[DialogueRecord]) -> None:
    """Write collect-annotations' files: human answers for the first turn of each."""
    directory = run_dir / "annotations"
    directory.mkdir(exist_ok=True)
    turns = [
        {
            "dialogue_id": r.id,
            "turn_index": 0,
            "norm_label": "not_relevant",
            "intent": "ACK",
            "emotion": "neutral",
            "arc_stage": r.turns[0].labels.arc_stage,
            "rationale": "An annotator's reading.",
            "n_annotators": 2,
            "tie": False,
            "source": "human",
        }
        for r in records
    ]
    dialogues = [
        {
            "dialogue_id": r.id,
            "naturalness": 4,
            "cultural_appropriateness": 5,
            "norm_correct": True,
            "arc_matches": "yes",
            "n_annotators": 2,
        }
        for r in records
    ]
    for name, rows in (("resolved", turns), ("dialogue_resolved", dialogues)):
        with jsonlines.open(directory / f"{name}.jsonl", mode="w") as writer:
            writer.write_all(json.loads(json.dumps(rows, default=str)))
    agreement = {
        "alpha": {
            "norm_label": 0.61,
            "intent": 0.42,
            "emotion": None,
            "naturalness": 0.3,
        },
        "human_llm": {
            "norm_label": {"agreement": 0.5, "n": len(records), "confusion": {}},
            "intent": {"agreement": 0.25, "n": len(records), "confusion": {}},
        },
        "n_records": len(records),
        "n_responses": 2 * len(records),
    }
    (directory / "agreement.json").write_text(json.dumps(agreement), "utf-8")
