"""One progress bar for a benchmark: runs done over cases x runs per case, the current case and run named."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from autotune.benchmark.cases import Case
from autotune.benchmark.heldout import Progress as Tick
from autotune.cli_common import console


@contextmanager
def case_bar(n_cases: int, runs_per_case: int) -> Iterator[Tick]:
    """A :data:`~autotune.benchmark.heldout.Progress` callback drawing on stderr (results go to stdout)."""
    with Progress(TextColumn("{task.description:<48}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("left"), TimeRemainingColumn(), console=console, transient=True) as prog:
        task = prog.add_task("", total=n_cases * runs_per_case)

        def tick(case: Case, index: int, run: str, j: int, frac: float) -> None:
            prog.update(task, completed=index * runs_per_case + j + frac,
                        description=f"{index + 1}/{n_cases} {case.name}: {run}")

        yield tick
