"""`GuidedModel`: the knowledge-guided embedding of an AnnData in a few calls.

It validates the user's knowledge against the data (obs columns, gene sets), keeps the cells on
the device (`CellBatches`), builds the `Extractor` and its controller, trains through the shared
`Trainer`, and writes latents back into AnnData the way scvi-tools users expect
(`obsm['X_<run>_<latent>']`).
"""
from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from engine.config.extractor import ExtractorConfig, HeadSpec
from engine.config.files import load_config, validate_config
from engine.controllers.extractor import ExtractorController
from engine.data.batches import CellBatches
from engine.data.errors import InputError
from engine.data.genesets import match_genes
from engine.models.extractor import Extractor
from engine.training import Trainer, TrainingRun
from engine.training.story import Story

WEIGHTS_FILE = "model.pt"
CONFIG_FILE = "config.json"
GENES_FILE = "genes.json"


class GuidedModel:
    """A main latent plus one head per phenotype and per signature, trained together.

    `phenotypes` maps a head name to its settings (a `PhenotypeSpec` or dict: obs `column`,
    `kind`, `role` learn/remove/neutralize, `latent_dim` or `attach`, losses ...); `signatures`
    maps a head name to a list of genes or to a `SignatureSpec` dict. Other keyword arguments are
    `ExtractorConfig` fields (`main_latent_dim`, `pre_encoder_dims`, `dropout`, `training`, ...).
    """

    def __init__(
        self,
        adata: AnnData,
        phenotypes: Mapping | None = None,
        signatures: Mapping | None = None,
        *,
        config: ExtractorConfig | Mapping | str | Path | None = None,
        layer: str | None = None,
        genes: list[str] | None = None,
        device: str | torch.device | None = "auto",
        name: str = "guided",
        **architecture,
    ):
        self.name = name
        self.config = self._build_config(config, phenotypes, signatures, architecture)
        self.config = self._match_signatures(adata, self.config)
        self._check_columns(adata)
        active = self.config.active_phenotypes
        self.batches = CellBatches(
            adata,
            categorical=sorted({s.column or n for n, s in active.items() if s.kind == "categorical"}),
            continuous=sorted({s.column or n for n, s in active.items() if s.kind == "continuous"}),
            layer=layer,
            genes=genes,
            device=device,
        )
        self.layer = layer
        self.obs_names = adata.obs_names.copy()
        with torch.random.fork_rng(devices=[]):  # same config, same initial weights; global RNG untouched
            torch.manual_seed(self.config.training.seed)
            self.model = self._build_model().to(self.batches.device)
        position = {gene: i for i, gene in enumerate(self.batches.gene_names)}
        self.controller = ExtractorController(
            self.model,
            self.config,
            signature_genes={
                n: torch.tensor([position[g] for g in s.genes], device=self.batches.device)
                for n, s in self.config.active_signatures.items()
            },
            n_categories={n: len(self._categories(n)) for n, s in active.items() if s.kind == "categorical"},
        )
        self.runs: list[TrainingRun] = []

    # -- building --------------------------------------------------------------------------
    @staticmethod
    def _build_config(config, phenotypes, signatures, architecture) -> ExtractorConfig:
        if isinstance(config, (str, Path)):
            config = load_config(ExtractorConfig, config)
        if isinstance(config, ExtractorConfig):
            data = config.model_dump()
        else:
            data = dict(config or {})
        data |= architecture
        if phenotypes is not None:
            data["phenotypes"] = {
                n: spec.model_dump() if hasattr(spec, "model_dump") else dict(spec) for n, spec in phenotypes.items()
            }
        if signatures is not None:
            data["signatures"] = {
                n: {"genes": list(spec)} if isinstance(spec, (list, tuple)) else
                (spec.model_dump() if hasattr(spec, "model_dump") else dict(spec))
                for n, spec in signatures.items()
            }
        return validate_config(ExtractorConfig, data)

    @staticmethod
    def _match_signatures(adata: AnnData, config: ExtractorConfig) -> ExtractorConfig:
        """Map each signature's genes onto var_names; warn about the missing, refuse empty sets."""
        signatures = {}
        for name, spec in config.signatures.items():
            if not spec.enabled:
                signatures[name] = spec
                continue
            match = match_genes(spec.genes, adata)
            if not match.matched:
                raise InputError(
                    f"signature {name!r}: none of its {len(spec.genes)} genes is in the data "
                    f"(first: {spec.genes[:5]}); check the gene naming (symbols vs Ensembl ids)"
                )
            if match.missing:
                warnings.warn(
                    f"signature {name!r}: {len(match.missing)} of {len(spec.genes)} genes not in the data "
                    f"and left out: {match.missing[:10]}",
                    stacklevel=3,
                )
            signatures[name] = spec.model_copy(update={"genes": list(dict.fromkeys(match.matched))})
        return config.model_copy(update={"signatures": signatures})

    def _check_columns(self, adata: AnnData) -> None:
        """Each active phenotype's column exists, has values, and (if categorical) two classes."""
        for name, spec in self.config.active_phenotypes.items():
            column = spec.column or name
            reads = f"column {column}" if column == name else f"phenotype {name} reads column {column}, which"
            if column not in adata.obs.columns:
                raise InputError(
                    f"{reads} is not in the cell annotations; available columns: "
                    f"{', '.join(map(str, adata.obs.columns)) or 'none'}. Pick one of those or switch the phenotype off."
                )
            values = adata.obs[column]
            if not values.notna().any():
                raise InputError(
                    f"{reads} has no value in any of the {adata.n_obs:,} cells (all empty), so there is "
                    "nothing to learn from it; fill it in, pick another column or switch the phenotype off"
                )
            if spec.kind == "categorical" and values.nunique(dropna=True) == 1:
                goal = {"learn": "learn", "remove": "remove", "neutralize": "read out"}[spec.role]
                warnings.warn(
                    f"{reads} holds one class ({values.dropna().iloc[0]}) in every cell that has a value, so "
                    f"there is nothing to {goal} and phenotype {name} will not change the model; switch it "
                    "off, or use a column with at least two classes",
                    UserWarning,
                    stacklevel=3,
                )

    def _categories(self, phenotype: str) -> list[str]:
        spec = self.config.phenotypes[phenotype]
        return self.batches.categories[spec.column or phenotype]

    def _build_model(self) -> Extractor:
        cfg = self.config
        excluded = {g for s in cfg.active_signatures.values() if s.exclude_from_input for g in s.genes}
        input_genes = [i for i, g in enumerate(self.batches.gene_names) if g not in excluded]
        if not input_genes:
            raise InputError("every gene is excluded from the input by signatures; keep some genes as input")
        phenotypes = {
            n: _head(s, len(self._categories(n)) if s.kind == "categorical" else 1)
            for n, s in cfg.active_phenotypes.items()
        }
        signatures = {
            n: _head(s, len(s.genes) if s.target == "genes" else 1) for n, s in cfg.active_signatures.items()
        }
        return Extractor(
            self.batches.n_genes,
            pre_encoder_dims=tuple(cfg.pre_encoder_dims),
            main_latent_dim=cfg.main_latent_dim,
            encoder_dims=tuple(cfg.encoder_dims),
            decoder_dims=tuple(cfg.decoder_dims),
            phenotypes=phenotypes,
            signatures=signatures,
            input_genes=input_genes,
            norm=cfg.norm,
            dropout=cfg.dropout,
            activation=cfg.activation,
            reconstruction="nb" if cfg.reconstruction.loss == "nb" else "gaussian",
        )

    # -- training --------------------------------------------------------------------------
    def trainer(self, max_epochs: int | None = None, *, story: Story | Mapping | None = None, **options) -> Trainer:
        """A Trainer for this model, not started: the studio's run registry starts it in a worker.

        `options` are `TrainingConfig` fields (batch_size, lr, validation_fraction, ...) and
        Trainer extras (events, progress, checkpoint_dir, checkpoint_every, distributed, jsonl).
        """
        runtime_keys = ("events", "progress", "checkpoint_dir", "checkpoint_every", "distributed", "jsonl")
        runtime = {k: options.pop(k) for k in runtime_keys if k in options}
        training = self.config.training.model_dump() | options
        if max_epochs is not None:
            training["max_epochs"] = max_epochs
        if story is not None:
            training["story"] = story.model_dump() if isinstance(story, Story) else story
        self.config = self.config.model_copy(
            update={"training": validate_config(type(self.config.training), training, "training options")}
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

    # -- results ---------------------------------------------------------------------------
    @property
    def latent_names(self) -> list[str]:
        return self.model.latent_names

    def _forward_all(self, batch_size: int = 4096):
        """Yield the model's forward output over every cell in order, in eval mode."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for batch in self.batches.batches(batch_size, shuffle=False):
                    yield self.model(batch["x"], forward_reconstruction=False)
        finally:
            self.model.train(was_training)

    def latent(self, name: str = "main") -> np.ndarray:
        """The latent called `name` ('main' or a head that owns one), (n_cells, d) numpy."""
        if name not in self.latent_names:
            raise ValueError(f"no latent {name!r}; this model has {self.latent_names}")
        return self.latents([name])[name]

    def latents(self, names: list[str] | None = None) -> dict[str, np.ndarray]:
        """Several latents (all by default) from one pass over the cells."""
        names = self.latent_names if names is None else names
        parts: dict[str, list[torch.Tensor]] = {name: [] for name in names}
        for out in self._forward_all():
            for name in names:
                if name == "main":
                    z = out["lat_main"]
                else:
                    z = out["lat_pheno" if name in self.model.phenotypes else "lat_signature"][name]
                parts[name].append(z.cpu())
        return {name: torch.cat(chunks).numpy() for name, chunks in parts.items()}

    def predict(self, phenotype: str) -> pd.Series:
        """The head's call per cell: category names for categorical phenotypes, values otherwise."""
        if phenotype not in self.model.phenotypes:
            raise ValueError(f"no phenotype head {phenotype!r}; this model has {list(self.model.phenotypes)}")
        outputs = torch.cat([out["pheno_out"][phenotype].cpu() for out in self._forward_all()])
        if self.config.phenotypes[phenotype].kind == "continuous":
            return pd.Series(outputs[:, 0].numpy(), index=self.obs_names, name=phenotype)
        categories = self._categories(phenotype)
        codes = outputs.argmax(dim=1).numpy()
        return pd.Series(pd.Categorical.from_codes(codes, categories=categories), index=self.obs_names, name=phenotype)

    def write(self, adata: AnnData) -> None:
        """Fill `obsm['X_<run>_<latent>']` for every latent and `uns['<run>']` (config, metrics)."""
        if adata.n_obs != len(self.obs_names) or not adata.obs_names.equals(self.obs_names):
            raise InputError(
                f"write() needs the AnnData the model was built on ({len(self.obs_names)} cells in the same order)"
            )
        for latent, values in self.latents().items():
            adata.obsm[f"X_{self.name}_{latent}"] = values
        uns = {"config": json.dumps(self.config.model_dump(mode="json")), "latents": self.latent_names}
        if self.runs:
            history = self.runs[-1].history()
            if len(history):
                uns["metrics"] = {  # "/" would nest groups in .h5ad
                    k.replace("/", "."): float(v) for k, v in history.iloc[-1].items() if isinstance(v, (int, float))
                }
        adata.uns[self.name] = uns

    # -- persistence -----------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        """Write config, gene list and weights (state dict only) into `directory`."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CONFIG_FILE).write_text(json.dumps(self.config.model_dump(mode="json"), indent=2))
        (directory / GENES_FILE).write_text(
            json.dumps({"genes": self.batches.gene_names, "layer": self.layer, "name": self.name})
        )
        torch.save(self.model.state_dict(), directory / WEIGHTS_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path, adata: AnnData, *, device: str | torch.device | None = "auto") -> "GuidedModel":
        """Rebuild a saved model on `adata` (which must have the saved genes)."""
        directory = Path(directory)
        for required in (CONFIG_FILE, GENES_FILE, WEIGHTS_FILE):
            if not (directory / required).is_file():
                raise InputError(f"{directory}: not a saved GuidedModel ({required} is missing)")
        saved = json.loads((directory / GENES_FILE).read_text())
        missing = [g for g in saved["genes"] if g not in adata.var_names]
        if missing:
            raise InputError(
                f"{directory}: the model was trained on {len(saved['genes'])} genes; "
                f"{len(missing)} are not in this data (first: {missing[:10]})"
            )
        model = cls(
            adata,
            config=json.loads((directory / CONFIG_FILE).read_text()),
            layer=saved["layer"],
            genes=saved["genes"],
            device=device,
            name=saved["name"],
        )
        state = torch.load(directory / WEIGHTS_FILE, map_location=model.batches.device, weights_only=True)
        model.model.load_state_dict(state)
        return model


def _head(spec: HeadSpec, out_dim: int) -> dict:
    """The Extractor's description of one head, from its configuration."""
    return {"out_dim": out_dim, "latent_dim": spec.latent_dim, "attach": spec.attach, "head_dims": tuple(spec.head_dims)}
