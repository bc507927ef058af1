"""Where `GuidedModel` used to live; it is now the "guided" family in engine.families.guided."""
from engine.families.guided import GuidedModel

__all__ = ["GuidedModel"]
