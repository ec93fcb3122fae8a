"""``normloom eval``: score normloom's stages against gold data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table

from flows.output import console, say, show_problems
from pipeline.errors import NormloomError

app = typer.Typer(help="Score normloom's stages on gold data.", no_args_is_help=True)


@app.command()
def labels(
    gold: Annotated[
        Path, typer.Option(help="Gold dialogues (JSONL from `seeds import --gold`).")
    ],
    limit: Annotated[
        int | None, typer.Option(min=1, help="Label at most this many dialogues.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the scores as JSON.")
    ] = False,
) -> None:
    """Run the turn labeller on gold dialogues; report accuracy, macro-F1, confusion.

    Scores are given per culture and over all cultures (under "all").
    """
    from pipeline.cultures import load_registry
    from pipeline.endpoint import open_client
    from pipeline.evaluate import evaluate_labels
    from pipeline.gold import load_gold
    from pipeline.settings import Settings

    try:
        settings = Settings()
        registry = load_registry(settings.cultures_path)
        dialogues = load_gold(gold)[:limit]
        with (
            open_client(settings) as llm,
            Progress(console=console, transient=True) as bar,
        ):
            task = bar.add_task("labelling", total=len(dialogues))
            result = evaluate_labels(
                dialogues, llm, settings, registry, lambda: bar.advance(task)
            )
    except NormloomError as err:
        say("error", "red", err)
        raise typer.Exit(2) from err

    if as_json:
        print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return
    show_problems("failed", [f"{k}: {v}" for k, v in result.failed.items()])
    for culture, scores in result.scores.items():
        table = Table(
            title=f"{culture}: {scores.dialogues} dialogue(s), {scores.turns} turn(s), "
            f"accuracy {scores.accuracy:.1%}, macro-F1 {scores.macro_f1:.3f}"
        )
        table.add_column("gold \\ predicted")
        for label in scores.confusion.columns:
            table.add_column(label, justify="right")
        for label, row in scores.confusion.iterrows():
            table.add_row(label, *(str(int(n)) for n in row))
        console.print(table)
