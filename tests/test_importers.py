"""Importers of the public norm banks, on rows written here in each exact format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.errors import ConfigError
from pipeline.importers import detect_format, import_norms
from pipeline.schemas import NormLabel
from pipeline.seeds import load_seeds, write_seeds


def _write(path: Path, text: str, *, crlf: bool = False, bom: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if crlf:
        text = text.replace("\n", "\r\n")
    path.write_bytes((("\ufeff" if bom else "") + text).encode("utf-8"))
    return path


def _skips(result) -> dict[int, str]:
    return {p.line: p.message for p in result.report.skipped}


AMERICAN = """\
,American_Norm,American_Situation,Labeled_Dialogue
0,Norm: Apologise promptly and sincerely.,"Situation: Sam spilled coffee on a coworker's report.","Sam: Oh no, I'm so sorry about that! <Adhered> | Sam apologises at once.
Lee: It's fine, accidents happen. <Not Relevant> | Lee just reacts.
Sam: Let me reprint it for you, the ""final"" version. <Adhered> | Sam offers repair."
3,Norm: Apologise promptly and sincerely when late.,"Situation: Dana arrives
twenty minutes late to lunch.","Dana: Whatever, traffic. <Violated> | No apology.
Kim: Okay... <Not Relevant> | Kim reacts."
7,,Situation: Empty norm row.,"A: x <Adhered> | y"
9,Norm: Say sorry when you bump into someone.,Situation: A crowded bus.,"this line has no speaker or label"
"""

CHINESE = """\
,Norm,Situation,cn_Norm,cn_Situation,Labeled_Dialogue
2,Norm: Greet elders first.,Situation: A family visit.,规范：见到长辈要先打招呼。,情境：小王去奶奶家拜年。,"(小王: 奶奶过年好！): <Adhered> | 小王先向长辈问好。
(奶奶：好孩子，快进来。)：<Not Relevant> | 奶奶回应。"
5,Norm: Greet elders first.,Situation: At a wedding.,规范：见到长辈要先打招呼。,情境：婚礼上遇到舅舅。,"(小李: 嗯。): <Violated> | 没有问候长辈。
(舅舅: 这孩子。): <Not Relevant> | 舅舅评价。"
"""


def _normdial_tree(root: Path) -> Path:
    _write(
        root / "American" / "adherence" / "apology" / "cleaned_dialogue.csv", AMERICAN
    )
    _write(
        root / "Chinese" / "violation" / "respond_compliments" / "cleaned_dialogue.csv",
        CHINESE,
        crlf=True,
        bom=True,
    )
    return root


def test_normdial_tree_gives_seeds_exemplars_and_gold(tmp_path: Path) -> None:
    result = import_norms(_normdial_tree(tmp_path / "NormDial"))
    report = result.report

    assert set(report.formats.values()) == {"normdial"}
    assert report.records == 6 and report.imported == 5
    assert [p.line for p in report.skipped] == [8]  # the empty norm
    assert "norm is empty" in report.skipped[0].message
    us = [s for s in result.seeds if s.culture == "us"]
    assert us[0].norm == "Apologise promptly and sincerely."
    assert us[0].setting == "Sam spilled coffee on a coworker's report."
    assert us[0].category == "apology" and us[0].language == "en"
    # Multi-line cells: the index gap row 3 starts on physical line 5.
    assert [s.source_id for s in us] == ["0", "3", "9"]
    assert us[1].origin == "American/adherence/apology/cleaned_dialogue.csv:5"
    assert us[1].setting == "Dana arrives\ntwenty minutes late to lunch."

    cn = [s for s in result.seeds if s.culture == "cn"]
    assert cn[0].norm == "见到长辈要先打招呼。" and cn[0].language == "zh"
    assert cn[0].category == "respond-to-compliment"
    assert cn[0].setting == "小王去奶奶家拜年。"

    gold = {g.id: g for g in result.gold}
    sam = gold[us[0].id]
    assert [t.norm_label for t in sam.turns] == [
        NormLabel.ADHERED,
        NormLabel.NOT_RELEVANT,
        NormLabel.ADHERED,
    ]
    assert sam.turns[2].text == 'Let me reprint it for you, the "final" version.'
    assert sam.type.value == "adherence"
    full_width = gold[cn[0].id].turns[1]
    assert (full_width.speaker, full_width.text) == ("奶奶", "好孩子，快进来。")
    assert gold[cn[1].id].type.value == "violation"
    # The row whose dialogue does not parse keeps its seed, not its dialogue.
    assert us[2].id not in gold
    assert any("left out" in w.message for w in report.warnings)
    assert len(result.exemplars) == 4
    assert result.exemplars[0].scenario == "Sam spilled coffee on a coworker's report."


NORMGENESIS = [
    {
        "scenario": "Minji asks her senior for help.",
        "situation": "Minji is a new employee. Junho is her senior.",
        "dialogue": "민지: (고개를 숙이며) 선배님, 잠깐 시간 괜찮으세요?\n"
        "준호: 응, 괜찮아.\n(두 사람이 자리에 앉는다)\n민지: 감사합니다.",
        "category": "request",
        "norm": "윗사람에게 부탁할 때는 존댓말을 쓴다.",
    },
    {
        "scenario": "x",
        "situation": "y",
        "dialogue": "",
        "category": "request",
        "norm": "n",
        "parsing_failed": True,
    },
    {
        "scenario": "Okay, so the user wants a scenario. <think>",
        "situation": "s",
        "dialogue": "A: hi\nB: hi",
        "category": "request",
        "norm": "n2",
    },
    {
        "scenario": "s",
        "situation": "s",
        "dialogue": "A: hi\nB: hi",
        "category": "request",
        "norm": "n3",
        "error_msg": "timeout from the API",
    },
    {
        "scenario": "Jisu thanks her aunt.",
        "situation": "Jisu visits her aunt.",
        "dialogue": ["지수: 이모, 정말 감사해요.", "이모: 별말을."],
        "category": "thanks",
        "norm": "I need to think about this norm first.",
    },
]


def test_normgenesis_reports_failed_and_leaked_records(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "dialogue_korean_v2r.json",
        json.dumps(NORMGENESIS, ensure_ascii=False, indent=2),
    )

    result = import_norms(path)

    assert result.report.formats == {"dialogue_korean_v2r.json": "normgenesis"}
    assert result.report.imported == 1 and result.report.skipped_records == 4
    seed = result.seeds[0]
    assert (seed.culture, seed.language, seed.category) == ("kr", "ko", "request")
    assert seed.origin == "dialogue_korean_v2r.json:2"
    reasons = sorted(p.field for p in result.report.skipped)
    assert reasons == ["error_msg", "norm", "parsing_failed", "scenario"]
    assert result.exemplars[0].type.value == "v2r"
    assert result.gold == []  # NormGenesis turns carry no labels


def test_normgenesis_turns_drop_stage_directions() -> None:
    from pipeline.importers.normgenesis import dialogue_turns

    turns = dialogue_turns(NORMGENESIS[0]["dialogue"])

    assert turns == [
        {"speaker": "민지", "text": "선배님, 잠깐 시간 괜찮으세요?"},
        {"speaker": "준호", "text": "응, 괜찮아."},
        {"speaker": "민지", "text": "감사합니다."},
    ]


SOCIALCHEM_HEADER = (
    "area\tm\tsplit\trot-agree\trot-categorization\trot-moral-foundations\t"
    "rot-char-targeting\trot-bad\trot-judgment\taction\taction-agency\t"
    "action-moral-judgment\taction-agree\taction-legal\taction-pressure\t"
    "action-char-involved\taction-hypothetical\tsituation\tsituation-short-id\t"
    "rot\trot-id\trot-worker-id\tbreakdown-worker-id\tn-characters\tcharacters"
)


def _socialchem_row(rot: str, rot_id: str, bad: str = "0", cats: str = "") -> str:
    cells = [
        "amitheasshole", "1", "train", "4", cats, "care-harm|loyalty-betrayal",
        "char-1", bad, "it's good", "thanking a friend", "agency", "1", "4", "",
        "", "char-1", "", "thanking my friend for a ride", "s1", rot, rot_id,
        "w1", "w2", "2", "I|my friend",
    ]  # fmt: skip
    return "\t".join(cells)


def test_socialchem_tsv(tmp_path: Path) -> None:
    rows = [
        SOCIALCHEM_HEADER,
        _socialchem_row(
            "It's good to thank people who help you.",
            "rot/1",
            cats="social-norms|advice",
        ),
        _socialchem_row("", "rot/2"),
        _socialchem_row("You should lie to friends.", "rot/3", bad="1"),
        _socialchem_row('It\'s rude to say "no" bluntly.', "rot/4"),
    ]
    path = _write(tmp_path / "social-chem-101.v1.0.tsv", "\n".join(rows) + "\n")

    result = import_norms(path)

    assert detect_format(path) == "socialchem"
    assert [s.source_id for s in result.seeds] == ["rot/1", "rot/4"]
    assert result.seeds[0].category == "social-norms"
    assert result.seeds[1].category == "general"  # empty categorisation
    assert result.seeds[1].norm == 'It\'s rude to say "no" bluntly.'
    assert "moral foundations: care-harm | loyalty-betrayal" in result.seeds[0].notes
    assert _skips(result) == {
        3: "the rule of thumb is empty",
        4: "annotators marked this rule of thumb bad",
    }


def test_normbank_csv_from_excel_and_raw_list(tmp_path: Path) -> None:
    text = (
        "setting;behavior;constraints;label;split\n"
        'restaurant;tip the waiter;"[PERSON] is a customer; in the US";2;train\n'
        "library;talk loudly on the phone;;0;test\n"
        "library;read quietly;;1;train\n"
        "office;shout;;7;train\n"
        "office;;;1;train\n"
    )
    csv_path = _write(tmp_path / "normbank.csv", text, crlf=True, bom=True)
    list_path = _write(tmp_path / "birthday party.txt", "bring a gift\n\nsing along\n")

    table = import_norms(csv_path)
    listed = import_norms(list_path)

    assert table.report.formats == {"normbank.csv": "normbank"}
    assert [s.source_label for s in table.seeds] == [
        NormLabel.ADHERED,
        NormLabel.VIOLATED,
        NormLabel.NOT_RELEVANT,
    ]
    assert table.seeds[0].norm == (
        "In restaurant, to tip the waiter is expected when [PERSON] is a customer; "
        "in the US."
    )
    assert sorted(_skips(table)) == [5, 6]
    assert "not 0 (taboo)" in _skips(table)[5]
    assert listed.report.formats == {"birthday party.txt": "normbank-list"}
    assert [s.setting for s in listed.seeds] == ["birthday party"] * 2
    assert [s.origin for s in listed.seeds] == [
        "birthday party.txt:1",
        "birthday party.txt:3",
    ]


def test_normad_maps_countries_and_reports_unknown_ones(tmp_path: Path) -> None:
    text = (
        "ID,Country,Background,Axis,Subaxis,Value,Rule-of-Thumb,Story,Explanation,Gold Label\n"
        '11,south_korea,"Long background, with commas.",etiquette,gift giving,'
        'Respect,Offer gifts with both hands.,"Minji gave her boss a gift with ""both"" hands.",'
        "It shows respect.,yes\n"
        "12,egypt,bg,etiquette,greetings,Respect,Greet elders first.,story,expl,no\n"
        "13,china,bg,etiquette,,Harmony,Do not refuse a toast bluntly.,story,expl,maybe\n"
    )
    path = _write(tmp_path / "normad.csv", text)

    strict = import_norms(path)
    mapped = import_norms(path, unknown_culture="us")

    assert [(s.culture, s.language, s.category) for s in strict.seeds] == [
        ("kr", "ko", "gift-giving")
    ]
    assert strict.seeds[0].source_label is NormLabel.ADHERED
    assert (
        'Story: Minji gave her boss a gift with "both" hands.' in strict.seeds[0].notes
    )
    assert "culture 'egypt' is not in the culture registry" in _skips(strict)[3]
    assert "'maybe' is not yes, no or neutral" in _skips(strict)[4]
    assert [s.culture for s in mapped.seeds] == ["kr", "us"]
    assert mapped.seeds[1].category == "greeting"
    assert "imported as 'us'" in mapped.report.warnings[0].message


def test_isn_is_imported_as_iran_persian(tmp_path: Path) -> None:
    text = (
        "Norm - EN,Environment - EN,Norm - FA,Environment - FA,Scope - EN,Age,Gender,Label\n"
        "Offer tea to guests.,Home,به مهمان چای تعارف کنید.,خانه,Hospitality,all,all,Expected\n"
        "Refuse the first offer politely.,Home,,,Taarof,adult,,Normal\n"
        "Whistle at night.,Street,شب سوت نزنید.,خیابان,Superstition,all,all,Taboo\n"
        ",,,,,all,all,Taboo\n"
        "Eat with the left hand.,Table,با دست چپ غذا نخورید.,سفره,Manners,all,all,Sometimes\n"
    )
    result = import_norms(_write(tmp_path / "ISN.csv", text))

    first = result.seeds[0]
    assert (first.culture, first.language, first.norm) == (
        "ir",
        "fa",
        "به مهمان چای تعارف کنید.",
    )
    assert first.setting == "خانه" and first.category == "hospitality"
    assert "English: Offer tea to guests." in first.notes and "age: all" in first.notes
    assert result.seeds[1].norm == "Refuse the first offer politely."
    assert "No Persian text" in result.seeds[1].notes
    assert [s.source_label for s in result.seeds] == [
        NormLabel.ADHERED,
        NormLabel.NOT_RELEVANT,
        NormLabel.VIOLATED,
    ]
    assert sorted(_skips(result)) == [5, 6]


def test_culturebank_groups_to_cultures(tmp_path: Path) -> None:
    header = (
        "cluster_id,cultural group,context,goal,relation,actor,actor_behavior,recipient,"
        "recipient_behavior,other_descriptions,topic,agreement,num_support_bin,time_range"
    )
    rows = [
        "101,Koreans,a family dinner,show respect,family,younger people,"
        "wait for the eldest to start eating,elders,begin the meal,,Dining Etiquette,0.9,[10; 50),2021",
        "102,Japanese,a train,keep quiet,strangers,passengers,avoid phone calls,,,,Public Behavior,0.8,,",
        "103,American,,,,,,,,,Food,0.5,,",
    ]
    result = import_norms(
        _write(tmp_path / "culturebank_tiktok.csv", "\n".join([header, *rows]))
    )

    seed = result.seeds[0]
    assert (seed.culture, seed.category, seed.source_id) == (
        "kr",
        "dining-etiquette",
        "101",
    )
    assert seed.norm == (
        "In a family dinner, younger people wait for the eldest to start eating; "
        "elders begin the meal."
    )
    assert seed.roles == ["younger people", "elders"]
    assert "culture 'Japanese'" in _skips(result)[3]
    assert _skips(result)[4] == "the behaviour is empty"


def test_imported_seeds_round_trip_through_the_native_loader(tmp_path: Path) -> None:
    result = import_norms(_normdial_tree(tmp_path / "NormDial"))
    out = tmp_path / "seeds.jsonl"
    write_seeds(result.seeds, out)

    again = load_seeds(out).seeds

    assert [s.id for s in again] == [s.id for s in result.seeds]
    assert again[0].origin == result.seeds[0].origin
    assert again[0].source == "seeds.jsonl:1"
    assert "小王" in out.read_text("utf-8")  # stored raw, not \\u-escaped
    assert import_norms(out).report.formats == {"seeds.jsonl": "native"}


def test_format_override_and_unknown_files(tmp_path: Path) -> None:
    odd = _write(tmp_path / "bank" / "odd.csv", "a,b\n1,2\n")
    _write(tmp_path / "bank" / "list.txt", "say hello\n")

    result = import_norms(tmp_path / "bank")
    with pytest.raises(ConfigError, match="Unknown format 'nope'"):
        import_norms(odd, fmt="nope")

    assert result.report.formats == {"list.txt": "normbank-list"}
    assert result.report.skipped[0].file == "odd.csv"
    assert "pass --format" in result.report.skipped[0].message
    assert import_norms(odd, fmt="normbank").report.imported == 0


def test_awkward_rows_of_real_files(tmp_path: Path) -> None:
    chinese = _write(
        tmp_path / "Chinese" / "adherence" / "thanks" / "cleaned_dialogue.csv",
        ",Norm,Situation,cn_Norm,cn_Situation,Labeled_Dialogue\n"
        '0,Norm: Thank the host.,Situation: A dinner.,,,"对话：\n'
        '(小张: 谢谢您的款待！): <Adhered> | 表示感谢。"\n',
    )
    genesis = _write(
        tmp_path / "dialogue_chinese_adherence.json",
        json.dumps(
            [
                {
                    "scenario": "小张感谢主人。",
                    "situation": "小张在朋友家吃饭。",
                    "dialogue": [
                        {"speaker": "小张", "utterance": "谢谢款待！"},
                        {"speaker": "主人", "utterance": "（笑）别客气。"},
                    ],
                    "category": "Thanks",
                    "norm": "饭后要感谢主人。",
                }
            ],
            ensure_ascii=False,
        ),
    )
    normbank = _write(
        tmp_path / "bank" / "normbank.csv",
        "setting,behavior,constraints,label,split\nbar,pay the bill,,2.0,train\n",
    )
    _write(tmp_path / "bank" / "README.txt", "This folder holds NormBank.\n")

    dial = import_norms(chinese)
    gen = import_norms(genesis)
    bank = import_norms(tmp_path / "bank")

    seed = dial.seeds[0]
    assert (seed.culture, seed.norm) == ("cn", "Thank the host.")
    assert "English one is used" in seed.notes
    assert [t.text for t in dial.gold[0].turns] == ["谢谢您的款待！"]
    assert gen.seeds[0].category == "thanks"
    assert gen.exemplars[0].situation == "小张在朋友家吃饭。"
    # The README is neither imported nor taken for a behaviour list.
    assert bank.report.formats == {"normbank.csv": "normbank"}
    assert bank.report.skipped[0].file == "README.txt"
    assert [s.source_label for s in bank.seeds] == [NormLabel.ADHERED]
    assert bank.seeds[0].origin == f"{normbank.name}:2"


def test_one_line_json_keeps_records_apart(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "dialogue_american_violation.json",
        json.dumps(NORMGENESIS + [dict(NORMGENESIS[0], norm="Say please.")]),
    )

    result = import_norms(path)

    assert (result.report.records, result.report.imported) == (6, 2)
    assert result.report.skipped_records == 4
    assert [s.source_id for s in result.seeds] == ["0", "5"]
    assert [e.norm for e in result.exemplars] == [s.norm for s in result.seeds]


def test_column_spellings_and_string_flags(tmp_path: Path) -> None:
    isn_file = _write(
        tmp_path / "isn_v2.csv", "Norm-EN;Norm-FA;LABEL\nBe on time.;;taboo\n"
    )
    flagged = _write(
        tmp_path / "dialogue_korean_adherence.json",
        json.dumps([dict(NORMGENESIS[0], parsing_failed="False", error_msg="")]),
    )

    isn_result = import_norms(isn_file)

    assert detect_format(isn_file) == "isn"
    assert isn_result.seeds[0].source_label is NormLabel.VIOLATED
    assert import_norms(flagged).report.imported == 1


def test_normgenesis_array_cut_after_a_record_is_reported(tmp_path: Path) -> None:
    """A download cut off after a whole record imports it and says the file is cut."""
    record = {
        "scenario": "s",
        "situation": "At the office.",
        "dialogue": "A: Could you help me?\nB: Sure.",
        "category": "request",
        "norm": "Ask politely.",
    }
    path = _write(
        tmp_path / "dialogue_american_violation.json", "[" + json.dumps(record)
    )

    result = import_norms(path)

    assert result.report.imported == 1
    (warning,) = result.report.warnings
    assert warning.field == "(json)"
    assert "never closed" in warning.message and "truncated" in warning.message
