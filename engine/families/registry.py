"""The model families by name: the command line and the studio look them up here, never by hand."""
from __future__ import annotations

from typing import TYPE_CHECKING

from engine.config.problems import Problem
from engine.data.errors import InputError

if TYPE_CHECKING:
    from engine.families.base import FamilyModel

_FAMILIES: dict[str, type[FamilyModel]] = {}


def register(cls: type[FamilyModel]) -> type[FamilyModel]:
    """Class decorator: record a family under the `family` its config class names."""
    name = cls.config_class.model_fields["family"].default
    if not isinstance(name, str):
        raise TypeError(f"{cls.__name__}.config_class needs a default `family` name")
    cls.family = name
    _FAMILIES[name] = cls
    return cls


def family_names() -> list[str]:
    return sorted(_FAMILIES)


def family_class(name: str) -> type[FamilyModel]:
    if name not in _FAMILIES:
        message = f"unknown model family {name}; known: {', '.join(family_names())}"
        raise InputError(message, [Problem(("family",), message)])
    return _FAMILIES[name]
