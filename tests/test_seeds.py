"""Tests of reading, checking and writing seed norms."""

from __future__ import annotations

import json
import logging
import unicodedata
from pathlib import Path

import pytest

from pipeline.errors import ConfigError, SeedError
from pipeline.seeds import load_seeds, seed_stats, write_seeds

STARTER = Path(__file__).resolve().parent.parent / "data" / "seeds" / "starter.jsonl"
HEADER = "id,culture,language,category,norm,setting,roles,notes"


def _write(
    directory: Path,
    name: str,
    lines: list[str],
    *,
    crlf: bool = False,
    bom: bool = False,
) -> Path:
    """Write ``lines`` as a UTF-8 file and return its path."""
    end = "\r\n" if crlf else "\n"
    text = ("\ufeff" if bom else "") + end.join(lines) + end
    path = directory / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _problems(err: pytest.ExceptionInfo[SeedError]) -> dict[tuple[int, str], str]:
    """Map (line, field) of each problem to its message."""
    return {(p.line, p.field): p.message for p in err.value.problems}


def test_csv_with_bom_crlf_and_multiline_cell(tmp_path: Path) -> None:
    """Excel-style CSV loads, and errors name the physical line of the record."""
    rows = [
        HEADER,
        'us-1,us,en,Respond_to compliment,"Accept a compliment',
        'with thanks.",office,boss|employee,',
        'kr-1,Korean,ko,greeting,어른께 먼저 인사한다.,,,"one',
        "two",
        'three"',
        "us-2,us,en,gift,Open a gift in front of the giver.,,,",
    ]
    path = _write(tmp_path, "seeds.csv", rows, crlf=True, bom=True)

    seeds = load_seeds(path).seeds

    assert [s.id for s in seeds] == ["us-1", "kr-1", "us-2"]
    assert seeds[0].category == "respond-to-compliment"
    assert seeds[0].norm == "Accept a compliment\nwith thanks."
    assert seeds[0].roles == ["boss", "employee"]
    assert seeds[1].culture == "kr"
    assert seeds[1].notes == "one\ntwo\nthree"
    assert [s.source for s in seeds] == ["seeds.csv:2", "seeds.csv:4", "seeds.csv:7"]

    bad = [*rows[:-1], "us-3,atlantis,en,gift,Bring a gift.,,,"]
    path = _write(tmp_path, "bad.csv", bad, crlf=True, bom=True)
    with pytest.raises(SeedError) as err:
        load_seeds(path)
    assert list(_problems(err)) == [(7, "culture")]
    assert "bad.csv:7: field 'culture'" in str(err.value)


def test_semicolon_csv_from_excel(tmp_path: Path) -> None:
    """A ';'-delimited CSV is recognised from its header."""
    rows = [
        "id;culture;language;category;norm;roles",
        "cn-1;cn;zh;Gift Giving;送礼时要用双手, 不要打开礼物。;host|guest",
        'us-1;American;English;greeting;Say hi, then ask how they are.;"a;b"',
        ";;;;;",
    ]
    path = _write(tmp_path, "excel.csv", rows, crlf=True, bom=True)

    seeds = load_seeds(path).seeds

    assert [(s.culture, s.language, s.category) for s in seeds] == [
        ("cn", "zh", "gift-giving"),
        ("us", "en", "greeting"),
    ]
    assert seeds[0].norm == "送礼时要用双手, 不要打开礼物。"
    assert [s.roles for s in seeds] == [["host", "guest"], ["a", "b"]]


def test_jsonl_with_raw_korean_and_chinese_round_trips(tmp_path: Path) -> None:
    """Raw CJK text survives loading, writing and loading again."""
    records = [
        {
            "id": "kr-1",
            "culture": "한국",
            "language": "ko",
            "category": "thanks",
            "norm": "선물을 받으면 감사합니다라고 말한다.",
            "roles": ["손님", "주인"],
        },
        {
            "id": "cn-1",
            "culture": "Chinese",
            "language": "Chinese",
            "category": "gift",
            "norm": "收到礼物时要道谢。",
            "roles": "客人|主人",
            "setting": "家里",
        },
    ]
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    path = _write(tmp_path, "seeds.jsonl", [lines[0], "", lines[1]])

    seeds = load_seeds(path).seeds

    assert [(s.culture, s.language) for s in seeds] == [("kr", "ko"), ("cn", "zh")]
    assert seeds[0].roles == ["손님", "주인"]
    assert seeds[1].roles == ["客人", "主人"]
    assert [s.source for s in seeds] == ["seeds.jsonl:1", "seeds.jsonl:3"]

    out = tmp_path / "out" / "seeds.jsonl"
    assert write_seeds(seeds, out) == 2
    written = out.read_text(encoding="utf-8")
    assert "선물을 받으면" in written and "收到礼物时要道谢" in written
    assert "\\u" not in written
    again = load_seeds(out).seeds
    assert [s.model_dump(exclude={"source"}) for s in again] == [
        s.model_dump(exclude={"source"}) for s in seeds
    ]


def test_jsonl_line_that_is_not_json(tmp_path: Path) -> None:
    """Lines that are not JSON objects are reported at their line."""
    good = json.dumps(
        {
            "id": "us-1",
            "culture": "us",
            "language": "en",
            "category": "greeting",
            "norm": "Shake hands.",
        }
    )
    path = _write(tmp_path, "seeds.jsonl", [good, "", '{"id": "us-2", oops}', "[1]"])

    with pytest.raises(SeedError) as err:
        load_seeds(path)

    assert list(_problems(err)) == [(3, "(json)"), (4, "(json)")]
    assert "got list" in _problems(err)[(4, "(json)")]


def test_nfd_korean_is_stored_as_nfc(tmp_path: Path) -> None:
    """NFD input is stored as NFC, so NFD and NFC ids collide."""
    nfc_norm, nfc_id = "감사합니다", "kr-감사"
    nfd_norm = unicodedata.normalize("NFD", nfc_norm)
    nfd_id = unicodedata.normalize("NFD", nfc_id)
    assert nfd_norm != nfc_norm
    row = "{},kr,ko,thanks,{},,,"

    path = _write(tmp_path, "nfd.csv", [HEADER, row.format(nfd_id, nfd_norm)])
    seed = load_seeds(path).seeds[0]
    assert seed.norm == nfc_norm
    assert seed.id == nfc_id

    both = [HEADER, row.format(nfd_id, nfd_norm), row.format(nfc_id, nfc_norm)]
    path = _write(tmp_path, "both.csv", both)
    with pytest.raises(SeedError) as err:
        load_seeds(path)
    assert "first used at line 2" in _problems(err)[(3, "id")]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """One SeedError lists a missing column and every bad row."""
    rows = [
        "id,culture,language,norm",
        "kr-1,kr,ko,어른께 먼저 인사한다.",
        "kr-2,kr,ko,",
        "xx-1,atlantis,en,Bow to the sea.",
        "kr-1,kr,ko,두 손으로 받는다.",
    ]
    path = _write(tmp_path, "broken.csv", rows)

    with pytest.raises(SeedError) as err:
        load_seeds(path)

    problems = _problems(err)
    assert list(problems) == [(1, "category"), (3, "norm"), (4, "culture"), (5, "id")]
    assert "required column 'category' is missing" in problems[(1, "category")]
    assert "'norm' is empty" in problems[(3, "norm")]
    assert "unknown culture 'atlantis'" in problems[(4, "culture")]
    assert "kr (Korea)" in problems[(4, "culture")]
    assert "duplicate id 'kr-1', first used at line 2" in problems[(5, "id")]
    assert all(p.file == str(path) for p in err.value.problems)
    assert "4 problem(s)" in str(err.value)


def test_skip_invalid_keeps_good_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """skip_invalid returns the good rows and what was left out."""
    rows = [
        HEADER + ",owner",
        "kr-1,kr,ko,thanks,고맙습니다라고 말한다.,,,,me",
        "kr-2,kr,zh,thanks,说谢谢。,,,,me",
        "us-1,us,en,greeting,Wave.,,,,me",
        "us-2,mars,en,,Wave twice.,,,,me",
    ]
    path = _write(tmp_path, "mixed.csv", rows)

    with caplog.at_level(logging.WARNING, logger="pipeline.seeds"):
        result = load_seeds(path, skip_invalid=True)

    assert [s.id for s in result.seeds] == ["kr-1", "us-1"]
    assert [(p.line, p.field) for p in result.skipped] == [
        (3, "language"),
        (5, "culture"),
        (5, "category"),
    ]
    assert "not a language of culture 'kr'" in result.skipped[0].message
    unknown = [r for r in caplog.records if "owner" in r.getMessage()]
    assert len(unknown) == 1
    assert any("Skipped 2 invalid row(s)" in r.getMessage() for r in caplog.records)


def test_unusable_files(tmp_path: Path) -> None:
    """Unknown formats, empty files and open quotes give clear errors."""
    with pytest.raises(ConfigError, match=r"\.csv, \.tsv, \.jsonl"):
        load_seeds(_write(tmp_path, "seeds.xlsx", ["x"]))
    with pytest.raises(SeedError, match="empty"):
        load_seeds(_write(tmp_path, "empty.csv", [""]))
    with pytest.raises(SeedError, match="no seed rows"):
        load_seeds(_write(tmp_path, "header.csv", [HEADER]))
    with pytest.raises(SeedError, match="never closed") as err:
        load_seeds(_write(tmp_path, "quote.csv", [HEADER, 'a,us,en,x,"open,,,']))
    assert list(_problems(err)) == [(2, "(csv)")]


def test_seed_stats_counts_by_culture_language_category(tmp_path: Path) -> None:
    """seed_stats counts seeds per culture, language and category."""
    rows = [
        "id,culture,language,category,norm",
        "a,kr,ko,thanks,A.",
        "b,kr,ko,thanks,B.",
        "c,us,en,greeting,C.",
    ]
    stats = seed_stats(load_seeds(_write(tmp_path, "s.csv", rows)).seeds)

    assert stats.to_dict("records") == [
        {"culture": "kr", "language": "ko", "category": "thanks", "count": 2},
        {"culture": "us", "language": "en", "category": "greeting", "count": 1},
    ]
    assert list(seed_stats([]).columns) == ["culture", "language", "category", "count"]


def test_starter_seeds_load() -> None:
    """The shipped starter seeds load without a problem."""
    if not STARTER.exists():
        pytest.skip(f"{STARTER} is not written yet")

    seeds = load_seeds(STARTER).seeds

    assert len(seeds) == 72
    assert {s.culture for s in seeds} <= {"us", "cn", "kr"}


def test_row_with_too_many_cells_is_never_used(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "spill.csv",
        [
            HEADER,
            "a1,us,en,request,Ask, politely,office,a|b,note",
            "a2,us,en,request,Ask, politely.,,,",
            "a3,us,en,request,Ask politely.,office,a|b,note",
        ],
    )

    loaded = load_seeds(path, skip_invalid=True)

    assert [s.id for s in loaded.seeds] == ["a3"]
    assert {(p.line, p.field) for p in loaded.skipped} == {(2, "(row)"), (3, "(row)")}
    assert "9 cells but the header has 8" in str(loaded.skipped[0])


def test_invisible_control_and_overlong_text_is_refused(tmp_path: Path) -> None:
    rows = [
        {
            "id": "z1",
            "culture": "us",
            "language": "en",
            "category": "thanks",
            "norm": "\u200b\u200c\u2060",
        },
        {
            "id": "z2",
            "culture": "us",
            "language": "en",
            "category": "thanks",
            "norm": "Say thanks\x00 twice.",
        },
        {
            "id": "z3",
            "culture": "us",
            "language": "en",
            "category": "thanks",
            "norm": "Thank people. " * 200,
        },
        {
            "id": "ok",
            "culture": "us",
            "language": "en",
            "category": "thanks",
            "norm": "Thank the host\tat the door.",
        },
    ]
    path = _write(tmp_path, "odd.jsonl", [json.dumps(r) for r in rows])

    with pytest.raises(SeedError) as err:
        load_seeds(path)

    problems = _problems(err)
    assert set(problems) == {(1, "norm"), (2, "norm"), (3, "norm")}
    assert "empty" in problems[(1, "norm")]
    assert "U+0000" in problems[(2, "norm")]
    assert "2000" in problems[(3, "norm")]
    assert "--skip-invalid" in str(err.value)
    with pytest.raises(SeedError, match="No row is usable"):
        load_seeds(
            _write(tmp_path, "bad.jsonl", [json.dumps(rows[0])]), skip_invalid=True
        )


@pytest.mark.parametrize("skip_invalid", [False, True])
@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("empty.csv", b""),
        ("blank.jsonl", b"\n  \n"),
        (
            "latin1.csv",
            "id,culture,language,category,norm\na,us,en,t,Caf\xe9\n".encode("latin-1"),
        ),
        ("header.csv", b"id,culture,language,category,norm\n"),
        ("nocat.csv", b"id,culture,language,norm\na,us,en,Say thanks.\n"),
    ],
)
def test_no_usable_row_never_suggests_skip_invalid(
    tmp_path: Path, name: str, data: bytes, skip_invalid: bool
) -> None:
    """A file with no usable row says so; --skip-invalid would not help it."""
    path = tmp_path / name
    path.write_bytes(data)

    with pytest.raises(SeedError) as err:
        load_seeds(path, skip_invalid=skip_invalid)

    assert "No row is usable" in str(err.value)
    assert "--skip-invalid" not in str(err.value)


def test_oversized_cell_names_the_limit_and_the_fix(tmp_path: Path) -> None:
    """A CSV cell over the csv module's limit gets a message a person can act on."""
    path = _write(
        tmp_path,
        "huge.csv",
        [
            "id,culture,language,category,norm",
            "a,us,en,thanks," + "x" * 200_000,
            "b,us,en,thanks,Say thanks.",
        ],
    )

    loaded = load_seeds(path, skip_invalid=True)

    assert [s.id for s in loaded.seeds] == ["b"]
    (problem,) = loaded.skipped
    assert problem.line == 2
    assert "field limit" not in problem.message
    assert "131072 characters" in problem.message
    assert "unclosed quote" in problem.message


def test_a_json_array_on_one_line_is_told_to_be_one_object_a_line(
    tmp_path: Path,
) -> None:
    """A .json file holding an array of seeds (valid JSON) gets the JSONL hint too."""
    row = {"id": "a", "culture": "us", "language": "en", "category": "t", "norm": "n"}
    path = _write(tmp_path, "seeds.json", [json.dumps([row, row])])

    with pytest.raises(SeedError) as err:
        load_seeds(path)

    assert "looks like a JSON array, write one object per line" in str(err.value)
