"""Bringing annotators' answers back from Argilla: one row per record x annotator.

Only submitted responses count. A record's status ("completed" once it has enough
submitted answers) says nothing about any single response, and a draft or a
discarded response is not an answer, so each response's own status is checked.
"""

from __future__ import annotations

import logging
from typing import Any

import argilla as rg

from annotation.datasets import QUESTIONS, Level
from pipeline.errors import ArgillaServerError

log = logging.getLogger(__name__)

PAGE = 1000  # the most the server returns per page


def _get(client: rg.Argilla, path: str, **params: Any) -> dict:
    reply = client.http_client.get(path, params=params)
    if reply.status_code >= 400:
        raise ArgillaServerError(
            f"Argilla answered {reply.status_code} to GET {path}: {reply.text[:300]}"
        )
    return reply.json()


def usernames(client: rg.Argilla) -> dict[str, str]:
    """Map every user id on the server to its username."""
    return {u["id"]: u["username"] for u in _get(client, "/api/v1/users")["items"]}


def iter_records(client: rg.Argilla, dataset: rg.Dataset):
    """Yield every record of a dataset as the API returns it, with its responses."""
    offset = 0
    while True:
        page = _get(
            client,
            f"/api/v1/datasets/{dataset.id}/records",
            include=["responses"],
            offset=offset,
            limit=PAGE,
        )
        yield from page["items"]
        offset += len(page["items"])
        if not page["items"] or offset >= page["total"]:
            return


def response_rows(
    records: list[dict], level: Level, names: dict[str, str]
) -> list[dict]:
    """Turn records with responses into one row per record x submitting annotator.

    Args:
        records: Records as the API returns them (``include=responses``).
        level: Which dataset they come from.
        names: User id -> username.
    """
    questions = [q.name for q in QUESTIONS[level]]
    rows = []
    for record in records:
        metadata = record.get("metadata") or {}
        for response in record.get("responses") or []:
            if response.get("status") != "submitted":
                continue
            values = response.get("values") or {}
            user_id = str(response["user_id"])
            rows.append(
                {
                    "record_id": record.get("external_id") or str(record["id"]),
                    "dataset": level.value,
                    "dialogue_id": metadata.get("dialogue_id"),
                    "turn_index": metadata.get("turn_index")
                    if level is Level.TURNS
                    else None,
                    "annotator": names.get(user_id, user_id),
                    **{q: (values.get(q) or {}).get("value") for q in questions},
                }
            )
    return sorted(
        rows,
        key=lambda r: (r["dialogue_id"] or "", r["turn_index"] or 0, r["annotator"]),
    )


def fetch_rows(
    client: rg.Argilla, dataset: rg.Dataset, level: Level, names: dict[str, str]
) -> tuple[list[dict], int]:
    """Return the submitted rows of a dataset and how many records it holds."""
    records = list(iter_records(client, dataset))
    rows = response_rows(records, level, names)
    log.debug(
        "%s: %d records, %d submitted responses", dataset.name, len(records), len(rows)
    )
    return rows, len(records)
