"""The collect-annotations flow: answers from Argilla to resolved labels and agreement.

Writes to ``<run_dir>/annotations/``: responses.jsonl (record x annotator),
resolved.jsonl (per turn), dialogue_resolved.jsonl (per dialogue), agreement.json and
exemplars.jsonl (approved dialogues as exemplars for the next run).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonlines
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from annotation.agreement import agreement_report
from annotation.client import connect, load_settings
from annotation.collect import fetch_rows, usernames
from annotation.datasets import Level, dataset_name
from annotation.push import find_dataset
from annotation.resolve import exemplars_from, resolve_dialogues, resolve_turns
from flows.annotate import read_run
from pipeline.errors import AnnotationError
from pipeline.schemas import Exemplar
from pipeline.settings import ArgillaSettings
from pipeline.storage import read_jsonl

TASK = {"cache_policy": NO_CACHE}


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def write_jsonl(path: Path, rows: list[dict]) -> None:
    """Replace a JSONL file with ``rows`` (UTF-8, non-ASCII text as itself)."""
    tmp = path.with_suffix(".tmp")
    with jsonlines.open(tmp, mode="w", dumps=_dumps) as writer:
        writer.write_all(rows)
    tmp.replace(path)


@task(name="fetch-responses", **TASK)
def fetch_responses(settings: ArgillaSettings, run_id: str) -> dict[Level, list[dict]]:
    """Fetch the submitted responses of both datasets of a run."""
    client = connect(settings)  # here, so no client (it holds the key) is a task input
    names = usernames(client)
    rows = {}
    for level in Level:
        name = dataset_name(settings.dataset_prefix, run_id, level)
        dataset = find_dataset(client, name, settings.workspace)
        if dataset is None:
            raise AnnotationError(
                f"Dataset {name!r} is not in workspace {settings.workspace!r}; push "
                "the run first (`normloom annotate push RUN_DIR`)."
            )
        rows[level], total = fetch_rows(client, dataset, level, names)
        get_run_logger().info(
            "%s: %d records, %d submitted responses", name, total, len(rows[level])
        )
    return rows


def merge_exemplars(directory: Path, exemplars: list[Exemplar]) -> Path:
    """Add exemplars to ``directory``/annotated.jsonl, replacing ones with their id."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "annotated.jsonl"
    fresh = {e.id for e in exemplars}
    kept = [row for row in read_jsonl(path) if row.get("id") not in fresh]
    write_jsonl(path, kept + [e.model_dump(mode="json") for e in exemplars])
    return path


@flow(name="collect-annotations")
def collect_annotations(run_dir: str, settings_file: str | None = None) -> dict:
    """Bring back annotators' submitted answers and measure agreement.

    Args:
        run_dir: Directory of a run that was pushed with annotate-dialogues.
        settings_file: JSON or TOML file with Argilla settings over the
            environment's.

    Returns:
        The agreement report (as in agreement.json) with the output paths and
        counts of resolved turns, dialogues and exemplars.
    """
    logger = get_run_logger()
    settings = load_settings(
        settings_file=Path(settings_file) if settings_file else None
    )
    run = Path(run_dir)
    dialogues = {d.id: d for d in read_run(run)}

    rows = fetch_responses(settings, run.resolve().name)
    turn_rows, dialogue_rows = rows[Level.TURNS], rows[Level.DIALOGUES]

    resolved = resolve_turns(turn_rows)
    dialogue_resolved = resolve_dialogues(dialogue_rows)
    report = agreement_report(turn_rows, dialogue_rows, resolved, dialogues)
    exemplars = exemplars_from(dialogue_resolved, dialogues)

    out = run / "annotations"
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "responses.jsonl", dialogue_rows + turn_rows)
    write_jsonl(out / "resolved.jsonl", resolved)
    write_jsonl(out / "dialogue_resolved.jsonl", dialogue_resolved)
    write_jsonl(out / "exemplars.jsonl", [e.model_dump(mode="json") for e in exemplars])
    (out / "agreement.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2), "utf-8"
    )
    if settings.exemplar_dir is not None and exemplars:
        path = merge_exemplars(Path(settings.exemplar_dir), exemplars)
        logger.info("Added %d exemplars to %s", len(exemplars), path)

    logger.info(
        "%d responses on %d records; %d turns resolved (%d ties), %d dialogues, "
        "%d exemplars; written to %s",
        report["n_responses"],
        report["n_records"],
        len(resolved),
        sum(r["tie"] for r in resolved),
        len(dialogue_resolved),
        len(exemplars),
        out,
    )
    return {
        **report,
        "resolved_turns": len(resolved),
        "ties": sum(r["tie"] for r in resolved),
        "resolved_dialogues": len(dialogue_resolved),
        "exemplars": len(exemplars),
        "out": str(out),
    }
