"""Shared rich console and progress bar (stderr, so stdout stays clean for piping).

User text (paths, labels, field values, model output) must never be parsed as rich markup: a
path like ``cfg/[/x].yaml`` would crash the printer and ``[bold]`` would vanish from a name.
Interpolate it into markup strings only through `rich.markup.escape`, or print it with
``markup=False`` / as `rich.text.Text`.
"""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)
out = Console()


@contextmanager
def progress_bar(description: str, total: int | None):
    """Yield an ``advance(n)`` callable driving one rich progress bar."""
    # the description holds labels and file names: styled, never parsed as markup
    with Progress(TextColumn("{task.description}", style="bold blue", markup=False), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=False) as prog:
        task = prog.add_task(description, total=total)
        yield lambda n=1: prog.advance(task, n)


def print_error(message: str) -> None:
    """The CLI's one-line error: ``error: <message>``, the message printed verbatim."""
    from rich.text import Text

    console.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
