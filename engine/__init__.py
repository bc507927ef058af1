"""Hanami's engine: data, models, controllers and the training runtime. No UI code lives here."""
from engine.controllers.extractor import ExtractorController
from engine.data import preprocess
from engine.data.batches import CellBatches
from engine.data.errors import InputError
from engine.data.genesets import match_genes, read_gene_sets
from engine.data.knowledge import KnowledgeTable, read_knowledge_table
from engine.data.read import read
from engine.data.table_diagnostics import TableFinding, diagnose_table
from engine.families import FamilyModel, FlowAnnotator, GuidedModel, SysVIModel, family_class, family_names
from engine.models.extractor import Extractor
from engine.models.flow import PopulationFlow
from engine.models.sysvae import SysVAE
from engine.training import EventLog, Story, Trainer, TrainingRun

__all__ = [
    "CellBatches",
    "EventLog",
    "Extractor",
    "ExtractorController",
    "FamilyModel",
    "FlowAnnotator",
    "GuidedModel",
    "InputError",
    "KnowledgeTable",
    "PopulationFlow",
    "Story",
    "SysVAE",
    "SysVIModel",
    "TableFinding",
    "Trainer",
    "TrainingRun",
    "diagnose_table",
    "family_class",
    "family_names",
    "match_genes",
    "preprocess",
    "read",
    "read_gene_sets",
    "read_knowledge_table",
]
