"""``normloom annotate``: send a run to Argilla and bring the answers back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from pipeline.errors import NormloomError

app = typer.Typer(help="Human annotation in Argilla.", no_args_is_help=True)
console = Console(stderr=True)

RunDir = Annotated[Path, typer.Argument(help="Directory of a normloom run.")]
SettingsFile = Annotated[
    Path | None,
    typer.Option("--settings", help="JSON or TOML file of Argilla settings."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")]


def _check_run(run_dir: Path) -> None:
    """Refuse a directory that is not a run before a flow (and its logs) start."""
    if not (run_dir / "dialogues.jsonl").is_file():
        raise _fail(
            f"{run_dir / 'dialogues.jsonl'} does not exist; expected the directory "
            "of a finished `normloom generate` run."
        )
    from pipeline.errors import AnnotationError
    from pipeline.run_files import read_dialogues

    try:
        read_dialogues(run_dir / "dialogues.jsonl", AnnotationError)
    except AnnotationError as err:
        raise _fail(err) from err


def _check_server(settings: Path | None) -> None:
    """Refuse early when no server is configured or running (before a flow starts)."""
    from annotation.client import load_settings, server_address

    try:
        server_address(load_settings(settings_file=settings))
    except NormloomError as err:
        raise _fail(err) from err


def _fail(err: object) -> typer.Exit:
    # The message is data (paths, server replies), never markup.
    console.print(Text.assemble(("Error: ", "red"), str(err)), soft_wrap=True)
    return typer.Exit(1)


@app.command()
def push(
    run_dir: RunDir,
    settings: SettingsFile = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Push only the first N dialogues.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Send a run's accepted dialogues to Argilla (dialogue and turn datasets).

    Pushing again updates the same records: their ids come from the dialogue id
    and the turn index.
    """
    from flows.annotate import annotate_dialogues

    _check_run(run_dir)
    _check_server(settings)
    try:
        with console.status("Pushing records to Argilla ..."):
            summary = annotate_dialogues(
                run_dir=str(run_dir),
                settings_file=str(settings) if settings else None,
                limit=limit,
            )
    except NormloomError as err:
        raise _fail(err) from err
    if as_json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        return
    for level, info in summary["datasets"].items():
        typer.echo(
            f"{level}: {info['pushed']} records pushed to {info['name']} "
            f"({info['on_server']} on the server)"
        )
    typer.echo(
        f"{summary['records_per_s']} records/s. Annotate at {summary['url']} "
        f"(workspace {summary['workspace']})."
    )


@app.command()
def pull(
    run_dir: RunDir, settings: SettingsFile = None, as_json: AsJson = False
) -> None:
    """Bring back submitted answers, resolve labels and measure agreement."""
    from flows.collect import collect_annotations

    _check_run(run_dir)
    _check_server(settings)
    try:
        with console.status("Collecting answers from Argilla ..."):
            report = collect_annotations(
                run_dir=str(run_dir), settings_file=str(settings) if settings else None
            )
    except NormloomError as err:
        raise _fail(err) from err
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"{report['n_responses']} submitted responses on {report['n_records']} records; "
        f"{report['resolved_turns']} turns resolved ({report['ties']} ties to review), "
        f"{report['resolved_dialogues']} dialogues, {report['exemplars']} exemplars."
    )
    alphas = ", ".join(
        f"{q} {'n/a' if a is None else f'{a:.2f}'}" for q, a in report["alpha"].items()
    )
    typer.echo(f"Krippendorff's alpha: {alphas}")
    for label, info in report["human_llm"].items():
        if info["n"]:
            typer.echo(
                f"human vs LLM {label}: {info['agreement']:.0%} of {info['n']} turns"
            )
    typer.echo(f"Files: {report['out']}/")
