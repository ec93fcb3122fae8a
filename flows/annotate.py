"""The annotate-dialogues flow: a run's accepted dialogues to Argilla."""

from __future__ import annotations

import json
import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from annotation.client import connect, load_settings, server_address
from annotation.datasets import Level, dataset_name
from annotation.push import (
    count_records,
    ensure_annotators,
    ensure_dataset,
    ensure_workspace,
    find_dataset,
    push_records,
)
from annotation.records import AnnotationRecord, build_records, validate_records
from pipeline.errors import AnnotationError
from pipeline.run_files import read_dialogues
from pipeline.schemas import DialogueRecord
from pipeline.settings import ArgillaSettings

TASK = {"cache_policy": NO_CACHE}


def read_run(run_dir: Path) -> list[DialogueRecord]:
    """Read the accepted dialogues of a run.

    Raises:
        AnnotationError: The run has no dialogues.jsonl.
    """
    path = Path(run_dir) / "dialogues.jsonl"
    if not path.exists():
        raise AnnotationError(
            f"{path} does not exist; expected the directory of a finished "
            "`normloom generate` run."
        )
    return read_dialogues(path, AnnotationError)


@task(name="build-records", **TASK)
def make_records(dialogues: list[DialogueRecord]) -> list[AnnotationRecord]:
    """Build the dialogue and turn records and check them before anything is sent."""
    records = build_records(dialogues)
    validate_records(records)
    return records


# Tasks get the settings (the key inside stays a SecretStr) and connect themselves:
# a client object carries the key in plain text, so it never becomes a task input.
@task(name="prepare-datasets", **TASK)
def prepare_datasets(settings: ArgillaSettings, run_id: str) -> dict[Level, bool]:
    """Make sure the workspace, the annotators and both datasets exist.

    Returns, per level, whether its dataset was created now.
    """
    client = connect(settings)
    workspace = ensure_workspace(client, settings.workspace)
    added = ensure_annotators(client, workspace, settings.annotators)
    if added:
        get_run_logger().info(
            "Added %s to workspace %s", ", ".join(added), workspace.name
        )
    return {
        level: ensure_dataset(
            client,
            dataset_name(settings.dataset_prefix, run_id, level),
            settings.workspace,
            level,
            settings.min_submitted,
        )[1]
        for level in Level
    }


@task(name="push-records", **TASK)
def send_records(
    settings: ArgillaSettings, name: str, records: list[AnnotationRecord]
) -> dict:
    """Upsert one dataset's records and report how many the server holds."""
    client = connect(settings)
    dataset = find_dataset(client, name, settings.workspace)
    if dataset is None:
        raise AnnotationError(f"Dataset {name!r} disappeared while pushing.")
    logger, sent = get_run_logger(), 0

    def report(n: int) -> None:
        nonlocal sent
        sent += n
        logger.info("%s: %d of %d records sent", name, sent, len(records))

    seconds = push_records(dataset, records, settings.batch_size, progress=report)
    return {
        "name": dataset.name,
        "pushed": len(records),
        "on_server": count_records(client, dataset),
        "seconds": round(seconds, 3),
    }


@flow(name="annotate-dialogues")
def annotate_dialogues(
    run_dir: str, settings_file: str | None = None, limit: int | None = None
) -> dict:
    """Send a run's accepted dialogues to Argilla for turn-level annotation.

    Args:
        run_dir: Directory of a `normloom generate` run.
        settings_file: JSON or TOML file with Argilla settings (workspace,
            annotators, min_submitted, ...) over the environment's.
        limit: Push only the first ``limit`` dialogues.

    Returns:
        A summary: server URL, workspace, and per dataset its name, records pushed,
        records on the server and seconds taken; also written to
        ``<run_dir>/annotations/push.json``.
    """
    logger = get_run_logger()
    settings = load_settings(
        settings_file=Path(settings_file) if settings_file else None
    )
    run = Path(run_dir)
    dialogues = read_run(run)[:limit]
    records = make_records(dialogues)

    run_id = run.resolve().name
    created = prepare_datasets(settings, run_id)

    started = time.monotonic()
    report = {}
    for level in Level:
        name = dataset_name(settings.dataset_prefix, run_id, level)
        chosen = [r for r in records if r.level is level]
        report[level.value] = {
            **send_records(settings, name, chosen),
            "created": created[level],
        }
    seconds = time.monotonic() - started

    summary = {
        "run_dir": str(run),
        "url": server_address(settings)[0],
        "workspace": settings.workspace,
        "dialogues": len(dialogues),
        "datasets": report,
        "seconds": round(seconds, 3),
        "records_per_s": round(len(records) / seconds, 1) if seconds else None,
    }
    out = run / "annotations"
    out.mkdir(parents=True, exist_ok=True)
    (out / "push.json").write_text(json.dumps(summary, indent=2), "utf-8")
    logger.info(
        "Pushed %d dialogue and %d turn records of %d dialogues to %s in %.1f s",
        report["dialogues"]["pushed"],
        report["turns"]["pushed"],
        len(dialogues),
        summary["url"],
        seconds,
    )
    return summary
