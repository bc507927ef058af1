"""Read and write configurations as YAML or JSON; validation errors name the field."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from engine.config.problems import Problem, problems, problems_from
from engine.data.errors import InputError

ConfigT = TypeVar("ConfigT", bound=BaseModel)


def describe_validation_error(error: ValidationError, source: str) -> str:
    """One line per problem: the dotted field path, what was wrong, what was given."""
    return describe_problems(problems_from(error), source)


def describe_problems(found: list[Problem], source: str) -> str:
    lines = [f"{source}: {len(found)} problem(s) in the configuration"]
    lines += [f"  - {'.'.join(p.location) or '(top level)'}: {p.message}" for p in found]
    return "\n".join(lines)


def validate_config(cls: type[ConfigT], data: dict, source: str = "configuration") -> ConfigT:
    """A validated configuration, or InputError listing every problem (also as `.problems`)."""
    try:
        return cls.model_validate(data)
    except ValidationError as error:
        found = (problems(cls, data) if isinstance(data, dict) else []) or problems_from(error)
        raise InputError(describe_problems(found, source), found) from None


def read_settings(path: str | Path) -> dict:
    """The top-level mapping of a .yaml/.yml/.json file; parse errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: configuration file not found")
    text = path.read_text()
    kind = "JSON" if path.suffix == ".json" else "YAML"
    try:
        data = json.loads(text) if kind == "JSON" else yaml.safe_load(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON at line {error.lineno}, column {error.colno} ({error.msg}); fix that line") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise InputError(f"{path}: not valid YAML{where} ({problem}); fix that line") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping of settings at the top level")
    return data


def load_config(cls: type[ConfigT], path: str | Path) -> ConfigT:
    """A configuration from a .yaml/.yml/.json file."""
    return validate_config(cls, read_settings(path), str(Path(path)))


def save_config(config: BaseModel, path: str | Path) -> None:
    path = Path(path)
    data = config.model_dump(mode="json")
    if path.suffix == ".json":
        path.write_text(json.dumps(data, indent=2))
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False))
