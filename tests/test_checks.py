"""Tests of the rule checks on short hand-written dialogues."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from pipeline.checks import (
    DuplicateIndex,
    check_arc,
    check_language,
    check_repetition,
    check_speakers,
    check_turn_count,
    dialogue_text,
    failed_reasons,
    run_rule_checks,
)
from pipeline.cultures import load_registry
from pipeline.schemas import (
    ArcStage,
    DialogueType,
    Emotion,
    Intent,
    LabelledTurn,
    NormLabel,
    TurnLabel,
)
from pipeline.settings import CheckSettings, GenerationSettings

A, V, N = NormLabel.ADHERED, NormLabel.VIOLATED, NormLabel.NOT_RELEVANT

ENGLISH = [
    "Hi Mr. Park, thank you for inviting me to dinner tonight.",
    "You are very welcome, please come in and sit down.",
    "I brought a small gift for your family.",
    "That is very kind of you, you really did not have to.",
    "Shall we start eating now?",
    "Let us wait until my grandmother picks up her spoon first.",
]
KOREAN = [
    "안녕하세요, 오늘 저녁에 초대해 주셔서 감사합니다.",
    "어서 오세요, 편하게 앉으세요.",
    "가족분들께 드릴 작은 선물을 가져왔어요.",
    "정말 친절하시네요, 안 그러셔도 되는데요.",
    "이제 먹기 시작할까요?",
    "할머니께서 먼저 숟가락을 드실 때까지 기다려 주세요.",
]
CHINESE = [
    "王老师，您好，谢谢您今天请我吃饭。",
    "不客气，快请进，随便坐。",
    "我给您家里人带了一点小礼物。",
    "你太客气了，其实不用带东西的。",
    "我们现在开始吃吧？",
    "等一下，让爷爷先动筷子。",
]
JAPANESE = [
    "王先生、こんにちは。今日はお招きいただきありがとうございます。",
    "どういたしまして、どうぞお入りください。",
    "ご家族にちょっとしたお土産を持ってきました。",
    "そんなに気を遣わなくてもよかったのに。",
    "そろそろ食べ始めましょうか？",
]


def make_turns(
    texts: list[str],
    labels: list[tuple[NormLabel, Intent, ArcStage | None]] | None = None,
) -> list[LabelledTurn]:
    """Return labelled turns of ``texts``, alternating two speakers."""
    labels = labels or [(N, Intent.NONE, None)] * len(texts)
    return [
        LabelledTurn(
            speaker="Min" if i % 2 == 0 else "Jun",
            text=text,
            index=i,
            labels=TurnLabel(
                norm_label=norm,
                intent=intent,
                emotion=Emotion.NEUTRAL,
                arc_stage=stage,
                rationale="test",
            ),
        )
        for i, (text, (norm, intent, stage)) in enumerate(
            zip(texts, labels, strict=True)
        )
    ]


def labelled(
    labels: list[tuple[NormLabel, Intent, ArcStage | None]],
) -> list[LabelledTurn]:
    """Return English turns carrying ``labels``."""
    texts = [f"Line number {i} of the dialogue." for i in range(len(labels))]
    return make_turns(texts, labels)


@pytest.fixture
def registry():
    return load_registry()


# --- turn count ---


@pytest.mark.parametrize(
    ("count", "passed"), [(4, False), (5, True), (15, True), (16, False)]
)
def test_turn_count_bounds_are_inclusive(count: int, passed: bool) -> None:
    turns = make_turns([f"Turn {i} here." for i in range(count)])

    result = check_turn_count(turns, GenerationSettings())

    assert result.name == "turn_count"
    assert result.passed is passed
    if not passed:
        assert result.detail == f"{count} turns, expected 5 to 15"


# --- language ---


def test_english_dialogue_fails_korean_and_names_every_turn(registry) -> None:
    result = check_language(
        make_turns(ENGLISH), registry.language("ko"), CheckSettings()
    )

    assert result.name == "language"
    assert not result.passed
    assert result.detail.startswith("0/6 turns in Korean")
    for i in range(6):
        assert f"turn {i} (HANGUL 0%, detected English)" in result.detail


def test_korean_dialogue_passes_korean(registry) -> None:
    result = check_language(
        make_turns(KOREAN), registry.language("ko"), CheckSettings()
    )

    assert result.passed
    assert result.detail == "6/6 turns in Korean"


def test_chinese_dialogue_passes_chinese(registry) -> None:
    result = check_language(
        make_turns(CHINESE), registry.language("zh"), CheckSettings()
    )

    assert result.passed
    assert result.detail == "6/6 turns in Chinese"


def test_japanese_kana_fails_chinese(registry) -> None:
    result = check_language(
        make_turns(JAPANESE), registry.language("zh"), CheckSettings()
    )

    assert not result.passed
    assert result.detail.startswith("0/5 turns in Chinese")
    assert "turn 0 (CJK" in result.detail
    assert "detected Japanese" in result.detail


def test_kanji_heavy_japanese_fails_chinese_on_detection(registry) -> None:
    # 78% CJK ideographs, so the script test alone would let it through.
    text = "明日午前十時、本社会議室で営業報告会を開催します。"
    turns = make_turns([CHINESE[0], text])

    result = check_language(turns, registry.language("zh"), CheckSettings())

    assert (
        result.detail
        == "1/2 turns in Chinese; not: turn 1 (CJK 78%, detected Japanese)"
    )
    assert not result.passed


def test_one_english_turn_in_six_passes_only_up_to_five_sixths(registry) -> None:
    texts = [*KOREAN[:5], ENGLISH[5]]
    turns = make_turns(texts)
    ko = registry.language("ko")

    at_080 = check_language(turns, ko, CheckSettings(min_language_share=0.8))
    at_five_sixths = check_language(turns, ko, CheckSettings(min_language_share=5 / 6))
    at_085 = check_language(turns, ko, CheckSettings(min_language_share=0.85))

    assert at_080.passed is True
    assert at_five_sixths.passed is True
    assert at_085.passed is False
    assert at_080.detail == (
        "5/6 turns in Korean; not: turn 5 (HANGUL 0%, detected English)"
    )


def test_very_short_turns_count_on_script_only(registry) -> None:
    ko = registry.language("ko")
    turns = make_turns([*KOREAN[:4], "네.", "OK"])

    result = check_language(turns, ko, CheckSettings(min_language_share=1.0))

    assert (
        result.detail
        == "5/6 turns in Korean; not: turn 5 (HANGUL 0%, detected nothing)"
    )


# --- arc ---

V2R_IN_ORDER = [
    (N, Intent.NONE, ArcStage.SETUP),
    (V, Intent.CRT, ArcStage.VIOLATION),
    (N, Intent.QUE, ArcStage.RECOGNITION),
    (A, Intent.APO, ArcStage.REPAIR),
    (A, Intent.THX, ArcStage.RESOLUTION),
]


def test_v2r_in_order_passes() -> None:
    result = check_arc(labelled(V2R_IN_ORDER), DialogueType.V2R)

    assert result.name == "arc"
    assert result.passed
    assert result.detail == ""


def test_v2r_with_repeated_stages_passes() -> None:
    labels = [
        (V, Intent.JUS, ArcStage.VIOLATION),
        (V, Intent.DIS, ArcStage.VIOLATION),
        (N, Intent.QUE, ArcStage.RECOGNITION),
        (A, Intent.APO, ArcStage.REPAIR),
        (A, Intent.APO, ArcStage.REPAIR),
        (A, Intent.THX, ArcStage.RESOLUTION),
    ]

    assert check_arc(labelled(labels), DialogueType.V2R).passed


def test_v2r_missing_recognition_fails_naming_it() -> None:
    labels = [x for x in V2R_IN_ORDER if x[2] != ArcStage.RECOGNITION]

    result = check_arc(labelled(labels), DialogueType.V2R)

    assert not result.passed
    assert result.detail == "v2r arc lacks 'recognition' after 'violation'"


def test_v2r_recognition_before_violation_is_out_of_order() -> None:
    labels = [
        (N, Intent.QUE, ArcStage.RECOGNITION),
        (V, Intent.CRT, ArcStage.VIOLATION),
        (A, Intent.APO, ArcStage.REPAIR),
        (A, Intent.THX, ArcStage.RESOLUTION),
    ]

    result = check_arc(labelled(labels), DialogueType.V2R)

    assert result.detail == "v2r arc lacks 'recognition' after 'violation'"


def test_v2r_without_violated_label_before_repair_fails() -> None:
    labels = [(N, i, s) for _, i, s in V2R_IN_ORDER]

    result = check_arc(labelled(labels), DialogueType.V2R)

    assert not result.passed
    assert result.detail == (
        "v2r arc has no turn labelled violated before the first 'repair' (turn 3)"
    )


def test_violation_with_later_repair_fails() -> None:
    labels = [
        (N, Intent.NONE, None),
        (V, Intent.CRT, None),
        (N, Intent.DIS, None),
        (A, Intent.APO, None),
        (N, Intent.ACK, None),
    ]

    result = check_arc(labelled(labels), DialogueType.VIOLATION)

    assert not result.passed
    assert result.detail == (
        "violation dialogue is repaired after the violation at turn 1: turn(s) 3"
    )


def test_violation_without_repair_passes() -> None:
    labels = [
        (N, Intent.NONE, None),
        (V, Intent.CRT, None),
        (N, Intent.DIS, None),
        (V, Intent.JUS, None),
        (N, Intent.ACK, None),
    ]

    assert check_arc(labelled(labels), DialogueType.VIOLATION).passed


def test_violation_with_no_violated_turn_fails() -> None:
    labels = [(A, Intent.AGR, None)] * 5

    result = check_arc(labelled(labels), DialogueType.VIOLATION)

    assert result.detail == "violation dialogue has no turn labelled violated"


def test_adherence_with_a_violated_turn_fails() -> None:
    labels = [
        (A, Intent.THX, None),
        (N, Intent.QUE, None),
        (V, Intent.CRT, None),
        (A, Intent.AGR, None),
        (N, Intent.ACK, None),
    ]

    result = check_arc(labelled(labels), DialogueType.ADHERENCE)

    assert not result.passed
    assert result.detail == "adherence dialogue has violated turn(s) 2"


def test_adherence_without_adhered_turn_fails() -> None:
    result = check_arc(labelled([(N, Intent.ACK, None)] * 5), DialogueType.ADHERENCE)

    assert result.detail == "adherence dialogue has no turn labelled adhered"


# --- near duplicates ---


def test_near_copy_with_one_word_changed_is_flagged() -> None:
    index = DuplicateIndex(CheckSettings())
    index.add("first", dialogue_text(make_turns(ENGLISH)))
    changed = [*ENGLISH]
    changed[2] = changed[2].replace("small", "little")

    result = index.check("second", dialogue_text(make_turns(changed)))

    assert result.name == "near_duplicate"
    assert not result.passed
    assert "near duplicate of 'first'" in result.detail
    assert len(index) == 1


def test_unrelated_dialogue_passes_and_is_added() -> None:
    index = DuplicateIndex(CheckSettings())
    index.add("first", dialogue_text(make_turns(ENGLISH)))

    result = index.check("second", dialogue_text(make_turns(KOREAN)))

    assert result.passed
    assert len(index) == 2


def test_korean_copy_with_other_whitespace_is_flagged() -> None:
    index = DuplicateIndex(CheckSettings())
    assert index.check("a", dialogue_text(make_turns(KOREAN))).passed

    spaced = "\n\n".join(t.replace(" ", "   ") for t in KOREAN)
    result = index.check("b", spaced)

    assert not result.passed
    assert "'a'" in result.detail


def test_same_key_again_is_not_its_own_duplicate() -> None:
    index = DuplicateIndex(CheckSettings())
    text = dialogue_text(make_turns(CHINESE))

    assert index.check("item", text).passed
    assert index.check("item", text).passed
    assert len(index) == 1


def test_identical_texts_checked_from_many_threads_pass_once() -> None:
    index = DuplicateIndex(CheckSettings())
    text = dialogue_text(make_turns(CHINESE))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda k: index.check(f"k{k}", text), range(32)))

    assert sum(r.passed for r in results) == 1
    assert len(index) == 1


# --- all together ---


def test_run_rule_checks_skips_duplicates_for_rejected_dialogues(registry) -> None:
    index = DuplicateIndex(CheckSettings())
    en = registry.language("en")
    labels = [(A, Intent.THX, None)] + [(N, Intent.ACK, None)] * 5
    good = make_turns(ENGLISH, labels)
    bad = make_turns(ENGLISH[:4], labels[:4])
    args = (DialogueType.ADHERENCE, en, GenerationSettings(), CheckSettings(), index)

    rejected = run_rule_checks(bad, *args, key="bad")
    accepted = run_rule_checks(good, *args, key="good")
    copy = run_rule_checks(good, *args, key="copy")

    assert [r.name for r in rejected] == ["turn_count", "language", "arc", "repetition"]
    assert failed_reasons(rejected) == ["turn_count: 4 turns, expected 5 to 15"]
    assert [r.passed for r in accepted] == [True] * 5
    assert failed_reasons(copy) == [
        "near_duplicate: near duplicate of 'good' (estimated Jaccard 1.00)"
    ]


def test_repetition_rejects_a_looping_dialogue():
    loop = ["老师您好，小明。我是张老师。您想请假吗？"] * 3
    turns = make_turns(["老师您好，我想跟您请一天假。", *loop])
    result = check_repetition(turns, CheckSettings())
    assert not result.passed
    assert result.detail == "turn 2 repeats turn 1; turn 3 repeats turn 1"


def test_repetition_allows_short_repeated_turns():
    turns = make_turns(["Okay.", "Could you send me the file tonight?", "Okay."])
    assert check_repetition(turns, CheckSettings()).passed


def test_speakers_must_be_the_scenario_participants():
    turns = make_turns(["Hi there.", "Hello.", "Hey."])
    turns[2] = turns[2].model_copy(update={"speaker": "Sam"})
    result = check_speakers(turns, ["Min", "Jun Park"])
    assert not result.passed
    assert result.detail == "speakers not in the scenario: Sam"
    one = [t.model_copy(update={"speaker": "Min"}) for t in make_turns(["Hi.", "Hey?"])]
    assert check_speakers(one, ["Min", "Jun"]).detail == "only one speaker"
