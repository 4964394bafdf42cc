"""User-facing input errors: one line naming the file and the field."""

from __future__ import annotations

from pathlib import Path


class InputError(Exception):
    """Bad input from a file or the command line; the CLI prints it and exits 2."""

    def __init__(self, source: str | Path, field: str | None, problem: str) -> None:
        self.source = str(source)
        self.field = field
        self.problem = problem
        where = f"{self.source}: {field}" if field else self.source
        super().__init__(f"{where}: {problem}")
