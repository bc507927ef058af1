"""One `FamilyBuilder` per model family, by the family's registered name."""
from __future__ import annotations

from app.builders.base import FamilyBuilder, Problem
from app.builders.flow import FlowBuilder
from app.builders.guided import GuidedBuilder
from app.builders.sysvi import SysVIBuilder

BUILDERS: dict[str, type[FamilyBuilder]] = {GuidedBuilder.family: GuidedBuilder, FlowBuilder.family: FlowBuilder,
                                            SysVIBuilder.family: SysVIBuilder}


def builder_class(family: str) -> type[FamilyBuilder]:
    """The builder of a registered family, or KeyError naming those the studio can build."""
    try:
        return BUILDERS[family]
    except KeyError:
        raise KeyError(f"the studio has no builder for the {family!r} family; it has {sorted(BUILDERS)}") from None


__all__ = ["BUILDERS", "FamilyBuilder", "FlowBuilder", "GuidedBuilder", "Problem", "SysVIBuilder", "builder_class"]
