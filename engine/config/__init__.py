"""Validated, file-backed configuration of model families and training."""
from engine.config.extractor import (
    ExtractorConfig,
    LossSpec,
    PhenotypeSpec,
    RegularizerSpec,
    SignatureSpec,
)
from engine.config.files import load_config, save_config
from engine.config.training import TrainingConfig
