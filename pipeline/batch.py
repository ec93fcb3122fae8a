"""Batch mode: replies through the OpenAI Batch API instead of one call each.

The LLM client, given a ``BatchQueue``, does not call on a cache miss: it queues
the request under its cache key (the batch line's ``custom_id``) and raises
``BatchPending``. The flow runs every item as far as the cache allows, sends what
was queued as one batch per wave (all scenarios, then all first judgements, ...),
waits for it, writes each result into the cache by custom id, and runs the items
again. Batch ids are appended to ``batches.jsonl`` in the run directory as soon as
a batch is created, so a restarted run collects the batches it already sent
instead of sending them again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import openai

from pipeline.errors import BatchPending, LLMQuotaError, LLMTransportError
from pipeline.settings import BatchSettings, LLMSettings
from pipeline.transport import Completion, parse_completion

if TYPE_CHECKING:
    from pipeline.llm import LLMClient

log = logging.getLogger(__name__)

DONE = {"completed", "failed", "expired", "cancelled"}


class BatchQueue:
    """Requests waiting for the Batch API, and the batches of one run.

    Args:
        run_dir: Where ``batches.jsonl`` is kept.
        settings: Polling, window and batch size.
        llm: Key, timeout and retry budget of the endpoint.
        base_url: The endpoint, e.g. ``https://api.openai.com/v1``.
    """

    def __init__(
        self, run_dir: Path, settings: BatchSettings, llm: LLMSettings, base_url: str
    ) -> None:
        self.path = Path(run_dir) / "batches.jsonl"
        self.settings = settings
        self.max_retries = llm.max_retries
        key = llm.api_key.get_secret_value() if llm.api_key else "not-needed"
        # The SDK is fine here: a few calls per batch, its own retries on.
        self._api = openai.OpenAI(
            base_url=base_url, api_key=key, timeout=llm.timeout_s, max_retries=3
        )
        self._lock = threading.Lock()
        self._queued: dict[str, dict] = {}
        self._tries: dict[str, int] = {}
        self._failed: dict[str, Exception] = {}
        self.submitted = 0

    def defer(self, key: str, body: dict, stage: str, language: str | None) -> None:
        """Queue one request under ``key`` and raise ``BatchPending``.

        Raises:
            LLMTransportError: The batch answered this request with an error as
                many times as retries are allowed.
            LLMQuotaError: The batch said the account is out of quota.
            BatchPending: Always otherwise: the reply comes with the next batch.
        """
        with self._lock:
            failed = self._failed.get(key)
            if failed is None:
                self._queued[key] = {"body": body, "stage": stage, "language": language}
        if failed is not None:
            raise failed
        raise BatchPending(key)

    @property
    def queued(self) -> int:
        """Requests waiting to be sent."""
        with self._lock:
            return len(self._queued)

    def _records(self) -> tuple[dict[str, dict], set[str]]:
        """Return the batches this run created, and the ids of those collected."""
        created, collected = {}, set()
        if self.path.exists():
            for line in self.path.read_text("utf-8").splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                if row.get("collected"):
                    collected.add(row["batch_id"])
                else:
                    created[row["batch_id"]] = row
        return created, collected

    def _append(self, row: dict) -> None:
        with self.path.open("a", encoding="utf-8") as fp:
            fp.write(json.dumps(row, ensure_ascii=False) + "\n")
            fp.flush()

    def submit(self) -> list[str]:
        """Send every queued request as batches of at most ``max_requests``."""
        with self._lock:
            queued, self._queued = self._queued, {}
        ids = []
        keys = list(queued)
        for start in range(0, len(keys), self.settings.max_requests):
            chunk = keys[start : start + self.settings.max_requests]
            lines = "".join(
                json.dumps(
                    {
                        "custom_id": key,
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": queued[key]["body"],
                    },
                    ensure_ascii=False,
                )
                + "\n"
                for key in chunk
            )
            upload = self._api.files.create(
                file=("normloom-batch.jsonl", lines.encode("utf-8")), purpose="batch"
            )
            batch = self._api.batches.create(
                input_file_id=upload.id,
                endpoint="/v1/chat/completions",
                completion_window=self.settings.completion_window,
            )
            self._append(
                {
                    "batch_id": batch.id,
                    "input_file_id": upload.id,
                    "requests": {
                        k: [queued[k]["stage"], queued[k]["language"]] for k in chunk
                    },
                }
            )
            ids.append(batch.id)
            self.submitted += 1
            log.info("Sent batch %s with %d requests", batch.id, len(chunk))
        return ids

    def collect(self, llm: LLMClient) -> int:
        """Wait for every batch not yet collected and cache its results.

        Returns:
            The number of requests answered, with a reply or with an error.
        """
        created, collected = self._records()
        answered = 0
        for batch_id, row in created.items():
            if batch_id in collected:
                continue
            batch = self._wait(batch_id)
            for file_id in (batch.output_file_id, batch.error_file_id):
                if file_id:
                    answered += self._ingest(file_id, row["requests"], llm)
            self._append({"batch_id": batch_id, "collected": True})
            log.info("Collected batch %s (%s)", batch_id, batch.status)
        return answered

    def _wait(self, batch_id: str):
        while True:
            batch = self._api.batches.retrieve(batch_id)
            if batch.status in DONE:
                return batch
            time.sleep(self.settings.poll_s)

    def _ingest(self, file_id: str, requests: dict[str, list], llm: LLMClient) -> int:
        answered = 0
        text = self._api.files.content(file_id).text
        for line in text.splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            key = row.get("custom_id")
            if key not in requests:
                continue
            stage, language = requests[key]
            answered += 1
            response = row.get("response") or {}
            status = int(response.get("status_code") or 0)
            raw = json.dumps(response.get("body") or row.get("error") or {}).encode()
            try:
                body = parse_completion(status or 500, raw, None)
            except (LLMQuotaError, LLMTransportError) as err:
                self._failed[key] = err  # no retry can change these answers
                continue
            except Exception as err:  # noqa: BLE001 - every failure kind is kept
                self._fail(key, err)
                continue
            llm.store(key, stage, language, Completion.from_body(body))
        return answered

    def _fail(self, key: str, err: Exception) -> None:
        """Count a failed line; past the retry budget the request fails for good."""
        with self._lock:
            self._tries[key] = self._tries.get(key, 0) + 1
            if self._tries[key] > self.max_retries:
                self._failed[key] = LLMTransportError(
                    f"The batch answered this request with an error "
                    f"{self._tries[key]} time(s): {err}"
                )
