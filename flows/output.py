"""What every command group prints with: one console, and messages that are data."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

console = Console()
SHOW_SKIPPED = 20


def say(label: str, style: str, message: object) -> None:
    """Print one message; its text is data (seed cells, paths), never markup."""
    # No wrapping: a path or a line of the seed file is copied from here.
    console.print(Text.assemble((f"{label}: ", style), str(message)), soft_wrap=True)


def show_problems(label: str, problems: Sequence[object]) -> None:
    """Print the first problems of a list, and how many more there are."""
    for problem in problems[:SHOW_SKIPPED]:
        say(label, "yellow", problem)
    if len(problems) > SHOW_SKIPPED:
        say(label, "yellow", f"... and {len(problems) - SHOW_SKIPPED} more")
