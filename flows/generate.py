"""The generate-dialogues flow: seed norms to filtered, turn-labelled dialogues."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

import pipeline
from flows.execution import run_batch_waves, run_windowed, task_runner
from pipeline.batch import BatchQueue
from pipeline.cache import ResponseCache
from pipeline.checks import DuplicateIndex, dialogue_text, run_rule_checks
from pipeline.cultures import Registry, load_registry
from pipeline.endpoint import Endpoint, open_endpoint
from pipeline.errors import ConfigError, LLMQuotaError, NormloomError
from pipeline.exemplars import load_exemplars
from pipeline.items import failed_record, finished_record, plan_items, should_retry
from pipeline.llm import LLMClient
from pipeline.pairs import plan_pairs
from pipeline.prompts import template_hashes
from pipeline.schemas import (
    DialogueRecord,
    DialogueType,
    Exemplar,
    Refinement,
    Scenario,
    SeedNorm,
    Verdict,
    WorkItem,
)
from pipeline.seeds import load_seeds, write_seeds
from pipeline.settings import Price, Settings
from pipeline.stages import StageContext
from pipeline.stages.adapt import adapt_scenario
from pipeline.stages.dialogues import generate_dialogue
from pipeline.stages.grow import grow_norms
from pipeline.stages.judge import judge_checks, judge_dialogue
from pipeline.stages.labels import label_turns
from pipeline.stages.refine import refine_scenario
from pipeline.stages.scenarios import generate_scenario
from pipeline.storage import RunStore, read_jsonl
from pipeline.summary import summarize, summary_markdown
from pipeline.transport import QUOTA_MESSAGE
from pipeline.usage import UsageStats


def _unexpected(task, task_run, state) -> bool:
    """Retry a task only for errors our own layers have not already retried."""
    try:
        state.result()
    except NormloomError:
        return False
    except Exception:  # noqa: BLE001 - anything else is worth one more try
        return True
    return False


STAGE_TASK = {"cache_policy": NO_CACHE, "retries": 1, "retry_condition_fn": _unexpected}


@dataclass
class Runtime:
    """Everything the item tasks share during one run.

    A task runner that pickles its tasks (Dask) gets this process's Runtime back
    when it unpickles here, and a Runtime built from the same settings, endpoint
    and run directory in a worker process elsewhere.
    """

    settings: Settings
    registry: Registry
    llm: LLMClient
    store: RunStore
    exemplars: list[Exemplar]
    duplicates: DuplicateIndex
    endpoint: Endpoint | None = None
    # Set once the endpoint says the account is out of quota: every item still
    # to start is left for the re-run instead of failing one call at a time.
    quota_stop: threading.Event = field(default_factory=threading.Event)

    def context(self, seed: SeedNorm) -> StageContext:
        """Return the stage context for a seed's culture and language."""
        return StageContext(
            llm=self.llm.for_language(seed.language),
            settings=self.settings,
            culture=self.registry.culture(seed.culture),
            language=self.registry.language(seed.language),
        )

    def __reduce__(self):
        _RUNTIMES.setdefault(str(self.store.dir), self)
        return (_runtime_for, (self.settings, self.endpoint, str(self.store.dir)))


_RUNTIMES: dict[str, Runtime] = {}


def _runtime_for(settings: Settings, endpoint: Endpoint, run_dir: str) -> Runtime:
    """Return this process's Runtime of a run, building it on a remote worker."""
    if run_dir not in _RUNTIMES:
        # A Dask worker in another process: the run directory must be on a shared
        # file system. Its duplicate index knows only what was accepted before it
        # started and what it accepts itself.
        _RUNTIMES[run_dir] = _build_runtime(settings, endpoint, Path(run_dir))
    return _RUNTIMES[run_dir]


def _build_runtime(
    settings: Settings,
    endpoint: Endpoint,
    run_dir: Path,
    store: RunStore | None = None,
    batch: BatchQueue | None = None,
) -> Runtime:
    store = store or RunStore(run_dir)
    price = (
        Price(prompt=0, completion=0)
        if endpoint.embedded
        else settings.llm.prices.get(endpoint.model)
    )
    factor = settings.batch.price_factor if batch is not None else 1.0
    cache = ResponseCache(settings.llm.cache_path or run_dir / "llm_cache.sqlite")
    llm = LLMClient(
        settings.llm,
        endpoint.base_url,
        endpoint.model,
        cache=cache,
        stats=UsageStats(price, factor),
        llama_cpp=endpoint.embedded,
        batch=batch,
    )
    return Runtime(
        settings,
        load_registry(settings.cultures_path),
        llm,
        store,
        load_exemplars(settings.generation.exemplar_dir),
        _rebuild_duplicates(settings, store),
        endpoint,
    )


@task(name="write-scenario", **STAGE_TASK)
def write_scenario(item: WorkItem, rt: Runtime) -> Scenario:
    """Write the scenario of one item."""
    scenario = generate_scenario(item, rt.context(item.seed))
    rt.store.append("scenarios", scenario)
    return scenario


@task(name="adapt-scenario", **STAGE_TASK)
def adapt_to_culture(
    lead: Scenario, lead_seed: SeedNorm, item: WorkItem, rt: Runtime
) -> Scenario:
    """Carry a pair's lead scenario over to another culture."""
    scenario = adapt_scenario(lead, lead_seed, item, rt.context(item.seed))
    rt.store.append("scenarios", scenario)
    return scenario


@task(name="refine-situation", **STAGE_TASK)
def refine_situation(scenario: Scenario, seed: SeedNorm, rt: Runtime) -> Refinement:
    """Refine a scenario's situation toward the exemplars."""
    refinement = refine_scenario(scenario, seed, rt.exemplars, rt.context(seed))
    rt.store.append("refinements", refinement)
    return refinement


@task(name="write-dialogue", **STAGE_TASK)
def write_dialogue(scenario: Scenario, situation: str, seed: SeedNorm, rt: Runtime):
    """Write the dialogue of a refined scenario."""
    return generate_dialogue(scenario, situation, seed, rt.context(seed))


@task(name="label-turns", **STAGE_TASK)
def label_dialogue(turns, scenario: Scenario, seed: SeedNorm, rt: Runtime):
    """Label every turn of a dialogue."""
    return label_turns(turns, scenario, seed, rt.context(seed))


@task(name="judge-dialogue", **STAGE_TASK)
def judge(turns, scenario: Scenario, situation: str, seed: SeedNorm, rt: Runtime):
    """Have the LLM judge score a dialogue."""
    return judge_dialogue(turns, scenario, situation, seed, rt.context(seed))


@task(name="make-dialogue", cache_policy=NO_CACHE)
def make_dialogue(
    item: WorkItem,
    rt: Runtime,
    lead: Scenario | None = None,
    lead_seed: SeedNorm | None = None,
) -> str:
    """Take one item through every stage and write where it ended up."""
    return finish_item(item, rt, rt.settings.runner.stage_tasks, lead, lead_seed)


def finish_item(
    item: WorkItem,
    rt: Runtime,
    as_tasks: bool = True,
    lead: Scenario | None = None,
    lead_seed: SeedNorm | None = None,
) -> str:
    """Take one item through every stage, as Prefect tasks or plain calls.

    In comparable mode ``lead`` is the pair's scenario: the lead item uses it as
    it is, the others adapt it to their culture.

    Raises:
        BatchPending: In batch mode, a reply is not in yet; the item's record is
            not written until a later wave finishes it.
    """
    seed, ctx = item.seed, rt.context(item.seed)
    if rt.quota_stop.is_set():
        return "stopped"

    def step(t):
        return t if as_tasks else t.fn

    stage, scenario = "scenario", None
    try:
        if lead is None:
            scenario = step(write_scenario)(item, rt)
        elif lead.item_id == item.id:
            scenario = lead
        else:
            scenario = step(adapt_to_culture)(lead, lead_seed, item, rt)
        stage = "refine"
        situation = step(refine_situation)(scenario, seed, rt).final_situation
        stage = "dialogue"
        turns = step(write_dialogue)(scenario, situation, seed, rt)
        stage = "labels"
        labelled = step(label_dialogue)(turns, scenario, seed, rt)

        stage = "checks"
        checks = run_rule_checks(
            labelled,
            item.type,
            ctx.language,
            rt.settings.generation,
            rt.settings.checks,
            None,
            item.id,
            participants=[p.name for p in scenario.participants],
        )
        scores = None
        if all(c.passed for c in checks) and rt.settings.checks.judge:
            stage = "judge"
            scores = step(judge)(labelled, scenario, situation, seed, rt)
            checks += judge_checks(scores, item.type, rt.settings.checks)
        if all(c.passed for c in checks):
            checks.append(rt.duplicates.check(item.id, dialogue_text(labelled)))
        record = finished_record(
            item, scenario, situation, labelled, checks, scores, rt.llm.model
        )
    except LLMQuotaError:
        # Nothing is written: the re-run after adding credit does the item, its
        # replies so far from the cache.
        rt.quota_stop.set()
        return "stopped"
    except NormloomError as err:
        record = failed_record(item, err, stage, rt.llm.model, scenario)

    _store_record(rt.store, record)
    get_run_logger().info(
        "%s %s/%s/%s: %s %s",
        item.id,
        seed.culture,
        item.type.value,
        seed.category,
        record.verdict.value,
        "; ".join(record.reasons)[:200],
    )
    return record.verdict.value


@task(name="make-pair", cache_policy=NO_CACHE)
def make_pair(items: list[WorkItem], rt: Runtime) -> list[str]:
    """Write a pair's scenario once, for its first item, and render it per culture."""
    lead_item = items[0]
    done = rt.store.done_items()
    todo = [item for item in items if item.id not in done]
    try:
        lead = write_scenario(lead_item, rt)
    except LLMQuotaError:
        rt.quota_stop.set()
        return ["stopped"] * len(todo)
    except NormloomError as err:
        # Without the lead scenario nothing of the pair can be matched.
        for item in todo:
            _store_record(rt.store, failed_record(item, err, "scenario", rt.llm.model))
        return [Verdict.FAILED.value] * len(todo)
    return [make_dialogue(item, rt, lead, lead_item.seed) for item in todo]


@task(name="grow-norms", cache_policy=NO_CACHE)
def grow_seed_bank(seeds: list[SeedNorm], k: int, rt: Runtime) -> list[SeedNorm]:
    """Grow k sub-norms per culture and category; keep them in grown_seeds.jsonl."""
    growth = grow_norms(seeds, rt.llm, rt.settings, rt.registry, k)
    write_seeds(growth.seeds, rt.store.dir / "grown_seeds.jsonl")
    get_run_logger().info(
        "Grew %d sub-norm(s); %d candidate(s) left out.",
        len(growth.seeds),
        len(growth.rejected),
    )
    return growth.seeds


def _store_record(store: RunStore, record: DialogueRecord) -> None:
    kind = "dialogues" if record.verdict is Verdict.ACCEPTED else "rejected"
    store.append(kind, record)


def default_run_id(
    seeds: Path, cultures, types, per_norm, limit, model, grow=None, comparable=False
) -> str:
    """Name a run after its inputs, so the same command resumes the same run."""
    digest = hashlib.sha256(Path(seeds).read_bytes())
    digest.update(json.dumps([cultures, types, per_norm, limit, model]).encode())
    # Added only when used, so that runs made without them keep their names.
    if grow or comparable:
        digest.update(json.dumps({"grow": grow, "comparable": comparable}).encode())
    return f"{Path(seeds).stem}-{digest.hexdigest()[:8]}"


def parse_types(types: list[str] | None) -> list[DialogueType]:
    """Turn type names into dialogue types; all three when none are given."""
    if not types:
        return list(DialogueType)
    known = [t.value for t in DialogueType]
    types = [t.strip().lower() for t in types]
    bad = [t for t in types if t not in known]
    if bad:
        raise ConfigError(
            f"Unknown dialogue type(s) {', '.join(bad)}; expected {', '.join(known)}."
        )
    return [DialogueType(t) for t in types]


def resolve_cultures(registry: Registry, cultures: list[str] | None) -> list[str]:
    """Map culture ids or aliases to culture ids; an unknown one is a ConfigError."""
    wanted, bad = [], []
    for name in cultures or []:
        culture = registry.culture(name)
        if culture is None:
            bad.append(name)
        else:
            wanted.append(culture.id)
    if bad:
        known = ", ".join(sorted(registry.cultures))
        raise ConfigError(
            f"Unknown culture(s) {', '.join(bad)}; known: {known}. Add a culture to "
            "the registry (NORMLOOM_CULTURES_PATH) to use another one."
        )
    return wanted


def select_seeds(
    seeds: list[SeedNorm], cultures: list[str] | None, limit: int | None
) -> list[SeedNorm]:
    """Keep the seeds of the chosen cultures, at most ``limit`` per culture."""
    chosen = [s for s in seeds if not cultures or s.culture in cultures]
    if limit is None:
        return chosen
    per_culture: dict[str, int] = {}
    kept = []
    for seed in chosen:
        per_culture[seed.culture] = per_culture.get(seed.culture, 0) + 1
        if per_culture[seed.culture] <= limit:
            kept.append(seed)
    return kept


def _manifest(rt: Runtime, endpoint: Endpoint, seeds_path: Path, info: dict) -> dict:
    return {
        "normloom_version": pipeline.__version__,
        "model": endpoint.model,
        "endpoint": endpoint.public_url,
        "embedded_model": endpoint.embedded,
        "seeds": {
            "path": str(seeds_path),
            "sha256": hashlib.sha256(seeds_path.read_bytes()).hexdigest(),
        },
        "settings": rt.settings.public_dict(),
        "prompt_templates": template_hashes(),
        "counts": {
            kind: rt.store.count(kind)
            for kind in ("seeds", "scenarios", "refinements", "dialogues", "rejected")
        },
        "usage": rt.llm.stats.as_dict(),
        **info,
    }


@flow(name="generate-dialogues", task_runner=ThreadPoolTaskRunner(max_workers=4))
def generate_dialogues(
    seeds: str,
    cultures: list[str] | None = None,
    types: list[str] | None = None,
    per_norm: int | None = None,
    limit_per_culture: int | None = None,
    out: str | None = None,
    skip_invalid: bool = False,
    batch: bool = False,
    dask_address: str | None = None,
    grow: int | None = None,
    comparable: bool = False,
) -> dict:
    """Generate, label and filter dialogues for seed norms; return the run summary.

    Args:
        seeds: Seed norm file (CSV or JSONL).
        cultures: Culture ids to keep (all when empty).
        types: Dialogue types (adherence, violation, v2r; all when empty).
        per_norm: Scenarios per norm and type (the setting when None).
        limit_per_culture: Use at most this many norms per culture.
        out: Run directory; by default runs/<seed file>-<hash of the inputs>, so
            the same command resumes the same run.
        skip_invalid: Generate from the valid seed rows when some are bad.
        batch: Send each stage's requests through the OpenAI Batch API.
        dask_address: Run the item tasks on this Dask scheduler (the setting
            ``runner.dask_address`` when None).
        grow: First grow this many sub-norms per culture and category from the
            chosen seeds (kept in grown_seeds.jsonl) and generate from both.
        comparable: Render one scenario for every culture of a matched group of
            seeds (same ``pair`` key, else same category); the dialogues share a
            ``pair_id``.
    """
    logger = get_run_logger()
    started = time.monotonic()
    settings = Settings()
    if dask_address:
        settings.runner.dask_address = dask_address
    registry = load_registry(settings.cultures_path)
    seeds_path = Path(seeds)
    n = per_norm if per_norm is not None else settings.generation.per_norm
    kinds = parse_types(types)
    wanted = resolve_cultures(registry, cultures)
    if batch and (grow or comparable):
        # Growth and matched scenarios wait on replies inside one task, which a
        # batch wave cannot deliver until the wave ends.
        raise ConfigError(
            "--batch cannot be combined with --grow or --comparable yet; run "
            "growth or the comparable run without --batch."
        )

    loaded = load_seeds(seeds_path, registry, skip_invalid=skip_invalid)
    chosen = select_seeds(loaded.seeds, wanted, limit_per_culture)
    run_dir = (
        Path(out)
        if out
        else Path("runs")
        / default_run_id(
            seeds_path,
            wanted,
            [k.value for k in kinds],
            n,
            limit_per_culture,
            settings.llm.model,
            grow,
            comparable,
        )
    )
    store = RunStore(run_dir)
    retried = store.drop("rejected", should_retry)

    with open_endpoint(settings) as endpoint:
        queue = (
            BatchQueue(run_dir, settings.batch, settings.llm, endpoint.base_url)
            if batch
            else None
        )
        rt = _build_runtime(settings, endpoint, run_dir, store, queue)
        try:
            if grow:
                chosen = chosen + grow_seed_bank(chosen, grow, rt)
            store.write_all("seeds", chosen)
            todo, todo_pairs, counts = _plan(chosen, kinds, n, comparable, store)
            logger.info(
                "%d seeds, %d items (%d in matched scenarios), %d to do, %d "
                "retried after endpoint failures; writing to %s",
                len(chosen),
                *counts,
                retried,
                run_dir,
            )
            if queue is not None:
                run_batch_waves(todo, rt, queue, finish_item)
            else:
                with task_runner(settings) as runner:
                    run_windowed(runner, make_dialogue, todo, rt)
                    run_windowed(runner, make_pair, todo_pairs, rt, key="items")
        finally:
            rt.llm.close()
            rt.llm.cache.close()
            _RUNTIMES.pop(str(run_dir), None)
    stats = rt.llm.stats

    summary = summarize(run_dir, stats.as_dict(), time.monotonic() - started)
    summary["run_dir"] = str(run_dir)
    if rt.quota_stop.is_set():
        summary["stopped"] = QUOTA_MESSAGE
        logger.error("Run stopped: %s", QUOTA_MESSAGE)
    store.write_manifest(
        _manifest(
            rt,
            endpoint,
            seeds_path,
            {
                "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "summary": summary,
            },
        )
    )
    create_markdown_artifact(
        key="generation-summary",
        markdown=summary_markdown(summary, run_dir),
        description="normloom generation run summary",
    )
    logger.info(
        "%d accepted, %d rejected, %d failed in %s",
        summary["accepted"],
        summary["rejected"],
        summary["failed"],
        run_dir,
    )
    return summary


def _plan(
    seeds: list[SeedNorm],
    kinds: list[DialogueType],
    per_norm: int,
    comparable: bool,
    store: RunStore,
) -> tuple[list[WorkItem], list[list[WorkItem]], tuple[int, int, int]]:
    """Return the single items and matched groups still to do, and the counts.

    The counts are all items, the items in matched groups and the items to do.
    """
    if comparable:
        pairs, single = plan_pairs(seeds, kinds, per_norm)
    else:
        pairs, single = [], plan_items(seeds, kinds, per_norm)
    done = store.done_items()
    todo = [i for i in single if i.id not in done]
    todo_pairs = [p for p in pairs if any(i.id not in done for i in p)]
    matched = sum(len(p) for p in pairs)
    left = len(todo) + sum(i.id not in done for p in pairs for i in p)
    return todo, todo_pairs, (len(single) + matched, matched, left)


def _rebuild_duplicates(settings: Settings, store: RunStore) -> DuplicateIndex:
    """Index the dialogues a resumed run already accepted."""
    index = DuplicateIndex(settings.checks)
    for row in read_jsonl(store.path("dialogues")):
        index.add(row["id"], "\n".join(t["text"] for t in row["turns"]))
    return index
