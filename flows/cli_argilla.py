"""``normloom argilla``: run the local Argilla server, and add annotators to it."""

from __future__ import annotations

import json
import logging
import warnings
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from annotation.local import LocalServer
from pipeline.errors import NormloomError

app = typer.Typer(help="Run a local Argilla server.", no_args_is_help=True)
console = Console(stderr=True)


def _server() -> LocalServer:
    from annotation.client import load_settings

    return LocalServer(load_settings())


def _fail(err: object) -> typer.Exit:
    # The message is data (paths, server replies), never markup.
    console.print(Text.assemble(("Error: ", "red"), str(err)), soft_wrap=True)
    return typer.Exit(1)


@app.command()
def serve(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Start Redis, argilla-server and its worker on 127.0.0.1 in the background.

    The first start creates the server's own virtualenv (a minute or two). Running
    it again while the server is up prints its address and changes nothing.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    server = _server()
    try:
        with console.status("Starting Argilla (first start installs it) ..."):
            info = server.start()
    except NormloomError as err:
        raise _fail(err) from err
    memory = sum(server.memory().values())
    if as_json:
        print(
            json.dumps(
                {
                    "url": info.url,
                    "pids": info.pids,
                    "reused": info.reused,
                    "timings": {k: round(v, 2) for k, v in info.timings.items()},
                    "rss_bytes": memory,
                }
            )
        )
        return
    state = (
        "already running" if info.reused else f"up in {info.timings['total_s']:.1f} s"
    )
    typer.echo(f"Argilla {state} at {info.url} ({memory / 2**20:.0f} MiB resident)")
    typer.echo(f"Log in as {server.settings.owner}; logs in {server.logs}.")
    typer.echo("Stop it with: normloom argilla stop")


@app.command()
def stop() -> None:
    """Stop the local server's processes (by the pids `serve` wrote)."""
    stopped = _server().stop()
    typer.echo(f"Stopped {', '.join(stopped)}." if stopped else "Nothing was running.")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Tell whether the local server is up, where, and how much memory it uses."""
    server = _server()
    info = server.running()
    memory = server.memory() if info else {}
    if as_json:
        print(
            json.dumps(
                {
                    "running": info is not None,
                    "url": info and info.url,
                    "rss_bytes": memory,
                }
            )
        )
    elif info is None:
        typer.echo("The local Argilla server is not running.")
    else:
        typer.echo(
            f"Running at {info.url} ({sum(memory.values()) / 2**20:.0f} MiB resident)"
        )
    raise typer.Exit(0 if info else 1)


@app.command("add-user")
def add_user(
    username: str,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, help="At least 8 characters.")
    ],
    role: Annotated[str, typer.Option(help="annotator, admin or owner.")] = "annotator",
) -> None:
    """Create a user on the configured server and add it to the workspace."""
    import argilla as rg

    from annotation.client import connect, load_settings
    from annotation.push import ensure_workspace, find_user

    settings = load_settings()
    try:
        with warnings.catch_warnings():
            # The SDK warns while it looks a new user up; the outcome is printed.
            warnings.simplefilter("ignore", UserWarning)
            client = connect(settings)
            user = (
                find_user(client, username)
                or rg.User(
                    username=username, password=password, role=role, client=client
                ).create()
            )
            workspace = ensure_workspace(client, settings.workspace)
            if username not in {u.username for u in workspace.users}:
                workspace.add_user(user)
    except NormloomError as err:
        raise _fail(err) from err
    except Exception as err:  # noqa: BLE001 - the SDK's errors, shown in one line
        raise _fail(f"could not create user {username!r}: {err}") from err
    typer.echo(f"User {username} ({role}) is in workspace {settings.workspace}.")
