"""The model families: modules only, no training logic."""
from engine.models.extractor import Extractor
from engine.models.flow import PopulationFlow
from engine.models.sysvae import SysVAE
from engine.models.vamp_prior import VampPrior

__all__ = ["Extractor", "PopulationFlow", "SysVAE", "VampPrior"]
