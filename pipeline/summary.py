"""The run summary: counts, acceptance rates, rejection reasons and token use."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from pipeline.storage import read_jsonl


def load_outcomes(run_dir: Path) -> pd.DataFrame:
    """Return one row per finished item of a run: language, type, verdict, reasons."""
    rows = [
        {
            "id": r["id"],
            "culture": r["culture"],
            "language": r["language"],
            "type": r["type"],
            "category": r["category"],
            "verdict": r["verdict"],
            "reasons": r.get("reasons", []),
        }
        for kind in ("dialogues", "rejected")
        for r in read_jsonl(Path(run_dir) / f"{kind}.jsonl")
    ]
    columns = ["id", "culture", "language", "type", "category", "verdict", "reasons"]
    return pd.DataFrame(rows, columns=columns)


def _reason_kind(reason: str) -> str:
    """Shorten a reason to its kind: 'language: turns 1, 2 ...' -> 'language'."""
    head = reason.split(":", 2)
    return (
        ":".join(head[:2])
        if head[0] in {"scenario", "refine", "dialogue", "labels", "judge"}
        else head[0]
    )


def summarize(run_dir: Path, usage: dict, seconds: float) -> dict:
    """Summarise a run from its files and the usage counters."""
    outcomes = load_outcomes(run_dir)
    by_cell = (
        outcomes.groupby(["language", "type", "verdict"]).size().unstack(fill_value=0)
        if len(outcomes)
        else pd.DataFrame()
    )
    for verdict in ("accepted", "rejected", "failed"):
        if verdict not in by_cell.columns:
            by_cell[verdict] = 0
    by_cell = by_cell[["accepted", "rejected", "failed"]]
    by_cell["acceptance"] = (by_cell["accepted"] / by_cell.sum(axis=1)).round(3)

    reasons = Counter(_reason_kind(r) for rs in outcomes["reasons"] for r in rs)
    total = usage.get("total", {})
    completion = total.get("completion_tokens", 0)
    call_seconds = total.get("seconds", 0) or 0
    return {
        "items": int(len(outcomes)),
        "accepted": int((outcomes["verdict"] == "accepted").sum()),
        "rejected": int((outcomes["verdict"] == "rejected").sum()),
        "failed": int((outcomes["verdict"] == "failed").sum()),
        "acceptance_rate": round(float((outcomes["verdict"] == "accepted").mean()), 3)
        if len(outcomes)
        else 0.0,
        "by_language_type": [
            {
                "language": lang,
                "type": t,
                **{v: int(row[v]) for v in ("accepted", "rejected", "failed")},
                "acceptance": float(row["acceptance"]),
            }
            for (lang, t), row in by_cell.iterrows()
        ],
        "rejection_reasons": dict(reasons.most_common()),
        # Items given up because the model refused, by language and type.
        "refused": _refused(outcomes),
        "tokens": {
            "prompt": total.get("prompt_tokens", 0),
            "completion": completion,
            "completion_per_second": round(completion / call_seconds, 2)
            if call_seconds
            else None,
        },
        "cost": cost_summary(usage, int((outcomes["verdict"] == "accepted").sum())),
        "calls": total.get("calls", 0),
        "cache_hits": total.get("cached", 0),
        "duration_s": round(seconds, 1),
    }


def cost_summary(usage: dict, accepted: int) -> dict:
    """Tokens and USD by stage and language, and per accepted dialogue.

    Costs are None when the price table has no entry for the model.
    """
    total = usage.get("total", {})
    tokens = total.get("prompt_tokens", 0) + total.get("completion_tokens", 0)
    usd = total.get("cost_usd")

    def split(rows: dict) -> dict:
        return {
            name: {
                "prompt_tokens": row["prompt_tokens"],
                "completion_tokens": row["completion_tokens"],
                "cost_usd": row.get("cost_usd"),
            }
            for name, row in rows.items()
        }

    return {
        "total_usd": usd,
        "by_stage": split(usage.get("stages", {})),
        "by_language": split(usage.get("languages", {})),
        "tokens_per_accepted_dialogue": round(tokens / accepted) if accepted else None,
        "per_accepted_dialogue_usd": round(usd / accepted, 6)
        if accepted and usd is not None
        else None,
    }


def _refused(outcomes: pd.DataFrame) -> dict[str, int]:
    refused = Counter(
        f"{row.language}/{row.type}"
        for row in outcomes.itertuples()
        if row.verdict == "failed" and any(": refused:" in r for r in row.reasons)
    )
    return dict(sorted(refused.items()))


def summary_markdown(summary: dict, run_dir: Path) -> str:
    """Render a summary as the markdown of the run's Prefect artifact."""
    lines = [
        f"# normloom run `{Path(run_dir).name}`",
        "",
        f"{summary['accepted']} accepted, {summary['rejected']} rejected, "
        f"{summary['failed']} failed of {summary['items']} "
        f"(acceptance {summary['acceptance_rate']:.0%}) in {summary['duration_s']} s.",
        "",
        "| language | type | accepted | rejected | failed | acceptance |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in summary["by_language_type"]:
        lines.append(
            f"| {row['language']} | {row['type']} | {row['accepted']} | "
            f"{row['rejected']} | {row['failed']} | {row['acceptance']:.0%} |"
        )
    lines += ["", "| rejection reason | count |", "|---|---:|"]
    lines += [f"| {k} | {v} |" for k, v in summary["rejection_reasons"].items()]
    tokens = summary["tokens"]
    lines += [
        "",
        f"Tokens: {tokens['prompt']} prompt, {tokens['completion']} completion "
        f"({tokens['completion_per_second']} completion tokens/s per call); "
        f"{summary['calls']} calls, {summary['cache_hits']} served from the cache.",
    ]
    cost = summary["cost"]
    if cost["total_usd"] is not None:
        lines += [
            "",
            f"Cost: {cost['total_usd']:.4f} USD, "
            f"{cost['per_accepted_dialogue_usd'] or 0:.5f} USD per accepted dialogue.",
            "",
            "| language | prompt tokens | completion tokens | USD |",
            "|---|---:|---:|---:|",
        ]
        lines += [
            f"| {lang} | {row['prompt_tokens']} | {row['completion_tokens']} | "
            f"{row['cost_usd']:.4f} |"
            for lang, row in cost["by_language"].items()
        ]
    lines.append(f"Files: `{run_dir}`")
    return "\n".join(lines)
