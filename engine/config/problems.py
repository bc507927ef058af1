"""Every problem of a configuration, each with its location, so a UI can show it by its control.

Pydantic stops a model's cross-field rules at field errors, and a rule that raises stops the
others. Here the rules collect every problem and raise them together (`RuleProblems`), and
`problems()` validates in rounds: each round drops the values that field errors blamed (their
defaults apply) and validates again, so one call lists them all.
"""
from __future__ import annotations

import copy
import operator
from dataclasses import dataclass
from functools import reduce

from pydantic import BaseModel, ValidationError

MAX_ROUNDS = 10


@dataclass(frozen=True)
class Problem:
    """One problem: where it is (a path of field names and keys) and what is wrong."""

    location: tuple[str, ...]
    message: str

    def __str__(self) -> str:
        return f"{'.'.join(self.location)}: {self.message}" if self.location else self.message


class RuleProblems(ValueError):
    """What a model validator raises: all the cross-field problems it found, not the first."""

    def __init__(self, problems: list[Problem]):
        super().__init__(str(problems[0]))  # pydantic's own text names the first, as before
        self.problems = list(problems)


def raise_problems(problems: list[Problem]) -> None:
    if problems:
        raise RuleProblems(problems)


def problems_from(error: ValidationError) -> list[Problem]:
    """The problems in a pydantic error: field errors and every collected rule problem."""
    found = []
    for detail in error.errors():
        where = tuple(str(part) for part in detail["loc"])
        cause = (detail.get("ctx") or {}).get("error")
        if isinstance(cause, RuleProblems):
            found += [Problem(where + p.location, p.message) for p in cause.problems]
        else:
            given = detail.get("input")
            shown = "" if isinstance(given, (dict, list)) or detail["type"] == "missing" else f" (given: {given})"
            found.append(Problem(where, _plain(detail["msg"].removeprefix("Value error, ")) + shown))
    return found


_PYDANTIC_WORDS = (
    ("Input should be greater than or equal to", "must be at least"),
    ("Input should be less than or equal to", "must be at most"),
    ("Input should be greater than", "must be more than"),
    ("Input should be less than", "must be less than"),
    ("Input should be a valid", "must be a"),
    ("Input should be", "must be"),
    ("Field required", "is missing"),
)


def _plain(message: str) -> str:
    """pydantic's wording of a field error as a plain sentence ('must be at least 1')."""
    for old, new in _PYDANTIC_WORDS:
        if message.startswith(old):
            return new + message[len(old):]
    return message


def problems(cls: type[BaseModel], data: dict) -> list[Problem]:
    """Every problem `data` has as a `cls` configuration (empty when it validates)."""
    data, found = copy.deepcopy(dict(data)), []
    for _ in range(MAX_ROUNDS):
        try:
            cls.model_validate(data)
            break
        except ValidationError as error:
            found += [p for p in problems_from(error) if p not in found]
            removed = [_remove(data, list(d["loc"])) for d in error.errors() if d["loc"]]
            if not any(removed):
                break
    return found


def _remove(data: dict, path: list) -> bool:
    """Delete the value at an error's location so that validation goes on with its default."""
    *parents, last = path
    try:
        del reduce(operator.getitem, parents, data)[last]
        return True
    except (KeyError, IndexError, TypeError):
        return False
