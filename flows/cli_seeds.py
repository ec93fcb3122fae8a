"""``normloom seeds``: import norm banks, count seeds, grow a norm bank."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flows.output import console, say, show_problems
from pipeline.errors import NormloomError

app = typer.Typer(help="Import, inspect and grow seed norms.", no_args_is_help=True)


@app.command("import")
def import_(
    path: Annotated[
        Path, typer.Argument(help="A norm-bank file, or a folder of them.")
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="normdial, normgenesis, socialchem, normbank, normbank-list, "
            "normad, isn, culturebank or native; default: detected per file.",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Seed file to write (default <name>.seeds.jsonl in the current directory)."
        ),
    ] = None,
    exemplars: Annotated[
        Path | None, typer.Option(help="Write the exemplars the dialogues give here.")
    ] = None,
    gold: Annotated[
        Path | None, typer.Option(help="Write the gold turn-labelled dialogues here.")
    ] = None,
    unknown_culture: Annotated[
        str | None,
        typer.Option(help="Culture for records whose culture is not in the registry."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON.")
    ] = False,
) -> None:
    """Turn a public norm bank into checked seed norms, exemplars and gold dialogues.

    Every source record is imported or listed as skipped with file, line and reason.
    """
    from pipeline.cultures import load_registry
    from pipeline.importers import import_norms
    from pipeline.seeds import write_seeds
    from pipeline.settings import Settings
    from pipeline.storage import write_jsonl

    try:
        registry = load_registry(Settings().cultures_path)
        result = import_norms(path, fmt, registry, unknown_culture)
    except NormloomError as err:
        say("error", "red", err)
        raise typer.Exit(2) from err

    out = out or Path(f"{path.stem or 'seeds'}.seeds.jsonl")
    written: dict[str, str] = {}
    if result.seeds:
        write_seeds(result.seeds, out)
        written["seeds"] = str(out)
    if exemplars is not None:
        write_jsonl(result.exemplars, exemplars)
        written["exemplars"] = str(exemplars)
    if gold is not None:
        write_jsonl(result.gold, gold)
        written["gold"] = str(gold)

    report = result.report
    if as_json:
        print(
            json.dumps(
                {**report.as_dict(), "written": written}, ensure_ascii=False, indent=2
            )
        )
    else:
        show_problems("skipped", report.skipped)
        show_problems("warning", report.warnings)
        console.print(_formats_table(report.formats))
        say(
            "imported",
            "green",
            f"{report.imported} seed(s), {report.exemplars} exemplar(s), "
            f"{report.gold} gold dialogue(s) from {report.records} record(s); "
            f"{report.skipped_records} skipped. "
            + ("" if "seeds" in written else "No seed file written. ")
            + (
                "Written: " + ", ".join(f"{k} {v}" for k, v in written.items())
                if written
                else ""
            ),
        )
    raise typer.Exit(0 if result.seeds else 1)


@app.command()
def stats(
    path: Annotated[Path, typer.Argument(help="A seed file or a norm bank.")],
    fmt: Annotated[str | None, typer.Option("--format", help="Source format.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the counts as JSON.")
    ] = False,
) -> None:
    """Count seed norms by culture, language and category."""
    from pipeline.importers import import_norms
    from pipeline.seeds import seed_stats

    try:
        result = import_norms(path, fmt)
    except NormloomError as err:
        say("error", "red", err)
        raise typer.Exit(2) from err
    counts = seed_stats(result.seeds)

    if as_json:
        rows = counts.to_dict(orient="records")
        print(
            json.dumps({"total": len(result.seeds), "counts": rows}, ensure_ascii=False)
        )
        return
    table = Table(title=f"seed norms: {path}")
    for column in ("culture", "language", "category", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    for row in counts.itertuples(index=False):
        table.add_row(row.culture, row.language, row.category, str(row.count))
    console.print(table)
    by_culture = counts.groupby("culture")["count"].sum().to_dict()
    console.print(
        f"{len(result.seeds)} seed(s): "
        + ", ".join(f"{c} {n}" for c, n in sorted(by_culture.items()))
    )
    if result.report.skipped_records:
        say(
            "skipped",
            "yellow",
            f"{result.report.skipped_records} record(s) not counted; "
            "`normloom seeds import` lists them with their reasons",
        )


@app.command()
def grow(
    path: Annotated[Path, typer.Argument(help="Seed norms, CSV or JSONL.")],
    k: Annotated[
        int | None,
        typer.Option(
            min=1, help="Sub-norms per culture and category (default growth.k)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Seed file to write (default <name>.grown.jsonl)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON.")
    ] = False,
) -> None:
    """Grow a seed list into a norm bank: k distinct, judged sub-norms per category.

    Each sub-norm is written for a tone, a use of honorifics and a relational
    distance; the file written is for a person to review before generating.
    """
    from pipeline.cultures import load_registry
    from pipeline.endpoint import open_client
    from pipeline.seeds import load_seeds, write_seeds
    from pipeline.settings import Settings
    from pipeline.stages.grow import grow_norms

    out = out or Path(f"{path.stem}.grown.jsonl")
    try:
        settings = Settings()
        registry = load_registry(settings.cultures_path)
        seeds = load_seeds(path, registry).seeds
        with open_client(settings) as llm, console.status("growing the norm bank"):
            growth = grow_norms(seeds, llm, settings, registry, k)
    except NormloomError as err:
        say("error", "red", err)
        raise typer.Exit(2) from err
    write_seeds(growth.seeds, out)

    if as_json:
        rejected = [{"norm": n, "reason": r} for n, r in growth.rejected]
        print(
            json.dumps(
                {"written": str(out), "grown": len(growth.seeds), "rejected": rejected},
                ensure_ascii=False,
                indent=2,
            )
        )
        return
    show_problems("left out", [f"{r}: {n}" for n, r in growth.rejected])
    say(
        "grown",
        "green",
        f"{len(growth.seeds)} sub-norm(s) written to {out}; review them before use.",
    )


def _formats_table(formats: dict[str, str]) -> Table:
    table = Table(title="files imported")
    table.add_column("file")
    table.add_column("format")
    for name, fmt in formats.items():
        table.add_row(name, fmt)
    return table
