"""How close normloom gets to the limit the LLM server sets, and what a big run costs.

Against the simulator (its own process, 200 ms latency) it prints:

1. calls per second through normloom's LLM layer (cache, HTTP, parsing and
   validation included) at 1, 8, 64 and 256 calls in flight, and the fraction of
   the limit (in flight / latency) that reaches;
2. dialogues per minute through the whole generate-dialogues flow, with its peak
   RSS;
3. a NormGenesis-sized run (3 cultures x 3 types x 120 norms x 10 scenarios =
   10,800 dialogues): wall time, peak RSS and calls made, then the same run again,
   which must make 0 calls.

Usage: ``python -m bench.throughput [--scale 0.1] [--skip-big]``. Numbers are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "data" / "seeds" / "demo.jsonl"
LATENCY = 0.2


@contextmanager
def simulator(*args: str):
    """Run the simulator in its own process; yield its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.simulator", "--latency", str(LATENCY), *args],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(10)


def sim_stats(base_url: str) -> dict:
    """Return the simulator's counters."""
    url = base_url.removesuffix("/v1") + "/stats"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _dialogue_prompts() -> list[tuple[list[dict], str]]:
    """Return real dialogue-stage prompts of the demo seeds, with their language."""
    from pipeline.cultures import load_registry
    from pipeline.prompts import render
    from pipeline.schemas import DialogueType, Participant, Scenario, WorkItem
    from pipeline.seeds import load_seeds

    registry = load_registry()
    prompts = []
    for seed in load_seeds(DEMO, registry).seeds:
        for kind in DialogueType:
            item = WorkItem(seed=seed, type=kind, sample=0)
            scenario = Scenario(
                item_id=item.id,
                seed_id=seed.id,
                type=kind,
                sample=0,
                scenario="A student asks a teacher for more time.",
                situation="Two people meet in an office before a deadline.",
                participants=[
                    Participant(name="A", role="student"),
                    Participant(name="B", role="teacher"),
                ],
                relation="student and teacher",
                setting="an office",
            )
            messages = render(
                "dialogue",
                seed=seed,
                type=kind.value,
                scenario=scenario,
                situation=scenario.situation,
                min_turns=5,
                max_turns=15,
                culture=registry.culture(seed.culture),
                language=registry.language(seed.language),
            )
            prompts.append((messages, seed.language))
    return prompts


async def _layer_run(base_url: str, in_flight: int, calls: int, cache_dir: Path):
    from pipeline.cache import ResponseCache
    from pipeline.llm import LLMClient
    from pipeline.settings import LLMSettings
    from pipeline.stages.dialogues import dialogue_reply

    prompts = _dialogue_prompts()
    reply = dialogue_reply(5, 15)
    cache = ResponseCache(cache_dir / f"cache-{in_flight}.sqlite")
    llm = LLMClient(
        LLMSettings(concurrency=in_flight, timeout_s=30),
        base_url,
        "simulated",
        cache=cache,
    )
    counter = iter(range(calls))

    async def worker() -> None:
        for i in counter:
            messages, language = prompts[i % len(prompts)]
            await llm.acomplete(
                messages,
                reply,
                stage="dialogue",
                sample=i,
                max_tokens=845,
                language=language,
            )

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    seconds = time.perf_counter() - started
    await llm.aclose()
    cache.close()
    return seconds, llm.stats.as_dict()["total"]["calls"]


def layer_table(levels: list[int]) -> list[dict]:
    """Measure calls/s and the fraction of the limit at each in-flight level."""
    rows = []
    with simulator() as base_url, tempfile.TemporaryDirectory() as tmp:
        for in_flight in levels:
            calls = 2000 if in_flight >= 64 else max(50, 30 * in_flight)
            seconds, made = asyncio.run(
                _layer_run(base_url, in_flight, calls, Path(tmp))
            )
            limit = in_flight / LATENCY
            rows.append(
                {
                    "in_flight": in_flight,
                    "calls": made,
                    "seconds": round(seconds, 2),
                    "calls_per_s": round(made / seconds, 1),
                    "limit_per_s": limit,
                    "fraction": round(made / seconds / limit, 3),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


SUFFIX = {"en": " (variant {n})", "zh": "（第{n}条）", "ko": " ({n}번)"}


def write_seeds(path: Path, per_culture: int) -> int:
    """Write ``per_culture`` norms for each culture, numbered from the starter set."""
    from pipeline.storage import read_jsonl

    starter = list(read_jsonl(ROOT / "data" / "seeds" / "starter.jsonl"))
    rows = []
    for culture in ("us", "cn", "kr"):
        own = [r for r in starter if r["culture"] == culture]
        for n in range(per_culture):
            row = dict(own[n % len(own)])
            row["id"] = f"{culture}-norm-{n}"
            row["norm"] += SUFFIX[row["language"]].format(n=n)
            rows.append(row)
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8"
    )
    return len(rows)


def flow_run(base_url: str, seeds: Path, out: Path, per_norm: int, in_flight: int):
    """Run the generate-dialogues flow in its own process; return what it measured."""
    env = {
        **os.environ,
        "PREFECT_HOME": str(out.parent / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "600",
        "NORMLOOM_LLM__BASE_URL": base_url,
        "NORMLOOM_LLM__MODEL": "simulated",
        "NORMLOOM_LLM__CONCURRENCY": str(in_flight),
        "NORMLOOM_LLM__PRICES": json.dumps(
            {"simulated": {"prompt": 0.15, "completion": 0.60}}
        ),
        "NORMLOOM_RUNNER__STAGE_TASKS": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    before = sim_stats(base_url)["calls"]
    started = time.perf_counter()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.throughput",
            "--child",
            str(seeds),
            str(out),
            str(per_norm),
        ],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    return {
        "seconds": round(seconds, 1),
        "calls": sim_stats(base_url)["calls"] - before,
        **child,
    }


def _child(seeds: str, out: str, per_norm: str) -> None:
    from flows.generate import generate_dialogues

    summary = generate_dialogues(seeds=seeds, out=out, per_norm=int(per_norm))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cost = summary.get("cost", {})
    print(
        json.dumps(
            {
                "items": summary["items"],
                "accepted": summary["accepted"],
                "rejected": summary["rejected"],
                "failed": summary["failed"],
                "peak_rss_mib": round(rss),
                "cost_usd": cost.get("total_usd"),
                "cost_per_accepted_usd": cost.get("per_accepted_dialogue_usd"),
            }
        )
    )


def flow_table(scale: float, in_flight: int, skip_big: bool) -> list[dict]:
    """Measure dialogues per minute, then the NormGenesis-sized run and its re-run."""
    rows = []
    with simulator("--vary") as base_url, tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n = write_seeds(tmp / "small.jsonl", 20)
        small = flow_run(base_url, tmp / "small.jsonl", tmp / "small", 2, in_flight)
        small["name"] = f"{n * 3 * 2} dialogues"
        small["dialogues_per_min"] = round(small["items"] / small["seconds"] * 60)
        rows.append(small)
        print(json.dumps(small), flush=True)
        if skip_big:
            return rows
        per_culture = max(1, round(120 * scale))
        n = write_seeds(tmp / "big.jsonl", per_culture)
        for name in ("NormGenesis-sized", "identical re-run"):
            row = flow_run(base_url, tmp / "big.jsonl", tmp / "big", 10, in_flight)
            row["name"] = f"{name} ({n * 3 * 10} dialogues)"
            row["dialogues_per_min"] = round(row["items"] / row["seconds"] * 60)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    """Run the benchmarks and print their tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--levels", default="1,8,64,256")
    parser.add_argument("--in-flight", type=int, default=64, help="for flow runs")
    parser.add_argument("--scale", type=float, default=1.0, help="of the big run")
    parser.add_argument("--skip-big", action="store_true")
    parser.add_argument("--skip-layer", action="store_true")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return

    if not args.skip_layer:
        rows = layer_table([int(x) for x in args.levels.split(",")])
        print("| in flight | calls | calls/s | limit/s | fraction of limit |")
        print("|---:|---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['in_flight']} | {r['calls']} | {r['calls_per_s']} | "
                f"{r['limit_per_s']:g} | {r['fraction']:.2f} |"
            )
    runs = flow_table(args.scale, args.in_flight, args.skip_big)
    print(
        "| run | items | accepted | wall s | dialogues/min | calls | peak RSS MiB |"
        " cost USD |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(
            f"| {r['name']} | {r['items']} | {r['accepted']} | {r['seconds']} | "
            f"{r['dialogues_per_min']} | {r['calls']} | {r['peak_rss_mib']} | "
            f"{r['cost_usd']} |"
        )


if __name__ == "__main__":
    main()
