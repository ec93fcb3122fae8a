"""``normloom seeds import`` and ``normloom seeds stats`` on hand-written banks."""

from __future__ import annotations

import json
from pathlib import Path

import jsonlines
from typer.testing import CliRunner

from flows.cli import app
from pipeline.exemplars import load_exemplars
from pipeline.gold import load_gold
from tests.test_importers import _normdial_tree

runner = CliRunner()


def test_import_writes_seeds_exemplars_and_gold(tmp_path: Path) -> None:
    root = _normdial_tree(tmp_path / "NormDial")
    out, ex, gold = (
        tmp_path / "s.jsonl",
        tmp_path / "ex" / "e.jsonl",
        tmp_path / "g.jsonl",
    )

    result = runner.invoke(
        app,
        ["seeds", "import", str(root), "--out", str(out), "--exemplars", str(ex)]
        + ["--gold", str(gold), "--json"],
    )

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["imported"], report["skipped_records"], report["gold"]) == (5, 1, 4)
    assert (
        report["skipped"][0]["file"]
        == "American/adherence/apology/cleaned_dialogue.csv"
    )
    assert len(list(jsonlines.open(out))) == 5
    assert len(load_exemplars(ex.parent)) == 4
    assert {g.culture for g in load_gold(gold)} == {"us", "cn"}
    assert "奶奶" in gold.read_text("utf-8")


def test_import_of_nothing_usable_exits_1_and_names_the_reason(tmp_path: Path) -> None:
    bank = tmp_path / "normad.csv"
    bank.write_text(
        "ID,Country,Background,Axis,Subaxis,Value,Rule-of-Thumb,Story,Explanation,Gold Label\n"
        "1,atlantis,b,a,s,v,Share food.,story,e,yes\n",
        "utf-8",
    )

    result = runner.invoke(
        app, ["seeds", "import", str(bank), "--out", str(tmp_path / "o.jsonl")]
    )

    assert result.exit_code == 1
    assert "normad.csv:2: field 'Country': culture 'atlantis'" in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_stats_counts_by_culture_language_and_category(tmp_path: Path) -> None:
    root = _normdial_tree(tmp_path / "NormDial")

    table = runner.invoke(app, ["seeds", "stats", str(root)])
    as_json = runner.invoke(app, ["seeds", "stats", str(root), "--json"])

    assert table.exit_code == 0 and "5 seed(s): cn 2, us 3" in table.output
    counts = json.loads(as_json.output)["counts"]
    assert {
        (c["culture"], c["language"], c["category"], c["count"]) for c in counts
    } == {
        ("cn", "zh", "respond-to-compliment", 2),
        ("us", "en", "apology", 3),
    }


def test_import_with_nothing_imported_claims_no_seed_file(tmp_path: Path) -> None:
    """When no seed is imported, no seed file is written, and none is claimed."""
    bank = tmp_path / "unknown.csv"
    bank.write_text("foo,bar\n1,2\n", "utf-8")
    out = tmp_path / "out.seeds.jsonl"

    result = CliRunner().invoke(app, ["seeds", "import", str(bank), "--out", str(out)])

    assert result.exit_code == 1
    assert not out.exists()
    assert f"seeds {out}" not in result.output
    assert "no seed file written" in result.output.lower()
