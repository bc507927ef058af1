"""What every family's configuration shares, and reading a file into the right family's class.

A family config names its `family` (a Literal) and carries a `TrainingConfig`; subclasses are
recorded by that name when they are defined, so `family_config(data)` picks the class a file's
`family` field names (a file without one is the knowledge-guided autoencoder, "guided"). The
story's tasks are checked against the family's `task_type` when the configuration is read, not
at the first step.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.config.files import read_settings, validate_config
from engine.config.problems import Problem, problems_from, raise_problems
from engine.config.training import TrainingConfig
from engine.data.errors import InputError

DEFAULT_FAMILY = "guided"
FAMILY_CONFIGS: dict[str, type[FamilyConfig]] = {}


class FamilyConfig(BaseModel):
    """Base of every family's configuration; `rule_problems` lists its cross-field problems."""

    model_config = ConfigDict(extra="forbid")

    family: str
    training: TrainingConfig = Field(default_factory=TrainingConfig)

    task_type: ClassVar[type[BaseModel] | None] = None  # the keywords of the controller's step

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        name = cls.model_fields["family"].default
        if isinstance(name, str):
            FAMILY_CONFIGS[name] = cls

    @field_validator("training", mode="before")
    @classmethod
    def _over_family_defaults(cls, value):
        """Training settings given in part fill in from the family's own defaults (its
        `training` field's default), not the generic ones."""
        if not isinstance(value, Mapping):
            return value
        return cls.model_fields["training"].default_factory().model_dump() | dict(value)

    @model_validator(mode="after")
    def _rules(self):
        raise_problems(self.rule_problems())
        return self

    def rule_problems(self) -> list[Problem]:
        """Every cross-field problem (none here but the story's tasks); families extend it."""
        story, found = self.training.story, []
        if story is None or self.task_type is None:
            return found
        known = sorted(self.task_type.model_fields)
        for p, phase in enumerate(story.phases):
            for t, task in enumerate(phase.tasks):
                where = ("training", "story", "phases", str(p), "tasks", str(t))
                try:
                    self.task_type.model_validate(task)
                except ValidationError as error:
                    for problem in problems_from(error):
                        message = problem.message
                        if message.startswith("Extra inputs are not permitted"):
                            message = f"unknown task keyword {problem.location[-1]!r}; a task takes {', '.join(known)}"
                        found.append(Problem(where + problem.location, message))
        return found


def family_config_class(name: str) -> type[FamilyConfig]:
    if name not in FAMILY_CONFIGS:
        message = f"unknown model family {name}; known: {', '.join(sorted(FAMILY_CONFIGS))}"
        raise InputError(message, [Problem(("family",), message)])
    return FAMILY_CONFIGS[name]


def family_config(data: dict, source: str = "configuration") -> FamilyConfig:
    """The configuration of the family `data['family']` names (default "guided"), validated."""
    name = data.get("family", DEFAULT_FAMILY)
    try:
        cls = family_config_class(name)
    except InputError as error:
        raise InputError(f"{source}: {error}", error.problems) from None
    return validate_config(cls, {**data, "family": name}, source)


def load_family_config(path: str | Path) -> FamilyConfig:
    """A family's configuration from a .yaml/.yml/.json file."""
    return family_config(read_settings(path), str(Path(path)))
