"""What stops the service from starting, or a client from reaching a server: said to the operator (drawn in
service.errors)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


class ConfigurationError(Exception):
    """A problem that stops the service from starting; the message is meant for the operator. The subclasses
    carry what it is about (the setting, the path, the data dir, the problems found) and build the message from
    it when it is shown."""


class SettingError(ConfigurationError):
    """A setting whose value cannot be used: `setting` names it as the operator gives it (POCKETCA_X, --x)."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(setting, problem)
        self.setting = setting
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.setting}: {self.problem}"


class FileError(ConfigurationError):
    """A file that cannot be used: `path`, and `what` it was meant to be (a flag, "the CA certificate"), if said."""

    def __init__(self, path: Path, problem: str, *, what: str | None = None) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem
        self.what = what

    def __str__(self) -> str:
        return f"{self.what} {self.path}: {self.problem}" if self.what else f"{self.path}: {self.problem}"


class CAExistsError(ConfigurationError):
    """The data dir has a CA already: nothing makes or imports a second one over it."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.data_dir = data_dir

    def __str__(self) -> str:
        return f"a CA already exists in {self.data_dir}"


class NoCAError(ConfigurationError):
    """The data dir has no CA yet; `next_step` says what makes one."""

    def __init__(self, data_dir: Path, next_step: str = "run `pocketca init` or `pocketca serve`") -> None:
        super().__init__(data_dir, next_step)
        self.data_dir = data_dir
        self.next_step = next_step

    def __str__(self) -> str:
        return f"no CA in {self.data_dir}: {self.next_step}"


class CACheckError(ConfigurationError):
    """A CA certificate (made elsewhere) that cannot issue here: every problem found, not just the first."""

    def __init__(self, action: str, problems: Sequence[str]) -> None:
        super().__init__(action, list(problems))
        self.action = action  # "import", "rotate to"
        self.problems = list(problems)

    def __str__(self) -> str:
        return f"cannot {self.action} this CA: " + "; ".join(self.problems)


class UnreachableError(Exception):
    """A server or database we could not talk to; the message names it and says what to do."""
