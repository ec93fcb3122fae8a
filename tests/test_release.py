"""The publish-dataset flow: releases load back as they were written, card included."""

from __future__ import annotations

import json
from pathlib import Path

import jsonlines
import pytest
import yaml
from prefect.testing.utilities import prefect_test_harness
from typer.testing import CliRunner

from pipeline.card import parse_counts_table
from pipeline.hub import push_release
from pipeline.release import (
    FEATURES,
    save_release,
    split_rows,
    to_dataset_dict,
)
from pipeline.release_rows import build_rows, load_run
from tests.release_fixtures import write_annotations, write_run

RATIOS = {"train": 0.8, "validation": 0.1, "test": 0.1}


@pytest.fixture(scope="module", autouse=True)
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def no_hub_token(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("NORMLOOM_RELEASE__HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))


def _publish(runs: list[Path], out: Path, **kwargs) -> dict:
    from flows.publish import publish_dataset

    return publish_dataset(run_dirs=[str(r) for r in runs], out=str(out), **kwargs)


@pytest.fixture
def annotated_run(tmp_path) -> Path:
    run = tmp_path / "runs" / "a"
    records = write_run(run, n_norms=24)
    write_annotations(run, records[:10])
    return run


def test_release_round_trips_through_disk_parquet_and_jsonl(annotated_run, tmp_path):
    from datasets import load_dataset, load_from_disk

    result = _publish([annotated_run], tmp_path / "releases")

    release = Path(result["path"])
    assert result["version"] == "0.1.0" and release == tmp_path / "releases" / "0.1.0"
    expected = split_rows(build_rows([load_run(annotated_run)]), RATIOS)
    assert sum(len(v) for v in expected.values()) == 72  # 24 norms x 3 types
    written = {k: v for k, v in expected.items() if v}
    assert set(result["splits"]) == set(written)

    from_disk = load_from_disk(str(release / "arrow"))
    parquet = load_dataset(
        "parquet",
        data_files={s: str(release / "data" / f"{s}.parquet") for s in written},
        cache_dir=str(tmp_path / "hf-cache"),
    )
    for split, rows in written.items():
        assert from_disk[split].to_list() == rows
        assert parquet[split].to_list() == rows
        assert list(jsonlines.open(release / "jsonl" / f"{split}.jsonl")) == rows
        assert parquet[split].features == FEATURES

    # The human answers replace the LLM's, and the LLM's are kept beside them.
    every = [r for rows in written.values() for r in rows]
    human = [t for r in every for t in r["turns"] if t["label_source"] == "human"]
    assert len(human) == 10
    assert {(t["index"], t["norm_label"], t["intent"]) for t in human} == {
        (0, "not_relevant", "ACK")
    }
    assert all(t["llm_norm_label"] in {"adhered", "violated"} for t in human)
    rated = [r["human"] for r in every if r["human"] is not None]
    assert len(rated) == 10
    assert rated[0] == {
        "naturalness": 4.0,
        "cultural_appropriateness": 5.0,
        "norm_correct": True,
        "arc_matches": True,
        "n_annotators": 2,
    }
    assert "도와" in "".join(
        (release / "jsonl" / f"{s}.jsonl").read_text("utf-8") for s in written
    )  # Korean stored raw, not as \u escapes


def test_splits_never_share_a_norm(tmp_path):
    run = tmp_path / "run"
    write_run(run, n_norms=60, per_norm=2)

    splits = split_rows(build_rows([load_run(run)]), RATIOS)

    norms = {name: {r["seed_id"] for r in rows} for name, rows in splits.items()}
    assert norms["train"] and norms["validation"] and norms["test"]
    assert not norms["train"] & norms["validation"]
    assert not norms["train"] & norms["test"]
    assert not norms["validation"] & norms["test"]
    assert sum(len(n) for n in norms.values()) == 60
    # Deterministic: the same norms land in the same splits again.
    again = split_rows(build_rows([load_run(run)]), RATIOS)
    assert {k: [r["id"] for r in v] for k, v in again.items()} == {
        k: [r["id"] for r in v] for k, v in splits.items()
    }
    assert 30 <= len(norms["train"]) <= 58  # about 80% of 60


def test_card_counts_match_the_data(annotated_run, tmp_path):
    from datasets import load_from_disk

    result = _publish([annotated_run], tmp_path / "releases")

    release = Path(result["path"])
    card = (release / "README.md").read_text("utf-8")
    data = load_from_disk(str(release / "arrow"))
    table = {row["split"]: row for row in parse_counts_table(card)}
    assert set(table) == {*data, "total"}
    for split, rows in data.items():
        turns = [t for r in rows["turns"] for t in r]
        assert table[split] == {
            "split": split,
            "dialogues": str(len(rows)),
            "turns": str(len(turns)),
            "norms": str(len(set(rows["seed_id"]))),
            "human-labelled turns": str(
                sum(t["label_source"] == "human" for t in turns)
            ),
            "human-rated dialogues": str(sum(h is not None for h in rows["human"])),
        }
    assert table["total"]["dialogues"] == "72"
    assert table["total"]["turns"] == "288"
    assert table["total"]["norms"] == "24"
    assert table["total"]["human-labelled turns"] == "10"

    header = yaml.safe_load(card.split("---\n")[1])
    assert header["language"] == ["en", "ko", "zh"]
    assert header["size_categories"] == ["n<1K"]
    assert header["license"] == "cc-by-4.0"
    files = header["configs"][0]["data_files"]
    assert [f["split"] for f in files] == list(data)
    assert all((release / f["path"]).is_file() for f in files)
    for png in ("cells", "labels", "judge", "refinement", "agreement"):
        path = release / "plots" / f"{png}.png"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"(plots/{png}.png)" in card
    assert "| task_relevance | 2.00 | 4.00 | 72 |" in card  # round 0 vs final
    assert "| norm_label | 0.61 |" in card  # alpha from agreement.json
    report = (release / "report.html").read_text("utf-8")
    assert report.count("data:image/png;base64,") == 5


def test_a_column_null_for_a_thousand_rows_then_set_survives(tmp_path):
    run = tmp_path / "run"
    write_run(run, n_norms=400)  # 1,200 dialogues
    rows = build_rows([load_run(run)])
    assert len(rows) == 1200 and all(r["human"] is None for r in rows)
    for row in rows[1000:]:
        row["human"] = {
            "naturalness": 2.5,
            "cultural_appropriateness": None,
            "norm_correct": False,
            "arc_matches": None,
            "n_annotators": 3,
        }
        row["judge_rationale"] = None if row is rows[1000] else "late value"
        row["turns"][1]["tie"] = True

    data = to_dataset_dict({"train": rows, "validation": [], "test": []})
    save_release(data, tmp_path / "release")

    from datasets import load_dataset

    loaded = load_dataset(
        "parquet",
        data_files={"train": str(tmp_path / "release" / "data" / "train.parquet")},
        cache_dir=str(tmp_path / "hf-cache"),
    )["train"]
    assert list(data) == ["train"]  # empty splits are left out
    assert loaded.features["human"]["naturalness"].dtype == "float32"
    assert loaded[999]["human"] is None
    assert loaded[1100]["human"]["naturalness"] == 2.5
    assert loaded[1100]["human"]["norm_correct"] is False
    assert loaded[1100]["turns"][1]["tie"] is True
    assert loaded[1199]["judge_rationale"] == "late value"
    assert loaded.to_list() == rows


def test_changelog_says_what_changed_since_the_last_release(annotated_run, tmp_path):
    out = tmp_path / "releases"
    first = _publish([annotated_run], out)
    records = write_run(tmp_path / "runs" / "b", n_norms=3, first=24)
    write_annotations(tmp_path / "runs" / "b", records[:4])

    second = _publish([annotated_run, tmp_path / "runs" / "b"], out)

    assert first["version"] == "0.1.0" and second["version"] == "0.2.0"
    entry = second["changelog"]
    assert entry.startswith("## 0.2.0 (")
    assert "Since 0.1.0:" in entry
    assert "- Dialogues: 81 (+9; 9 added, 0 removed)" in entry
    assert (
        "- Norms: 27 (+3); new: `cn-thanks-25`, `kr-apology-26`, `us-request-24`."
        in entry
    )
    assert "- Human annotations: 14 turns (+4) in 14 dialogues; 4 newly annotated." in (
        entry
    )
    changelog = (out / "CHANGELOG.md").read_text("utf-8")
    assert changelog.index("## 0.2.0") < changelog.index("## 0.1.0")
    assert "First release." in changelog
    meta = json.loads((out / "0.2.0" / "release.json").read_text("utf-8"))
    assert len(meta["norms"]) == 27


def test_only_if_changed_makes_no_release_when_nothing_changed(tmp_path):
    run = tmp_path / "runs" / "a"
    records = write_run(run, n_norms=6)
    out = tmp_path / "releases"
    _publish([run], out, only_if_changed=True)

    same = _publish([run], out, only_if_changed=True)
    write_annotations(run, records[:2])
    changed = _publish([run], out, only_if_changed=True)

    assert same["version"] is None and same["unchanged_since"] == "0.1.0"
    assert changed["version"] == "0.2.0"
    assert sorted(p.name for p in out.iterdir()) == ["0.1.0", "0.2.0", "CHANGELOG.md"]
    assert "2 newly annotated" in changed["changelog"]


def test_an_existing_version_is_refused(annotated_run, tmp_path):
    from pipeline.errors import ReleaseError

    _publish([annotated_run], tmp_path / "releases", version="1.0.0")

    with pytest.raises(ReleaseError, match="Release 1.0.0 already exists"):
        _publish([annotated_run], tmp_path / "releases", version="1.0.0")
    assert _publish([annotated_run], tmp_path / "releases")["version"] == "1.1.0"


def test_push_without_a_token_is_skipped_and_says_so(annotated_run, tmp_path):
    result = push_release(tmp_path, "someone/normloom", "0.1.0")

    assert result.pushed is False
    assert result.message.startswith(
        "Skipping the push to someone/normloom: no Hugging Face token is set."
    )

    from flows.cli import app

    cli = CliRunner().invoke(
        app,
        [
            "publish",
            str(annotated_run),
            "--out",
            str(tmp_path / "releases"),
            "--push-to-hub",
            "someone/normloom",
        ],
    )
    assert cli.exit_code == 0, cli.output
    assert "skipped: Skipping the push to someone/normloom" in cli.output
    assert (tmp_path / "releases" / "0.1.0" / "README.md").is_file()


def test_a_directory_that_is_no_run_is_one_clear_error(tmp_path):
    from flows.cli import app

    cli = CliRunner().invoke(app, ["publish", str(tmp_path / "nope")])

    assert cli.exit_code == 1
    assert "is not a normloom run: expected" in cli.output


def test_a_human_label_outside_the_label_set_keeps_the_llm_label(tmp_path, caplog):
    run = tmp_path / "run"
    records = write_run(run, n_norms=1)
    write_annotations(run, records[:1])
    resolved = run / "annotations" / "resolved.jsonl"
    row = next(iter(jsonlines.open(resolved)))
    with jsonlines.open(resolved, mode="w") as writer:
        writer.write({**row, "intent": "SHRUG"})

    rows = {r["id"]: r for r in build_rows([load_run(run)])}

    turn = rows[records[0].id]["turns"][0]
    assert turn["label_source"] == "human"
    assert turn["norm_label"] == "not_relevant"  # the annotators' answer
    assert turn["intent"] == turn["llm_intent"] == "QUE"  # the LLM's
    assert "human intent 'SHRUG' is none of ACK" in caplog.text


def test_push_with_a_token_uploads_the_release_and_tags_it(tmp_path, monkeypatch):
    import huggingface_hub
    from pydantic import SecretStr

    calls = []

    class RecordingApi:
        def __init__(self, token):
            calls.append(("token", token))

        def __getattr__(self, name):
            return lambda *args, **kwargs: calls.append((name, args, kwargs))

    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    (tmp_path / "1.0.0").mkdir()
    (tmp_path / "CHANGELOG.md").write_text("# Changelog\n", "utf-8")

    result = push_release(tmp_path / "1.0.0", "org/data", "1.0.0", SecretStr("hf_x"))

    assert result.pushed and result.url == "https://huggingface.co/datasets/org/data"
    names = [c[0] for c in calls]
    assert names == [
        "token",
        "create_repo",
        "upload_folder",
        "upload_file",
        "create_tag",
    ]
    assert calls[0] == ("token", "hf_x")
    upload = calls[2][2]
    assert upload["repo_type"] == "dataset" and "arrow/*" in upload["ignore_patterns"]
    assert calls[4][2]["tag"] == "1.0.0"


def test_agreement_plot_draws_undefined_shares_and_negative_alpha(
    tmp_path: Path,
) -> None:
    """A label no one annotated has agreement null; alpha can be below -0.2."""
    from types import SimpleNamespace

    from pipeline.plots import plot_agreement

    entry = {
        "run": "r",
        "alpha": {"norm_label": -0.5, "intent": None},
        "human_llm": {
            "norm_label": {"agreement": 1.0, "n": 6, "confusion": {}},
            "arc_stage": {"agreement": None, "n": 0, "confusion": {}},
        },
    }
    path = plot_agreement(SimpleNamespace(agreement=[entry]), tmp_path / "a.png")
    assert path.stat().st_size > 0


def test_publish_of_a_directory_that_is_no_run_fails_before_the_flow(
    tmp_path: Path,
) -> None:
    from flows.cli import app

    result = CliRunner().invoke(app, ["publish", str(tmp_path / "nope")])
    assert result.exit_code == 1
    assert "is not a normloom run" in result.output
    assert "Traceback" not in result.output
