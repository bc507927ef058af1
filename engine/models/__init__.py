"""The model families: modules only, no training logic."""
from engine.models.extractor import Extractor
from engine.models.flow import PopulationFlow

__all__ = ["Extractor", "PopulationFlow"]
