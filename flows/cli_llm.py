"""``normloom llm``: run the embedded llama.cpp server by hand.

A server started here outlives single runs: point normloom at it with
``NORMLOOM_LLM__BASE_URL`` and the model is loaded once instead of once per run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pipeline.errors import NormloomError
from pipeline.llm_server import PACKAGED_MODELS, EmbeddedServer
from pipeline.settings import Settings

DEFAULT_PORT = 8080

app = typer.Typer(help="Run the embedded llama.cpp server.", no_args_is_help=True)


@app.command()
def serve(
    model: Annotated[
        str | None,
        typer.Option(
            help=(
                "A GGUF file, or a packaged model: "
                f"{' or '.join(PACKAGED_MODELS)}. Default: embedded.model_path, "
                "else qwen."
            )
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            help=(
                f"Port on 127.0.0.1. Default: embedded.port, else {DEFAULT_PORT}; "
                "0 picks a free one."
            )
        ),
    ] = None,
    chat_template: Annotated[
        str | None,
        typer.Option(help="A llama.cpp built-in chat template (e.g. 'gemma')."),
    ] = None,
    parallel: Annotated[
        int | None, typer.Option(help="Parallel decoding slots.")
    ] = None,
    ctx_size: Annotated[
        int | None, typer.Option("--ctx", help="Context size shared by the slots.")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="CPU threads; 0 uses every core.")
    ] = None,
) -> None:
    """Serve a model on 127.0.0.1 in the foreground until Ctrl-C."""
    settings = Settings().embedded
    overrides = {
        "model_path": Path(model) if model is not None else None,
        "port": port if port is not None else settings.port or DEFAULT_PORT,
        "chat_template": chat_template,
        "parallel": parallel,
        "ctx_size": ctx_size,
        "threads": threads,
    }
    settings = settings.model_copy(
        update={k: v for k, v in overrides.items() if v is not None}
    )
    server = EmbeddedServer(settings)
    console = Console(stderr=True)

    try:
        with console.status(f"Loading the model (log: {server.log_path}) ..."):
            base_url = server.start()
    except NormloomError as err:
        console.print(f"[red]Error:[/red] {err}", highlight=False)
        raise typer.Exit(1) from err
    except KeyboardInterrupt:
        raise typer.Exit(130) from None

    try:
        typer.echo(f"Serving at {base_url} (model name '{server.model_name}')")
        typer.echo("Use it from another shell with:")
        typer.echo(f"  export NORMLOOM_LLM__BASE_URL={base_url}")
        typer.echo(f"Log: {server.log_path}. Press Ctrl-C to stop.")
        while server.is_running():
            time.sleep(1.0)
        console.print(
            f"[red]Error:[/red] the server stopped on its own; see {server.log_path}",
            highlight=False,
        )
        raise typer.Exit(1)
    except KeyboardInterrupt:
        typer.echo("Stopping ...")
    finally:
        server.stop()
