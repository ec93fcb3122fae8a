"""The ``normloom`` command line."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from flows.output import console, say, show_problems
from pipeline.errors import ConfigError, NormloomError

app = typer.Typer(help="Seed social norms in, multilingual norm dialogues out.")


def _register_groups() -> None:
    from flows.cli_annotate import app as annotate_app
    from flows.cli_argilla import app as argilla_app
    from flows.cli_eval import app as eval_app
    from flows.cli_llm import app as llm_app
    from flows.cli_release import publish, serve
    from flows.cli_seeds import app as seeds_app

    app.add_typer(llm_app, name="llm", help="Run the embedded llama.cpp server.")
    app.add_typer(seeds_app, name="seeds", help="Import, inspect and grow seed norms.")
    app.add_typer(eval_app, name="eval", help="Score normloom's stages on gold data.")
    app.command()(publish)
    app.command()(serve)
    app.add_typer(argilla_app, name="argilla", help="Run a local Argilla server.")
    app.add_typer(annotate_app, name="annotate", help="Human annotation in Argilla.")


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as f:
            return sum(1 for _ in f)
    except OSError:
        return 0


def _make_run_dir(run_dir: Path) -> None:
    """Create the run directory, or say why it cannot be one."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        reason = err.strerror or str(err)
        if isinstance(err, FileExistsError | NotADirectoryError):
            reason = "a file of that name, or above it, is in the way"
        raise ConfigError(
            f"Cannot use {run_dir} as the run directory: {reason}. Pass --out with "
            "a directory you can write."
        ) from err


def _watch(run_dir: Path, total: int, stop: threading.Event) -> None:
    """Show a progress bar fed by the run's output files."""
    columns = [
        *Progress.get_default_columns()[:1],
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task("dialogues", total=total)
        while not stop.wait(1.0):
            done = _count_lines(run_dir / "dialogues.jsonl") + _count_lines(
                run_dir / "rejected.jsonl"
            )
            progress.update(bar, completed=done)


def _summary_table(summary: dict) -> Table:
    table = Table(title=f"normloom run: {summary['run_dir']}")
    for column in ("language", "type", "accepted", "rejected", "failed", "acceptance"):
        table.add_column(column, justify="right" if column[0] in "arfa" else "left")
    for row in summary["by_language_type"]:
        table.add_row(
            row["language"],
            row["type"],
            str(row["accepted"]),
            str(row["rejected"]),
            str(row["failed"]),
            f"{row['acceptance']:.0%}",
        )
    return table


@app.command()
def generate(
    seeds: Annotated[Path, typer.Option(help="Seed norms, CSV or JSONL.")],
    cultures: Annotated[
        list[str] | None, typer.Option(help="Culture to include (repeatable).")
    ] = None,
    types: Annotated[
        list[str] | None,
        typer.Option(help="Dialogue type: adherence, violation or v2r (repeatable)."),
    ] = None,
    per_norm: Annotated[
        int | None, typer.Option(min=1, help="Scenarios per norm and type.")
    ] = None,
    limit_per_culture: Annotated[
        int | None,
        typer.Option(min=1, help="Use at most this many norms per culture."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/<name>-<hash>).")
    ] = None,
    skip_invalid: Annotated[
        bool, typer.Option(help="Skip bad seed rows instead of stopping.")
    ] = False,
    grow: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="First grow K sub-norms per culture and category from the seeds.",
        ),
    ] = None,
    comparable: Annotated[
        bool,
        typer.Option(
            help="One scenario per matched group of seeds (same pair key or "
            "category), rendered for each culture; the dialogues share a pair_id."
        ),
    ] = False,
    batch: Annotated[
        bool,
        typer.Option(
            help="Send each stage's requests through the OpenAI Batch API (half "
            "price, hours); a re-run collects batches already sent."
        ),
    ] = False,
    dask_address: Annotated[
        str | None,
        typer.Option(help="Run the item tasks on this Dask scheduler (tcp://...)."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON.")
    ] = False,
) -> None:
    """Generate, label and filter dialogues from seed norms.

    Re-running the same command resumes the same run: finished dialogues are kept
    and no completed model call is made again.
    """
    from flows.generate import (
        default_run_id,
        generate_dialogues,
        parse_types,
        resolve_cultures,
        select_seeds,
    )
    from pipeline.cultures import load_registry
    from pipeline.endpoint import check_endpoint
    from pipeline.seeds import load_seeds
    from pipeline.settings import load_settings

    try:
        settings = load_settings()
        check_endpoint(settings)
        registry = load_registry(settings.cultures_path)
        wanted = resolve_cultures(registry, cultures)
        kinds = [t.value for t in parse_types(types)]
        loaded = load_seeds(seeds, registry, skip_invalid=skip_invalid)
        selected = select_seeds(loaded.seeds, wanted, limit_per_culture)
        if not selected:
            raise ConfigError(
                f"{seeds} holds no seed norm of culture {', '.join(wanted or [])}; "
                f"it holds {', '.join(sorted({s.culture for s in loaded.seeds}))}. "
                "Pass one of those to --cultures, or leave it out."
            )
        n = per_norm if per_norm is not None else settings.generation.per_norm
        run_dir = out or Path("runs") / default_run_id(
            seeds,
            wanted,
            kinds,
            n,
            limit_per_culture,
            settings.llm.model,
            grow,
            comparable,
        )
        _make_run_dir(run_dir)
    except (NormloomError, ValueError) as err:
        say("error", "red", err)
        raise typer.Exit(2) from err
    show_problems("skipped", loaded.skipped)

    norms = len(selected)
    if grow:
        norms += grow * len({(s.culture, s.language, s.category) for s in selected})
    stop = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(run_dir, norms * len(kinds) * n, stop), daemon=True
    )
    watcher.start()
    try:
        summary = generate_dialogues(
            seeds=str(seeds),
            cultures=wanted,
            types=kinds,
            per_norm=n,
            limit_per_culture=limit_per_culture,
            out=str(run_dir),
            skip_invalid=skip_invalid,
            grow=grow,
            comparable=comparable,
            batch=batch,
            dask_address=dask_address,
        )
    except NormloomError as err:
        say("error", "red", err)
        raise typer.Exit(1) from err
    finally:
        stop.set()
        watcher.join()

    # Every item failing means the endpoint, not the data, is at fault: a script
    # running this on a schedule must see it.
    outage = summary["items"] > 0 and summary["failed"] == summary["items"]
    if as_json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
        raise typer.Exit(1 if outage else 0)
    console.print(_summary_table(summary))
    tokens = summary["tokens"]
    console.print(
        f"{summary['accepted']} accepted, {summary['rejected']} rejected, "
        f"{summary['failed']} failed in {summary['duration_s']} s; "
        f"{summary['calls']} calls ({summary['cache_hits']} from cache), "
        f"{tokens['prompt']} prompt + {tokens['completion']} completion tokens."
    )
    cost = summary["cost"]
    if cost["total_usd"] is not None:
        console.print(
            f"Cost {cost['total_usd']:.4f} USD, "
            f"{cost['per_accepted_dialogue_usd'] or 0:.5f} USD per accepted dialogue."
        )
    console.print(
        Text(
            f"Results: {summary['run_dir']}/dialogues.jsonl (accepted), "
            "rejected.jsonl (with reasons), manifest.json"
        )
    )
    if summary.get("stopped"):
        say("error", "red", f"the run stopped early. {summary['stopped']}")
        raise typer.Exit(1)
    if outage:
        say(
            "error",
            "red",
            "every item failed; see the reasons in rejected.jsonl (is the endpoint "
            "up?). Re-run the same command to retry them.",
        )
        raise typer.Exit(1)


def main() -> None:
    """Run the command line."""
    # Prefect's telemetry heartbeat races the temporary server's SQLite database on
    # start-up and prints a spurious error; normloom has nothing to report anyway.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # The Argilla SDK draws a tqdm bar per batch; the CLI shows its own status.
    os.environ.setdefault("TQDM_DISABLE", "1")
    app()


_register_groups()

if __name__ == "__main__":
    main()
