"""Argilla settings: file over environment, secrets kept out, clear errors (no server)."""

from __future__ import annotations

import json

import pytest

from annotation.client import load_settings, server_address
from flows.collect import merge_exemplars
from pipeline.errors import AnnotationError, ConfigError
from pipeline.exemplars import load_exemplars
from pipeline.settings import Settings
from tests.annotation_data import dialogue


def test_settings_file_overrides_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMLOOM_ARGILLA__WORKSPACE", "from-env")
    monkeypatch.setenv("NORMLOOM_ARGILLA__MIN_SUBMITTED", "3")
    path = tmp_path / "argilla.toml"
    path.write_text('[argilla]\nworkspace = "team"\nannotators = ["ann1", "ann2"]\n')

    settings = load_settings(settings_file=path)

    assert settings.workspace == "team"
    assert settings.annotators == ["ann1", "ann2"]
    assert settings.min_submitted == 3  # not in the file: the environment's


def test_settings_file_with_an_unknown_key_is_named(tmp_path):
    path = tmp_path / "argilla.json"
    path.write_text(json.dumps({"workspace": "w", "anotators": ["x"]}))

    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['anotators'\]"):
        load_settings(settings_file=path)


def test_keys_and_passwords_stay_out_of_public_settings(monkeypatch):
    monkeypatch.setenv("NORMLOOM_ARGILLA__API_KEY", "argilla-secret-key-123")
    monkeypatch.setenv("NORMLOOM_ARGILLA__OWNER_PASSWORD", "hunter2-hunter2")
    settings = Settings()

    public = json.dumps(settings.public_dict())
    assert "argilla-secret-key-123" not in public + repr(settings)
    assert "hunter2-hunter2" not in public + repr(settings)
    assert settings.argilla.api_key.get_secret_value() == "argilla-secret-key-123"


def test_no_server_configured_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("NORMLOOM_ARGILLA__HOME", str(tmp_path))
    with pytest.raises(AnnotationError, match="normloom argilla serve"):
        server_address(load_settings())

    monkeypatch.setenv("NORMLOOM_ARGILLA__API_URL", "https://argilla.example.org")
    with pytest.raises(AnnotationError, match="NORMLOOM_ARGILLA__API_KEY"):
        server_address(load_settings())


def test_collected_exemplars_join_a_pool_that_generation_reads(tmp_path):
    from annotation.resolve import exemplars_from

    rows = [
        {
            "dialogue_id": "ko-adherence-3",
            "naturalness": 5.0,
            "cultural_appropriateness": 4.0,
            "norm_correct": "yes",
            "arc_matches": "yes",
        }
    ]
    exemplars = exemplars_from(rows, {"ko-adherence-3": dialogue("ko")})
    merge_exemplars(tmp_path, exemplars)
    merge_exemplars(tmp_path, exemplars)  # again: replaced, not doubled

    pool = load_exemplars(tmp_path)
    assert [(e.id, e.culture, e.type.value) for e in pool] == [
        ("human-ko-adherence-3", "kr", "adherence")
    ]
    assert "김민수" in (tmp_path / "annotated.jsonl").read_text("utf-8")  # raw, not \\u


def test_annotate_commands_refuse_a_directory_that_is_not_a_run(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    for command in ("push", "pull"):
        result = CliRunner().invoke(app, ["annotate", command, str(tmp_path)])
        assert result.exit_code == 1
        assert "dialogues.jsonl does not exist" in result.output


def test_push_and_pull_without_a_server_fail_before_any_flow(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.setenv("NORMLOOM_ARGILLA__HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NORMLOOM_ARGILLA__API_URL", raising=False)
    (tmp_path / "dialogues.jsonl").write_text("")
    for command in ("push", "pull"):
        result = CliRunner().invoke(app, ["annotate", command, str(tmp_path)])
        assert result.exit_code == 1
        assert "No Argilla server" in result.output
        assert "Traceback" not in result.output
