"""The model families: modules only, no training logic."""
from engine.models.extractor import Extractor
