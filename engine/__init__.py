"""Hanami's engine: data, models, controllers and the training runtime. No UI code lives here."""
from engine.controllers.extractor import ExtractorController
from engine.data import preprocess
from engine.data.batches import CellBatches
from engine.data.errors import InputError
from engine.data.genesets import match_genes, read_gene_sets
from engine.data.knowledge import KnowledgeTable, read_knowledge_table
from engine.data.read import read
from engine.families import FamilyModel, GuidedModel, family_class, family_names
from engine.models.extractor import Extractor
from engine.training import EventLog, Story, Trainer, TrainingRun

__all__ = [
    "CellBatches",
    "EventLog",
    "Extractor",
    "ExtractorController",
    "FamilyModel",
    "GuidedModel",
    "InputError",
    "KnowledgeTable",
    "Story",
    "Trainer",
    "TrainingRun",
    "family_class",
    "family_names",
    "match_genes",
    "preprocess",
    "read",
    "read_gene_sets",
    "read_knowledge_table",
]
