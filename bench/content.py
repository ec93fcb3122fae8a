"""Valid replies for every stage, written without a model.

The stage is read from the requested schema name and the language from the prompt;
dialogues are short ones of our own in English, Chinese or Korean. The scripted test
server and the simulator both answer with this content, so whole runs can be tested
and measured without a real model.
"""

from __future__ import annotations

import random
import re

EXTRA = {
    "violation": {
        "en": [
            "Hey, I need the deadline moved, I was too busy with other stuff.",
            "That is rather abrupt, the deadline was announced weeks ago.",
            "Well, everyone else gets extensions, so just give me one too.",
            "I will think about it, but I do not like this tone at all.",
            "Whatever, I will just hand it in whenever it is ready then.",
            "Then I cannot promise it will be graded on time, Jordan.",
        ],
        "zh": [
            "老王，我下周一不来上课了，跟你说一声。",
            "你怎么这样跟老师说话？请假要先写假条。",
            "写什么假条啊，别的同学都不写，我也不写。",
            "你这种态度我很不满意，明天让家长来一趟。",
            "随便吧，反正我下周一就是不来了。",
            "那这件事我只能按旷课处理了。",
        ],
        "ko": [
            "야, 이 발표 자료 좀 내일까지 봐 줘.",
            "갑자기 반말을 하니까 좀 당황스럽네.",
            "뭐 어때, 우리 같은 팀이잖아. 그냥 봐 주면 되지.",
            "그래도 부탁할 때는 예의를 좀 지켜 줬으면 좋겠어.",
            "알았어, 알았어. 아무튼 내일까지 꼭 줘.",
            "글쎄, 시간이 될지 모르겠다.",
        ],
    },
    "v2r": {
        "en": [
            "Professor, hi. So, I need the essay deadline pushed back, okay?",
            "Jordan, that sounds more like a demand than a request.",
            "You are right, I am sorry, that came out far too bluntly.",
            "Let me ask properly: could I possibly have two more days?",
            "Thank you for rephrasing it, yes, Friday evening is fine.",
            "I appreciate it, and I will be more careful how I ask.",
        ],
        "zh": [
            "老王，我下周一要请假，就这样吧。",
            "小李，你跟老师说话的语气是不是不太合适？",
            "对不起王老师，是我太没礼貌了，我向您道歉。",
            "王老师，请问我下周一能不能请一天假回家看奶奶？",
            "这样说就对了，家里有事，老师批准了。",
            "谢谢老师原谅我，以后我一定注意说话的方式。",
        ],
        "ko": [
            "선배, 이거 발표 자료 내일까지 봐 줘.",
            "민지 씨, 말투가 조금 당황스러운데요.",
            "아, 죄송합니다 선배님. 제가 너무 무례했어요.",
            "혹시 시간 괜찮으시면 자료를 한 번 봐 주실 수 있을까요?",
            "그렇게 말해 주니 좋네요. 내일 오후에 같이 봐요.",
            "감사합니다, 앞으로는 더 조심하겠습니다.",
        ],
    },
}
LINES = {
    "en": [
        "Good morning, Professor Miller, do you have a moment to talk?",
        "Of course, Jordan, come in and have a seat please.",
        "I wanted to ask politely whether I could have two more days for my essay.",
        "Thank you for asking early, that is very considerate of you.",
        "I really appreciate your understanding, it means a lot to me.",
        "You are welcome, just send it to me by Friday evening.",
    ],
    "zh": [
        "王老师您好，请问您现在方便说几句话吗？",
        "当然可以，小李，你先坐下慢慢说。",
        "我想请问能不能下周一请一天假回家看看奶奶。",
        "家里的事情要紧，你提前告诉我做得很好。",
        "谢谢老师理解，我会把落下的功课补上的。",
        "好的，路上注意安全，回来后记得找我报到。",
    ],
    "ko": [
        "선배님, 혹시 지금 잠깐 시간 괜찮으세요?",
        "응, 괜찮아. 무슨 일인데 그렇게 조심스럽게 물어봐?",
        "다음 주 발표 자료를 한 번만 봐 주실 수 있을까 해서요.",
        "그럼, 내일 오후에 같이 보면 되겠다.",
        "정말 감사합니다, 선배님 덕분에 마음이 놓여요.",
        "별말씀을, 언제든지 편하게 물어봐도 돼.",
    ],
}
NAMES = {
    "en": ("Jordan", "Professor Miller"),
    "zh": ("小李", "王老师"),
    "ko": ("민지", "준호 선배"),
}
SITUATION = {
    "en": "Jordan is a second-year student. Professor Miller teaches the seminar. "
    "They meet in her office before the essay deadline. Jordan needs more time.",
    "zh": "小李是一名高二学生。王老师是他的班主任。他们在办公室见面。小李需要请假。",
    "ko": "민지는 입사 일 년 차 사원이다. 준호는 같은 팀의 선배이다. 두 사람은 "
    "사무실 휴게실에서 만난다. 민지는 발표 자료에 대해 도움이 필요하다.",
}
# Distinct sub-norms per language, so that growth keeps them all.
GROWN = {
    "en": [
        "When asking a teacher for an extension, explain the reason first.",
        "Ask a close friend for a ride casually, but offer to pay for gas.",
        "A stranger asked for directions should be addressed as sir or madam.",
    ],
    "zh": [
        "向老师请假时，要先说明原因。",
        "请好朋友帮忙搬家，事后请他吃饭。",
        "向陌生人问路时，先说“您好，打扰一下”。",
    ],
    "ko": [
        "선생님께 마감 연장을 부탁할 때는 먼저 이유를 말씀드린다.",
        "친한 친구에게 차를 태워 달라고 할 때는 기름값을 내겠다고 한다.",
        "모르는 사람에게 길을 물을 때는 '실례합니다'로 시작한다.",
    ],
}
ARC = ["violation", "recognition", "repair", "repair", "resolution", "resolution"]


def _prompt_text(request: dict) -> str:
    return "\n".join(str(m.get("content", "")) for m in request["messages"])


def language_of(request: dict) -> str:
    """Guess the target language from the prompt text."""
    text = _prompt_text(request)
    if "한국어" in text:
        return "ko"
    if "简体中文" in text or "中文" in text:
        return "zh"
    return "en"


def dialogue_type(request: dict) -> str:
    """Read the dialogue type named in the prompt."""
    text = _prompt_text(request)
    for kind in ("v2r", "violation", "adherence"):
        if f"type: {kind}" in text:
            return kind
    if "breaks this norm, then notices" in text or "four stages" in text:
        return "v2r"
    if "breaks this norm" in text or "clearly breaks the norm" in text:
        return "violation"
    return "adherence"


def stage_of(request: dict) -> str:
    """Return the reply schema name the request asks for ("" when it names none)."""
    fmt = request.get("response_format") or {}
    return (fmt.get("json_schema") or {}).get("name", "")


def reply_data(
    request: dict, judge_scale: int | None = None, vary: random.Random | None = None
) -> dict | None:
    """Return a valid reply object for a request of any stage; None for an unknown one.

    Args:
        request: The chat-completions request body.
        judge_scale: The judge's norm scale; by default the one that fits the type.
        vary: Draw each dialogue's six turns from every line of its language with
            this generator, as a sampling model would, so that a large run is not
            all near-duplicates.
    """
    lang, stage = language_of(request), stage_of(request)
    kind = dialogue_type(request)
    a, b = NAMES[lang]
    if stage == "ScenarioReply":
        return {
            "scenario": SITUATION[lang].split(".")[0][:80],
            "situation": SITUATION[lang],
            "participants": [
                {"name": a, "role": "junior"},
                {"name": b, "role": "senior"},
            ],
            "relation": "student and teacher",
            "setting": "an office",
        }
    if stage == "SituationScoreReply":
        return {
            "task_relevance": 5,
            "linguistic_quality": 4,
            "semantic_preservation": 5,
            "feedback": "Fine.",
        }
    if stage == "RevisionReply":
        return {"situation": SITUATION[lang]}
    if stage == "DialogueReply":
        lines = vary.sample(_pool(lang), 6) if vary else None
        lines = lines or EXTRA.get(kind, {}).get(lang) or LINES[lang]
        return {
            "turns": [
                {"speaker": (a, b)[i % 2], "text": t} for i, t in enumerate(lines)
            ]
        }
    if stage == "LabelsReply":
        n = len(re.findall(r"\[\d+\]", request["messages"][-1]["content"]))
        return {"labels": [_label(i, kind) for i in range(n)]}
    if stage == "JudgeReply":
        scale = judge_scale or {"adherence": 5, "violation": 1, "v2r": 3}[kind]
        return {
            "consistency": 5,
            "naturalness": 4,
            "relevance": 5,
            "coherence": 4,
            "emotion_appropriateness": 4,
            "norm_scale": scale,
            "rationale": "Fits the norm.",
        }
    if stage == "GrowReply":
        text = request["messages"][-1]["content"]
        n = len(re.findall(r"^\[\d+\] tone:", text, re.M))
        return {
            "norms": [
                {"index": i, "norm": GROWN[lang][i % 3], "setting": "school"}
                for i in range(n)
            ]
        }
    if stage == "GrowJudgeReply":
        n = len(
            re.findall(r"^\[\d+\] <data>", request["messages"][-1]["content"], re.M)
        )
        return {
            "verdicts": [
                {"index": i, "valid": True, "reason": "Fine."} for i in range(n)
            ]
        }
    return None


def _pool(lang: str) -> list[str]:
    """Return every scripted line of a language."""
    return LINES[lang] + [line for k in EXTRA.values() for line in k[lang]]


def _label(i: int, kind: str) -> dict:
    if kind == "adherence":
        norm, stage = "adhered", None
    elif kind == "violation":
        norm, stage = ("violated" if i == 0 else "not_relevant"), None
    else:
        stage = ARC[min(i, len(ARC) - 1)]
        norm = "violated" if stage == "violation" else "adhered"
    return {
        "index": i,
        "norm_label": norm,
        "intent": "none",
        "emotion": "neutral",
        "arc_stage": stage,
        "rationale": "Scripted label.",
    }
