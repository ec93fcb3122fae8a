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


def _never_generate(monkeypatch) -> None:
    """Make the flow fail loudly if a test's bad input gets as far as generating."""
    import flows.generate

    def refuse(**_: object) -> None:
        raise AssertionError("the flow ran on input the CLI should have refused")

    monkeypatch.setattr(flows.generate, "generate_dialogues", refuse)


def test_out_that_is_a_file_is_refused_before_generating(
    tmp_path: Path, monkeypatch
) -> None:
    seeds = tmp_path / "ok.csv"
    seeds.write_text(f"{HEADER}\na1,us,en,thanks,Say thanks.,,,\n", "utf-8")
    taken = tmp_path / "taken"
    taken.write_text("keep me", "utf-8")
    _never_generate(monkeypatch)

    for out in (taken, taken / "sub"):
        result = _generate("--seeds", str(seeds), "--out", str(out))
        assert result.exit_code == 2, out
        assert isinstance(result.exception, SystemExit), result.exception
        assert f"Cannot use {out} as the run directory" in result.output
        assert "Traceback" not in result.output
    assert taken.read_text("utf-8") == "keep me"


def test_cultures_the_seed_file_does_not_hold_are_refused(
    tmp_path: Path, monkeypatch
) -> None:
    seeds = tmp_path / "ok.csv"
    seeds.write_text(f"{HEADER}\na1,us,en,thanks,Say thanks.,,,\n", "utf-8")
    _never_generate(monkeypatch)

    result = _generate(
        "--seeds", str(seeds), "--cultures", "ir", "--out", str(tmp_path / "r")
    )

    assert result.exit_code == 2
    assert "no seed norm of culture ir" in result.output
    assert "it holds us" in result.output
    assert not (tmp_path / "r").exists()


def test_base_url_without_model_is_refused_before_generating(
    tmp_path: Path, monkeypatch
) -> None:
    seeds = tmp_path / "ok.csv"
    seeds.write_text(f"{HEADER}\na1,us,en,thanks,Say thanks.,,,\n", "utf-8")
    monkeypatch.setenv("NORMLOOM_LLM__BASE_URL", "http://127.0.0.1:1/v1")
    monkeypatch.delenv("NORMLOOM_LLM__MODEL", raising=False)
    _never_generate(monkeypatch)

    result = _generate("--seeds", str(seeds), "--out", str(tmp_path / "r"))

    assert result.exit_code == 2
    assert "set NORMLOOM_LLM__MODEL" in result.output
    assert not (tmp_path / "r").exists()


def test_a_bad_setting_names_its_variable(tmp_path: Path, monkeypatch) -> None:
    seeds = tmp_path / "ok.csv"
    seeds.write_text(f"{HEADER}\na1,us,en,thanks,Say thanks.,,,\n", "utf-8")
    monkeypatch.setenv("NORMLOOM_LLM__TIMEOUT_S", "abc")
    _never_generate(monkeypatch)

    result = _generate("--seeds", str(seeds))

    assert result.exit_code == 2
    assert "NORMLOOM_LLM__TIMEOUT_S='abc'" in result.output
    assert "errors.pydantic.dev" not in result.output
