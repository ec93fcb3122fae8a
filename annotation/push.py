"""Sending a run's records to Argilla: workspace, annotators, datasets, batches.

Records are upserted by their deterministic id, so pushing again updates them in
place. Every record always goes with its fields, also when only its suggestions
changed: the server answers 500 to an update of suggestions without fields.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Callable

import argilla as rg
from argilla._exceptions import ArgillaAPIError, ArgillaError

from annotation.datasets import FIELDS, QUESTIONS, Level, argilla_settings
from annotation.records import AnnotationRecord
from pipeline.errors import AnnotationError, ArgillaServerError

log = logging.getLogger(__name__)

POSITION = re.compile(r"Record at position (\d+)")


def ensure_workspace(client: rg.Argilla, name: str) -> rg.Workspace:
    """Return the workspace, creating it when the user may.

    Raises:
        AnnotationError: It does not exist and cannot be created.
    """
    workspace = client.workspaces(name)
    if workspace is not None:
        return workspace
    try:
        workspace = rg.Workspace(name=name, client=client).create()
    except ArgillaError as err:
        raise AnnotationError(
            f"Workspace {name!r} does not exist and this user cannot create it "
            f"({err}); create it in the Argilla UI or set NORMLOOM_ARGILLA__WORKSPACE."
        ) from err
    log.info("Created workspace %s", name)
    return workspace


def find_user(client: rg.Argilla, username: str) -> rg.User | None:
    """Return the user of that name, or None (without the SDK's warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return client.users(username=username)


def ensure_annotators(
    client: rg.Argilla, workspace: rg.Workspace, usernames: list[str]
) -> list[str]:
    """Add the annotators to the workspace; return the usernames that were added.

    Raises:
        AnnotationError: A username does not exist on the server.
    """
    missing = [u for u in usernames if find_user(client, u) is None]
    if missing:
        raise AnnotationError(
            f"Annotator(s) {', '.join(missing)} do not exist on the Argilla server; "
            "create them (Argilla UI or `normloom argilla add-user NAME`) or remove "
            "them from the annotators setting."
        )
    members = {u.username for u in workspace.users}
    added = []
    for name in usernames:
        if name not in members:
            workspace.add_user(name)
            added.append(name)
    return added


def _check_shape(dataset: rg.Dataset, level: Level) -> None:
    fields = {f.name for f in dataset.settings.fields}
    questions = {q.name for q in dataset.settings.questions}
    want_fields, want_questions = set(FIELDS[level]), {q.name for q in QUESTIONS[level]}
    if fields != want_fields or questions != want_questions:
        raise AnnotationError(
            f"Dataset {dataset.name!r} exists with other fields or questions "
            f"(fields {sorted(fields)}, questions {sorted(questions)}; expected "
            f"{sorted(want_fields)} and {sorted(want_questions)}). Delete it or push "
            "under another NORMLOOM_ARGILLA__DATASET_PREFIX."
        )


def find_dataset(client: rg.Argilla, name: str, workspace: str) -> rg.Dataset | None:
    """Return the dataset of that name in the workspace, or None."""
    with warnings.catch_warnings():
        # The SDK warns when a dataset is not there; None says it already.
        warnings.simplefilter("ignore", UserWarning)
        return client.datasets(name=name, workspace=workspace)


def _set_min_submitted(client: rg.Argilla, dataset: rg.Dataset, wanted: int) -> None:
    """Bring an existing dataset's answers-per-record to the setting.

    The server then recomputes every record's status in a job its worker runs.
    """
    if dataset.settings.distribution.min_submitted == wanted:
        return
    reply = client.http_client.patch(
        f"/api/v1/datasets/{dataset.id}",
        json={"distribution": {"strategy": "overlap", "min_submitted": wanted}},
    )
    if reply.status_code >= 400:
        raise ArgillaServerError(
            f"Argilla refused to set min_submitted={wanted} on dataset "
            f"{dataset.name!r} (HTTP {reply.status_code}): {reply.text[:300]}"
        )
    log.info("Dataset %s now needs %d submitted answers a record", dataset.name, wanted)


def ensure_dataset(
    client: rg.Argilla, name: str, workspace: str, level: Level, min_submitted: int
) -> tuple[rg.Dataset, bool]:
    """Return the dataset and whether it was created now."""
    dataset = find_dataset(client, name, workspace)
    if dataset is not None:
        _check_shape(dataset, level)
        _set_min_submitted(client, dataset, min_submitted)
        return dataset, False
    settings = argilla_settings(level, min_submitted, client)
    dataset = rg.Dataset(
        name=name, workspace=workspace, settings=settings, client=client
    )
    try:
        dataset.create()
    except ArgillaError as err:
        raise AnnotationError(f"Could not create dataset {name!r}: {err}") from err
    log.info("Created dataset %s in workspace %s", name, workspace)
    return dataset, True


def to_argilla(record: AnnotationRecord) -> rg.Record:
    """Turn one of our records into the SDK's record (fields always included)."""
    return rg.Record(
        id=record.id,
        fields=record.fields,
        metadata=record.metadata,
        suggestions=[
            rg.Suggestion(
                question_name=s.question, value=s.value, score=s.score, agent=s.agent
            )
            for s in record.suggestions
        ],
    )


def _server_error(
    err: Exception, record_id: str | None, dataset: str
) -> ArgillaServerError:
    status = getattr(err, "status_code", None)
    where = f"record {record_id}" if record_id else "a batch of records"
    return ArgillaServerError(
        f"Argilla refused {where} in dataset {dataset!r} (HTTP {status}): "
        f"{str(err)[:500]}",
        record_id=record_id,
    )


def _send(dataset: rg.Dataset, records: list[AnnotationRecord]) -> None:
    with warnings.catch_warnings():
        # Once records have answers the SDK warns, about the responses the server
        # sends back, that they carry no user id; those are not ours to send.
        warnings.simplefilter("ignore", UserWarning)
        dataset.records.log([to_argilla(r) for r in records], batch_size=len(records))


def _log_batch(dataset: rg.Dataset, batch: list[AnnotationRecord]) -> None:
    """Send one batch; on failure find and name the record the server refused."""
    try:
        _send(dataset, batch)
        return
    except ArgillaAPIError as err:
        found = POSITION.search(str(err))
        if found and int(found.group(1)) < len(batch):
            raise _server_error(
                err, batch[int(found.group(1))].id, dataset.name
            ) from err
        first = err
    # A 5xx names no record: send the batch one by one to find the one at fault.
    for record in batch:
        try:
            _send(dataset, [record])
        except ArgillaAPIError as err:
            raise _server_error(err, record.id, dataset.name) from err
    raise _server_error(first, None, dataset.name) from first


def push_records(
    dataset: rg.Dataset,
    records: list[AnnotationRecord],
    batch_size: int,
    progress: Callable[[int], None] | None = None,
) -> float:
    """Upsert records in batches; return the seconds it took.

    Raises:
        ArgillaServerError: The server refused a record; the message names it.
    """
    started = time.monotonic()
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        _log_batch(dataset, batch)
        if progress is not None:
            progress(len(batch))
        log.debug("Sent records %d-%d to %s", start, start + len(batch), dataset.name)
    return time.monotonic() - started


def count_records(client: rg.Argilla, dataset: rg.Dataset) -> int:
    """Return how many records the dataset holds on the server."""
    reply = client.http_client.get(f"/api/v1/datasets/{dataset.id}/progress")
    reply.raise_for_status()
    return int(reply.json()["total"])
