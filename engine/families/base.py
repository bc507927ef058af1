"""`FamilyModel`: what every model family shares, written once.

A family fills a few hooks (its config class, which obs columns it reads, its nn.Module, its
controller, how a batch becomes latents or predictions, what it writes); the base resolves the
configuration, builds the module with seeded weights, trains through the shared Trainer, runs the
model over cells in eval mode (the cells it was built on or new ones), writes results, and saves
and loads the model with its data registry, so a loaded model reads other cells with the codes
it was trained on.
"""
from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from torch import nn

from engine.config.family import FamilyConfig
from engine.config.files import load_config, validate_config
from engine.controllers.base import Controller
from engine.data.batches import CellBatches
from engine.data.errors import InputError
from engine.data.registry import REGISTRY_FILE, DataRegistry
from engine.families.results import Results, write_results
from engine.training import Trainer, TrainingRun
from engine.training.story import Story

WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "config.json"
RUNTIME_KEYS = ("events", "progress", "checkpoint_dir", "checkpoint_every", "distributed", "jsonl", "train_cells")


@dataclass(frozen=True)
class DataSpec:
    """The obs columns a family reads from the cells, by kind."""

    categorical: list[str] = field(default_factory=list)
    continuous: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Prediction:
    """What `predict(target)` reads: the target's name, the obs column it predicts, and whether
    it is categorical (its names then come from the data registry)."""

    target: str
    column: str
    categorical: bool


class FamilyModel(ABC):
    """A model family on AnnData cells. Subclasses set `config_class` and fill the hooks."""

    family: ClassVar[str]  # set by engine.families.registry.register
    config_class: ClassVar[type[FamilyConfig]]

    def __init__(
        self,
        adata: AnnData,
        *,
        config: FamilyConfig | Mapping | str | Path | None = None,
        layer: str | None = None,
        genes: list[str] | None = None,
        device: str | torch.device | None = "auto",
        name: str | None = None,
        registry: DataRegistry | None = None,
        **settings,
    ):
        self.name = name or self.family
        self.layer = registry.layer if registry is not None else layer  # what prepare_config may check
        self.config = self.prepare_config(adata, self.resolve_config(config, settings))
        if registry is None:
            spec = self.data_spec(adata)
            self.batches = CellBatches(adata, categorical=spec.categorical, continuous=spec.continuous,
                                       layer=layer, genes=genes, device=device)
            registry = DataRegistry.of(self.batches, layer)
        else:
            self.batches = registry.cells(adata, device)
        self.registry = registry
        self.layer = registry.layer
        self.obs_names = adata.obs_names.copy()
        with torch.random.fork_rng(devices=[]):  # same config, same initial weights; global RNG untouched
            torch.manual_seed(self.config.training.seed)
            self.model = self.build_module().to(self.batches.device)
        self.controller = self.build_controller()
        self.runs: list[TrainingRun] = []

    # -- hooks each family fills -------------------------------------------------------------
    def prepare_config(self, adata: AnnData, config: FamilyConfig) -> FamilyConfig:
        """The configuration checked against the data (e.g. gene sets matched); as is by default."""
        return config

    @abstractmethod
    def data_spec(self, adata: AnnData) -> DataSpec:
        """Which obs columns the family reads; checks them with clear InputErrors."""

    @abstractmethod
    def build_module(self) -> nn.Module:
        """The family's nn.Module for `self.config` and `self.registry` (weights seeded by the base)."""

    @abstractmethod
    def build_controller(self) -> Controller:
        """The controller that trains `self.model`, its optimiser built from `self.config.training`."""

    @property
    @abstractmethod
    def latent_names(self) -> list[str]:
        """The latents this model gives, the default first."""

    @abstractmethod
    def encode(self, batch: dict, names: list[str]) -> dict[str, torch.Tensor]:
        """The named latents of one batch (called in eval mode without gradients)."""

    def prediction(self, target: str | None) -> Prediction:
        """What `predict(target)` reads (hook for families that predict)."""
        raise NotImplementedError(f"the {self.family} family does not predict")

    def predict_batch(self, batch: dict, target: str) -> torch.Tensor:
        """(B, classes) scores or (B, 1) values for one batch (hook for families that predict)."""
        raise NotImplementedError(f"the {self.family} family does not predict")

    def results(self) -> Results:
        """What `write` puts into the AnnData: by default every latent and the run's summary."""
        obsm = {f"X_{self.name}_{latent}": values for latent, values in self.latents().items()}
        uns = {"config": json.dumps(self.config.model_dump(mode="json")), "latents": self.latent_names}
        if self.runs:
            history = self.runs[-1].history()
            if len(history):
                uns["metrics"] = {  # "/" would nest groups in .h5ad
                    k.replace("/", "."): float(v) for k, v in history.iloc[-1].items() if isinstance(v, (int, float))
                }
        return Results(obsm=obsm, uns={self.name: uns})

    # -- configuration -----------------------------------------------------------------------
    @classmethod
    def resolve_config(cls, config, settings: Mapping) -> FamilyConfig:
        """The family's configuration from a file path, a dict, a config object or keywords."""
        if isinstance(config, (str, Path)):
            config = load_config(cls.config_class, config)
        data = config.model_dump() if isinstance(config, FamilyConfig) else dict(config or {})
        return validate_config(cls.config_class, data | dict(settings))

    # -- training ----------------------------------------------------------------------------
    def trainer(self, max_epochs: int | None = None, *, story: Story | Mapping | None = None, **options) -> Trainer:
        """A Trainer for this model, not started (the studio's run registry starts it).

        `options` are `TrainingConfig` fields (batch_size, lr, validation_fraction, ...) and the
        run's plumbing (events, progress, checkpoint_dir, checkpoint_every, distributed, jsonl).
        """
        runtime = {k: options.pop(k) for k in RUNTIME_KEYS if k in options}
        training = self.config.training.model_dump() | options
        if max_epochs is not None:
            training["max_epochs"] = max_epochs
        if story is not None:
            training["story"] = story.model_dump() if isinstance(story, Story) else story
        # Validated with the whole config, so the story's tasks are checked against the family's.
        self.config = validate_config(
            type(self.config), self.config.model_dump() | {"training": training}, "training options"
        )
        return Trainer(self.controller, self.batches, self.config.training, **runtime)

    def train(self, max_epochs: int | None = None, *, story: Story | Mapping | None = None,
              resume_from: str | Path | None = None, **options) -> TrainingRun:
        """Train through the shared Trainer; returns the run (its events and history)."""
        run = self.trainer(max_epochs, story=story, **options).run(resume_from=resume_from)
        self.record(run)
        return run

    def record(self, run: TrainingRun) -> None:
        """Remember a finished run (its last losses go into `uns` on `write`)."""
        self.runs.append(run)

    # -- the model over cells ----------------------------------------------------------------
    def cells(self, adata: AnnData | None = None) -> tuple[CellBatches, pd.Index]:
        """The cells it was built on, or other cells encoded through the data registry."""
        if adata is None:
            return self.batches, self.obs_names
        return self.registry.cells(adata, self.batches.device), adata.obs_names.copy()

    def evaluate(self, batches: CellBatches, compute: Callable[[dict], object], batch_size: int = 4096,
                 cells=None) -> Iterator:
        """`compute(batch)` over every cell (or `cells`: a mask or indices) in order, in eval mode
        without gradients."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for batch in batches.batches(batch_size, cells, shuffle=False):
                    yield compute(batch)
        finally:
            self.model.train(was_training)

    def latent(self, name: str | None = None, *, adata: AnnData | None = None) -> np.ndarray:
        """One latent (the default first), (n_cells, d) numpy, on the model's cells or `adata`'s."""
        name = self.latent_names[0] if name is None else name
        if name not in self.latent_names:
            raise ValueError(f"no latent named {name}; this model has: {', '.join(self.latent_names)}")
        return self.latents([name], adata=adata)[name]

    def latents(self, names: list[str] | None = None, *, adata: AnnData | None = None) -> dict[str, np.ndarray]:
        """Several latents (all by default) from one pass over the cells."""
        names = self.latent_names if names is None else list(names)
        batches, _ = self.cells(adata)
        parts: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        for out in self.evaluate(batches, lambda batch: self.encode(batch, names)):
            for name in names:
                parts[name].append(out[name].float().cpu())
        return {name: torch.cat(chunks).numpy() for name, chunks in parts.items()}

    def predict(self, target: str | None = None, *, adata: AnnData | None = None) -> pd.Series:
        """The model's call per cell: category names (in the trained categories) or values."""
        what = self.prediction(target)
        target = what.target
        batches, index = self.cells(adata)
        scores = torch.cat([s.float().cpu() for s in self.evaluate(batches, lambda b: self.predict_batch(b, target))])
        if not what.categorical:
            return pd.Series(scores[:, 0].numpy(), index=index, name=target)
        categories = self.registry.categorical[what.column]
        codes = scores.argmax(dim=1).numpy()
        return pd.Series(pd.Categorical.from_codes(codes, categories=categories), index=index, name=target)

    def write(self, adata: AnnData) -> Results:
        """Write `results()` into the AnnData the model was built on; returns what was written."""
        if adata.n_obs != len(self.obs_names) or not adata.obs_names.equals(self.obs_names):
            raise InputError(
                f"write() needs the AnnData the model was built on ({len(self.obs_names)} cells in the same order)"
            )
        results = self.results()
        write_results(adata, results)
        return results

    # -- persistence -------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Config, data registry (with family and name), and the weights (state dict only)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(json.dumps(self.config.model_dump(mode="json"), indent=2))
        self.registry.save(directory, family=self.family, name=self.name)
        torch.save(self.model.state_dict(), directory / WEIGHTS_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path, adata: AnnData, *, device: str | torch.device | None = "auto"):
        """A saved model on `adata`: any cells with the saved genes; label columns are optional."""
        directory = Path(directory)
        for required in (CONFIG_FILE, REGISTRY_FILE, WEIGHTS_FILE):
            if not (directory / required).is_file():
                raise InputError(f"{directory}: not a saved {cls.__name__} ({required} is missing)")
        config = json.loads((directory / CONFIG_FILE).read_text())
        registry, about = DataRegistry.read(directory)
        (registry or DataRegistry(about["genes"])).check_genes(adata, f"{directory}: the model")
        if registry is not None:
            model = cls(adata, config=config, device=device, name=about.get("name"), registry=registry)
        else:  # saved before the registry: categories come from the new cells, which need the label columns
            model = cls(adata, config=config, layer=about.get("layer"), genes=about["genes"], device=device,
                        name=about.get("name"))
        state = torch.load(directory / WEIGHTS_FILE, map_location=model.batches.device, weights_only=True)
        model.model.load_state_dict(state)
        return model
