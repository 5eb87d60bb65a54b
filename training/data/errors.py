"""What goes wrong with a dataset's files: a :class:`Problem` (the file is skipped and reported) or a
:class:`DataError` (the work stops). Below every other module of ``training.data``, so that pictures,
labels and formats all raise the same error."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from training.core.inputs import shown


@dataclass(frozen=True)
class Problem:
    """A file that was skipped, and why."""

    path: Path
    message: str

    def __str__(self) -> str:
        return f"{shown(self.path)}: {self.message}"


class DataError(ValueError):
    """A dataset problem that stops the work; names the file or folder and what is wrong with it."""

    def __init__(self, path: Path | str, message: str):
        self.path = Path(path)
        self.message = message
        super().__init__(f"{shown(self.path)}: {message}")
