"""Model families: one shape (`FamilyModel`) that each family fills, looked up by name."""
from engine.data.registry import DataRegistry
from engine.families.base import DataSpec, FamilyModel, Prediction
from engine.families.flow import FlowAnnotator
from engine.families.guided import GuidedModel
from engine.families.sysvi import SysVIModel
from engine.families.registry import family_class, family_names, register
from engine.families.results import Results, write_results

__all__ = [
    "DataRegistry",
    "DataSpec",
    "FamilyModel",
    "FlowAnnotator",
    "GuidedModel",
    "Prediction",
    "Results",
    "SysVIModel",
    "family_class",
    "family_names",
    "register",
    "write_results",
]
