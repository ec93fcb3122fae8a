"""Small accepted dialogues in English, Chinese and Korean for the annotation tests."""

from __future__ import annotations

from pathlib import Path

import jsonlines

from pipeline.schemas import DialogueRecord

SPEAKERS = {"en": ("Amy", "Ben"), "zh": ("王芳", "李明"), "ko": ("김민수", "이지은")}
TEXTS = {
    "en": ["Could you help me with the report?", "Sure, happy to.", "Thank you!"],
    "zh": ["你能帮我看一下报告吗？", "当然可以。", "太感谢了！"],
    "ko": ["선배님, 보고서 좀 봐 주실 수 있어요?", "그럼요.", "감사합니다!"],
}
CULTURE = {"en": "us", "zh": "cn", "ko": "kr"}


def dialogue(lang: str, kind: str = "adherence", n: int = 3) -> DialogueRecord:
    """Return one accepted dialogue of ``n`` turns in a language."""
    a, b = SPEAKERS[lang]
    v2r_stages = ["violation", "recognition", "repair", "resolution"]
    turns = []
    for i in range(n):
        turns.append(
            {
                "index": i,
                "speaker": (a, b)[i % 2],
                "text": TEXTS[lang][i % 3] + ("" if i < 3 else f" ({i})"),
                "labels": {
                    "norm_label": "violated" if kind == "v2r" and i == 0 else "adhered",
                    "intent": ["QUE", "AGR", "THX"][i % 3],
                    "emotion": ["neutral", "joy", "gratitude"][i % 3],
                    "arc_stage": v2r_stages[min(i, 3)] if kind == "v2r" else None,
                    "rationale": f"Turn {i} keeps the request polite.",
                },
            }
        )
    return DialogueRecord.model_validate(
        {
            "id": f"{lang}-{kind}-{n}",
            "seed_id": f"{lang}-req",
            "culture": CULTURE[lang],
            "language": lang,
            "category": "request",
            "type": kind,
            "sample": 0,
            "norm": {
                "en": "Ask politely.",
                "zh": "礼貌地请求。",
                "ko": "공손하게 부탁한다.",
            }[lang],
            "scenario": f"A request at work ({lang}).",
            "situation": f"{a} asks {b} for help with a report before a deadline.",
            "participants": [
                {"name": a, "role": "junior"},
                {"name": b, "role": "senior"},
            ],
            "turns": turns,
            "judge": {
                "consistency": 5,
                "naturalness": 4,
                "relevance": 5,
                "coherence": 4,
                "emotion_appropriateness": 4,
                "norm_scale": 5 if kind == "adherence" else 3,
            },
            "verdict": "accepted",
            "model": "scripted-model",
        }
    )


def write_run(run_dir: Path, dialogues: list[DialogueRecord]) -> Path:
    """Write dialogues.jsonl of a run directory and return the directory."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with jsonlines.open(run_dir / "dialogues.jsonl", mode="w") as writer:
        writer.write_all(d.model_dump(mode="json") for d in dialogues)
    return run_dir
