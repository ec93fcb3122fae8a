"""The dataset card: README.md with the YAML header the Hugging Face Hub reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from pipeline.release_stats import ReleaseStats

COUNT_COLUMNS = {
    "split": "split",
    "dialogues": "dialogues",
    "turns": "turns",
    "norms": "norms",
    "human_labelled_turns": "human-labelled turns",
    "human_rated_dialogues": "human-rated dialogues",
}
FIELDS = [
    ("id", "stable id of the dialogue (hash of seed id, type and sample)"),
    (
        "seed_id, norm",
        "the seed norm, in the culture's language; splits never share one",
    ),
    ("culture, language, category", "e.g. `kr`, `ko`, `request`"),
    ("type", "`adherence`, `violation` or `v2r` (violation to resolution)"),
    ("scenario, situation, participants", "the refined scenario the dialogue plays"),
    (
        "turns",
        "speaker, text and labels: norm_label, intent, emotion, arc_stage (v2r only), "
        "rationale; `label_source` is `human` where annotators answered, else `llm`; "
        "`llm_*` keep the LLM's labels, `n_annotators` and `tie` the human vote",
    ),
    ("judge, judge_rationale", "the LLM judge's 1-5 scores (null when it was off)"),
    (
        "human",
        "annotators' dialogue ratings: naturalness, cultural_appropriateness (1-5), "
        "norm_correct, arc_matches; null when no one rated the dialogue",
    ),
    ("model, run", "the generating model and the run directory's name"),
]


def size_category(n: int) -> str:
    """Return the Hub's size category of a dataset with ``n`` rows."""
    for limit, name in (
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
    ):
        if n < limit:
            return name
    return "1M<n<10M"


def markdown_table(frame: pd.DataFrame, headers: list[str] | None = None) -> str:
    """Render a data frame as a GitHub markdown table, numbers right-aligned."""
    headers = headers or [str(c) for c in frame.columns]
    align = [
        "---:" if pd.api.types.is_numeric_dtype(frame[c]) else "---"
        for c in frame.columns
    ]

    def cell(value: object) -> str:
        if isinstance(value, float):
            return "n/a" if pd.isna(value) else f"{value:.2f}"
        return str(value)

    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join(align) + " |",
    ]
    lines += [
        "| " + " | ".join(cell(v) for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join(lines)


def cell_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Return dialogues by culture and category (rows) and type (columns), with totals."""
    types = [t for t in ("adherence", "violation", "v2r") if t in set(cells["type"])]
    table = cells.pivot_table(
        index=["culture", "category"],
        columns="type",
        values="dialogues",
        fill_value=0,
        aggfunc="sum",
    )
    table = table.reindex(columns=types, fill_value=0).astype(int)
    table["total"] = table.sum(axis=1)
    return table.reset_index().rename_axis(columns=None)


def yaml_header(stats: ReleaseStats, splits: list[str], license_id: str) -> str:
    """Return the card's YAML front matter: languages, license, tasks, size, configs."""
    total = int(stats.counts.loc[stats.counts["split"] == "total", "dialogues"].iloc[0])
    header = {
        "language": stats.languages,
        "license": license_id,
        "pretty_name": "normloom social-norm dialogues",
        "task_categories": ["text-classification", "text-generation"],
        "tags": ["social-norms", "dialogue", "multilingual", "synthetic"],
        "size_categories": [size_category(total)],
        "configs": [
            {
                "config_name": "default",
                "data_files": [
                    {"split": s, "path": f"data/{s}.parquet"} for s in splits
                ],
            }
        ],
    }
    body = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    return f"---\n{body}---\n"


def agreement_tables(stats: ReleaseStats) -> str:
    """Return the agreement section's tables, or a sentence when nobody annotated."""
    if not stats.agreement:
        return "No human annotations are in this release: every label is the LLM's."
    parts = []
    for entry in stats.agreement:
        alpha = pd.DataFrame(
            [{"question": k, "alpha": v} for k, v in entry.get("alpha", {}).items()],
            columns=["question", "alpha"],
        ).astype({"alpha": float})
        human_llm = pd.DataFrame(
            [
                {"label": k, "agreement": v["agreement"], "turns": v["n"]}
                for k, v in entry.get("human_llm", {}).items()
            ],
            columns=["label", "agreement", "turns"],
        )
        parts += [
            f"Run `{entry['run']}`: {entry.get('n_records', 0)} records, "
            f"{entry.get('n_responses', 0)} responses.",
            "",
            markdown_table(alpha, ["question", "Krippendorff's alpha"]),
            "",
            markdown_table(human_llm, ["label", "human-LLM agreement", "turns"]),
            "",
        ]
    return "\n".join(parts).strip()


def _missing_splits(splits: list[str]) -> str:
    missing = [s for s in ("train", "validation", "test") if s not in splits]
    if not missing:
        return ""
    return (
        f" No norm fell in {' or '.join(missing)}, so the release has no such split "
        "(too few norms for the split ratios)."
    )


def render_card(
    stats: ReleaseStats,
    version: str,
    splits: list[str],
    plots: dict[str, Path],
    license_id: str,
    runs: list[str],
) -> str:
    """Return the dataset card of a release as markdown with its YAML header."""
    counts = stats.counts.rename(columns=COUNT_COLUMNS)
    norm_labels = stats.labels["norm_label"].rename_axis("norm label").reset_index()
    judge = pd.DataFrame(
        {
            "axis": list(stats.judge.columns),
            "mean": [float(stats.judge[c].mean()) for c in stats.judge.columns],
            "dialogues": [int(stats.judge[c].count()) for c in stats.judge.columns],
        }
    )
    refinement = stats.refinement
    load = "\n".join(f'    "{s}": "data/{s}.parquet",' for s in splits)

    def image(name: str, alt: str) -> str:
        return f"![{alt}](plots/{plots[name].name})"

    sections = [
        yaml_header(stats, splits, license_id),
        f"# normloom social-norm dialogues, release {version}",
        "",
        "Multilingual dialogues that adhere to, violate, or violate and then repair a "
        "social norm, with a label on every turn. Generated by an LLM with "
        "normloom and filtered by rule checks "
        "and an LLM judge; where annotators labelled a turn, their labels replace the "
        "LLM's (`label_source`).",
        "",
        "## Counts",
        "",
        "Splits are by norm: every dialogue of a norm is in the same split."
        + _missing_splits(splits),
        "",
        markdown_table(counts, list(COUNT_COLUMNS.values())),
        "",
        "## Dialogues by culture, type and category",
        "",
        markdown_table(cell_table(stats.cells)),
        "",
        image("cells", "dialogues by culture, type and category"),
        "",
        "## Turn labels",
        "",
        markdown_table(norm_labels, ["norm label", "human", "llm"]),
        "",
        image("labels", "turn label distributions"),
        "",
        "## Judge scores",
        "",
        markdown_table(judge, ["axis", "mean", "dialogues"]),
        "",
        image("judge", "judge score histograms"),
        "",
        "## Refinement",
        "",
        "Mean judge scores of the situations before refinement (round 0) and after "
        "the last round, for the released dialogues.",
        "",
        markdown_table(refinement, ["axis", "round 0", "final", "situations"]),
        "",
        image("refinement", "situation scores before and after refinement"),
        "",
        "## Annotator agreement",
        "",
        agreement_tables(stats),
        "",
        image("agreement", "annotator agreement"),
        "",
        "## Fields",
        "",
        "| field | meaning |",
        "| --- | --- |",
        *(f"| {name} | {meaning} |" for name, meaning in FIELDS),
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        'data = load_dataset("parquet", data_files={',
        load,
        "})",
        "```",
        "",
        "The same rows are in `jsonl/<split>.jsonl`, and `datasets.load_from_disk` "
        "reads `arrow/`.",
        "",
        "## Limitations",
        "",
        "The dialogues are synthetic. Labels with `label_source: llm` were not checked "
        "by a person; the judge is an LLM too. Read `CHANGELOG.md` for what changed "
        "between releases.",
        "",
        "## Source runs",
        "",
        *(f"- `{Path(run).name}`" for run in runs),
        "",
    ]
    return "\n".join(sections)


def parse_counts_table(card: str) -> list[dict[str, str]]:
    """Return the rows of the card's counts table, as the card prints them."""
    section = card.split("## Counts", 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    headers = [h.strip() for h in lines[0].strip("|").split("|")]
    return [
        dict(zip(headers, (c.strip() for c in line.strip("|").split("|")), strict=True))
        for line in lines[2:]
    ]
