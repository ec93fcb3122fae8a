"""How the generation flow runs its items: threads, Dask, or Batch API waves."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from prefect import get_run_logger
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from pipeline.batch import BatchQueue
from pipeline.errors import BatchPending, LLMTransportError
from pipeline.settings import Settings


def task_runner(settings: Settings) -> TaskRunner:
    """Return the task runner of the item tasks: a Dask cluster or a thread pool.

    The thread pool has as many workers as calls may be in flight (at least 4), so
    the LLM layer's limit, not the pool, bounds the calls.
    """
    if settings.runner.dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=settings.runner.dask_address)
    workers = settings.runner.workers or max(4, settings.llm.concurrency)
    return ThreadPoolTaskRunner(max_workers=workers)


def run_windowed(
    runner: TaskRunner,
    task: Any,
    items: Sequence,
    rt: Any,
    window: int | None = None,
    key: str = "item",
) -> None:
    """Submit one task per item, keeping at most ``window`` futures alive.

    ``key`` names the task's parameter that takes the item.

    Finished futures are dropped as the run goes, so memory does not grow with the
    number of items.
    """
    window = window or 4 * max(4, rt.settings.llm.concurrency)
    alive: deque = deque()
    for item in items:
        alive.append(runner.submit(task, {key: item, "rt": rt}))
        while len(alive) >= window:
            alive.popleft().wait()
    while alive:
        alive.popleft().wait()


def run_batch_waves(
    items: Sequence,
    rt: Any,
    queue: BatchQueue,
    finish: Callable[..., str],
) -> None:
    """Run items in waves, each wave's missing replies sent as one batch.

    Every pass takes each open item as far as the cache allows; an item whose
    next reply is missing is queued and waits for the next wave. Batches a
    previous process sent are collected first, never sent again.

    Raises:
        LLMTransportError: A batch came back without any of its results.
    """
    logger = get_run_logger()
    resumed = queue.collect(rt.llm)
    if resumed:
        logger.info("Collected %d replies of batches sent before a restart", resumed)
    open_items = list(items)
    wave = 0
    while open_items:
        waiting = []
        for item in open_items:
            try:
                finish(item, rt, as_tasks=False)
            except BatchPending:
                waiting.append(item)
        if not waiting:
            break
        wave += 1
        sent = queue.queued
        queue.submit()
        answered = queue.collect(rt.llm)
        logger.info(
            "Batch wave %d: %d items waiting, %d requests sent, %d answered",
            wave,
            len(waiting),
            sent,
            answered,
        )
        if answered == 0 and sent:
            raise LLMTransportError(
                f"Batch wave {wave} sent {sent} requests and got no result back; "
                "check the batch in the provider's dashboard, then re-run."
            )
        open_items = waiting
