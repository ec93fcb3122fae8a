"""``normloom publish`` and ``normloom serve``: releases and scheduled runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pipeline.errors import NormloomError
from pipeline.schedule import DEFAULT_CONFIG

console = Console()


def _say(label: str, style: str, message: object) -> None:
    console.print(Text.assemble((f"{label}: ", style), str(message)), soft_wrap=True)


def _check_publish(run_dirs: list[Path], version: str | None, out: Path | None) -> None:
    """Refuse bad runs, a taken version or an unusable --out before the flow starts.

    The flow checks the same, but there a refusal comes with Prefect's tracebacks.
    """
    from pipeline.errors import ReleaseError
    from pipeline.release import release_dir
    from pipeline.release_rows import load_run
    from pipeline.settings import load_settings

    out_dir = out or load_settings().release.out_dir
    blocked = next(
        (p for p in (out_dir, *out_dir.parents) if p.exists() and not p.is_dir()), None
    )
    if blocked is not None:
        raise ReleaseError(
            f"Cannot write releases to {out_dir}: {blocked} is a file. Pass --out "
            "with a directory."
        )
    release_dir(out_dir, version)
    for run_dir in run_dirs:
        load_run(run_dir)


def publish(
    run_dirs: Annotated[
        list[Path],
        typer.Argument(
            metavar="RUN_DIR...", help="Run directories to publish together."
        ),
    ],
    version: Annotated[
        str | None,
        typer.Option(help="Release version; default: the next minor (0.1.0 first)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Releases directory (default: setting release.out_dir)."),
    ] = None,
    push_to_hub: Annotated[
        str | None,
        typer.Option(
            "--push-to-hub",
            metavar="REPO",
            help="Also push to this Hub dataset repo (owner/name); needs a token "
            "(NORMLOOM_RELEASE__HUB_TOKEN, HF_TOKEN or `hf auth login`).",
        ),
    ] = None,
    only_if_changed: Annotated[
        bool, typer.Option(help="Make no release if nothing changed since the last.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as JSON.")
    ] = False,
) -> None:
    """Publish runs as a versioned dataset release with card, plots and changelog.

    Splits are by norm; human labels from collect-annotations replace the LLM's
    where annotators answered.
    """
    from flows.publish import publish_dataset

    try:
        _check_publish(run_dirs, version, out)
        with console.status("Publishing", spinner="dots"):
            result = publish_dataset(
                run_dirs=[str(d) for d in run_dirs],
                version=version,
                out=str(out) if out else None,
                push_to_hub=push_to_hub,
                only_if_changed=only_if_changed,
            )
    except NormloomError as err:
        _say("error", "red", err)
        raise typer.Exit(1) from err
    if as_json:
        print(json.dumps(result, ensure_ascii=False, indent=2))
        return
    if result["version"] is None:
        _say("unchanged", "yellow", result["message"])
        return

    table = Table(title=f"normloom release {result['version']}")
    table.add_column("split")
    table.add_column("dialogues", justify="right")
    for split, n in result["splits"].items():
        table.add_row(split, str(n))
    console.print(table)
    console.print(Text(f"Release: {result['path']}"))
    console.print(Text(f"Card: {result['card']}"))
    console.print(Text(f"Report: {result['report']}"))
    push = result["push"]
    if push is not None:
        _say(
            "pushed" if push["pushed"] else "skipped",
            "green" if push["pushed"] else "yellow",
            push["message"],
        )


def serve(
    config: Annotated[
        Path, typer.Option(help="Run config: schedules and parameters (TOML).")
    ] = DEFAULT_CONFIG,
    dry_run: Annotated[
        bool,
        typer.Option(help="List the deployments the config makes; serve nothing."),
    ] = False,
) -> None:
    """Serve the scheduled deployments of the four flows against a Prefect server.

    Needs PREFECT_API_URL (see `prefect server start`). Runs until interrupted;
    every scheduled or triggered run is executed by this process, on this machine.
    """
    from flows.deployments import build_deployments, require_server, serve_config
    from pipeline.schedule import load_run_config

    try:
        if dry_run:
            deployments = build_deployments(load_run_config(config))
        else:
            require_server()
            load_run_config(config)
    except NormloomError as err:
        _say("error", "red", err)
        raise typer.Exit(2) from err
    if dry_run:
        table = Table(title=f"deployments in {config}")
        for column in ("deployment", "schedule", "parameters"):
            table.add_column(column)
        for d in deployments:
            crons = ", ".join(
                f"{s.schedule.cron} {s.schedule.timezone}" for s in d.schedules or []
            )
            table.add_row(
                f"{d.flow_name}/{d.name}",
                crons or "on demand",
                json.dumps(d.parameters, ensure_ascii=False),
            )
        console.print(table)
        return
    try:
        serve_config(config)
    except NormloomError as err:
        _say("error", "red", err)
        raise typer.Exit(2) from err
