"""Validated, file-backed configuration of model families and training."""
from engine.config.extractor import (
    ExtractorConfig,
    ExtractorTask,
    LossSpec,
    PhenotypeSpec,
    RegularizerSpec,
    SignatureSpec,
)
from engine.config.family import FamilyConfig, family_config, family_config_class, load_family_config
from engine.config.files import load_config, save_config
from engine.config.problems import Problem, problems
from engine.config.sysvi import SysVIConfig
from engine.config.training import TrainingConfig
