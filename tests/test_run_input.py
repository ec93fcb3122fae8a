"""Run directories given to publish and annotate: a bad one is refused up front,
with the file, line and what to do, before any flow (and its tracebacks) starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from pipeline.errors import ReleaseError
from pipeline.release_rows import load_run
from tests.release_fixtures import write_run

runner = CliRunner()


@pytest.fixture
def no_flows(monkeypatch):
    """Fail the test if a command gets as far as starting its flow."""
    import flows.annotate
    import flows.publish

    def refuse(**_: object) -> None:
        raise AssertionError("a flow ran on input the CLI should have refused")

    monkeypatch.setattr(flows.publish, "publish_dataset", refuse)
    monkeypatch.setattr(flows.annotate, "annotate_dialogues", refuse)


def _run(tmp_path: Path, name: str = "run") -> Path:
    run = tmp_path / name
    write_run(run, n_norms=2)
    return run


def _corrupt(run: Path, how: str) -> int:
    """Damage dialogues.jsonl; return the line number of the damage."""
    path = run / "dialogues.jsonl"
    lines = path.read_text("utf-8").splitlines()
    if how == "half-written last line":
        lines.append(lines[0][:80])
        at = len(lines)
    elif how == "invalid JSON in the middle":
        lines.insert(2, '{"id": "x", oops')
        at = 3
    else:  # a JSON object that is no dialogue record
        lines.insert(1, '{"id": "x"}')
        at = 2
    path.write_text(
        "\n".join(lines) + ("" if how.startswith("half") else "\n"), "utf-8"
    )
    return at


HOWS = ["half-written last line", "invalid JSON in the middle", "not a record"]


@pytest.mark.parametrize("how", HOWS)
def test_a_damaged_dialogues_file_names_its_line(tmp_path: Path, how: str) -> None:
    run = _run(tmp_path)
    at = _corrupt(run, how)

    with pytest.raises(ReleaseError) as err:
        load_run(run)

    message = str(err.value)
    assert f"dialogues.jsonl:{at}:" in message
    assert "errors.pydantic.dev" not in message
    if how == "half-written last line":
        assert "run the same `normloom generate` command again" in message
    if how == "not a record":
        assert "field 'seed_id'" in message


@pytest.mark.parametrize("how", HOWS)
def test_publish_and_annotate_refuse_a_damaged_run_up_front(
    tmp_path: Path, how: str, no_flows
) -> None:
    run = _run(tmp_path)
    at = _corrupt(run, how)

    for args in (
        ["publish", str(run), "--out", str(tmp_path / "rel")],
        ["annotate", "push", str(run)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        assert isinstance(result.exception, SystemExit), result.exception
        assert f"dialogues.jsonl:{at}:" in result.output, result.output
    assert not (tmp_path / "rel").exists()


def test_publish_refuses_a_taken_version_and_an_unusable_out_up_front(
    tmp_path: Path, no_flows
) -> None:
    run = _run(tmp_path)
    (tmp_path / "rel" / "1.0.0").mkdir(parents=True)
    (tmp_path / "afile").write_text("keep", "utf-8")

    cases = {
        ("--out", str(tmp_path / "rel"), "--version", "1.0.0"): "already exists",
        ("--out", str(tmp_path / "rel"), "--version", "../x"): "A version is",
        ("--out", str(tmp_path / "afile")): "Cannot write releases to",
        (
            "--out",
            str(tmp_path / "rel"),
            str(tmp_path / "nope"),
        ): "is not a normloom run",
    }
    for extra, expected in cases.items():
        result = runner.invoke(app, ["publish", str(run), *extra])
        assert result.exit_code == 1, (extra, result.output)
        assert expected in result.output, (extra, result.output)
    assert (tmp_path / "afile").read_text("utf-8") == "keep"
