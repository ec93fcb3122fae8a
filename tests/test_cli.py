"""The command line: bad input ends in one clear line and an exit code, no traceback."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app

HEADER = "id,culture,language,category,norm,setting,roles,notes"
runner = CliRunner()


def _generate(*args: str):
    return runner.invoke(app, ["generate", *args])


def test_seed_text_that_looks_like_markup_is_printed_as_it_is(tmp_path: Path) -> None:
    seeds = tmp_path / "markup.csv"
    seeds.write_text(f"{HEADER}\na1,[/red],en,thanks,Say thanks.,,,\n", "utf-8")

    result = _generate("--seeds", str(seeds))

    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "unknown culture '[/red]'" in result.output
    assert "markup.csv:2: field 'culture'" in result.output


def test_counts_below_one_are_refused(tmp_path: Path) -> None:
    seeds = tmp_path / "ok.csv"
    seeds.write_text(f"{HEADER}\na1,us,en,thanks,Say thanks.,,,\n", "utf-8")

    for flag in ("--per-norm", "--limit-per-culture"):
        result = _generate("--seeds", str(seeds), flag, "0")
        assert result.exit_code == 2, flag
        text = "".join(ch for ch in result.output if ch.isalnum() or ch == "-")
        assert f"{flag}" in text and "greaterthanorequalto1" in text, flag


def test_unknown_culture_option_lists_the_known_ones(tmp_path: Path) -> None:
    seeds = tmp_path / "ok.csv"
    seeds.write_text(f"{HEADER}\na1,us,en,thanks,Say thanks.,,,\n", "utf-8")

    result = _generate("--seeds", str(seeds), "--cultures", "atlantis")

    assert result.exit_code == 2
    assert "Unknown culture(s) atlantis; known: cn, ir, kr, us" in result.output


def test_base_url_without_model_is_refused_before_the_flow(monkeypatch) -> None:
    """A missing model is a clean error (exit 2), not a failed flow run."""
    monkeypatch.setenv("NORMLOOM_LLM__BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.delenv("NORMLOOM_LLM__MODEL", raising=False)
    result = CliRunner().invoke(app, ["generate", "--seeds", "data/seeds/demo.jsonl"])
    assert result.exit_code == 2
    assert "NORMLOOM_LLM__MODEL" in result.output
