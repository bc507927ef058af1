"""`SysVIModel`: cells of several systems (species, organoid and tissue, cells and nuclei, plate
and droplet) in one latent space (family "sysvi", after scvi-tools' SysVI).

The family checks the system column (every cell has one, at least two systems), builds a
`SysVAE` whose VampPrior starts from K cells spread over the data (`engine.models.vamp_start`,
picked with the run's seed), and turns batches of cells into the module's tensors. The latent is
the posterior mean under each cell's own system; new cells are mapped through the family base, as
long as their systems are ones the model knows.
"""
from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from anndata import AnnData

from engine.config.sysvi import SysVIConfig
from engine.controllers.sysvi import SysVIController
from engine.data.batches import CellBatches
from engine.data.errors import InputError
from engine.families.base import DataSpec, FamilyModel
from engine.families.registry import register
from engine.models.sysvae import SysVAE
from engine.models.vamp_start import spread_cells

PRIOR_START_CELLS = 4096
PRIOR_START_VALUES = 2**26  # 256 MB of float32
COUNT_LIKE_MAX = 30  # log-normalised expression rarely exceeds ~10; whole numbers above this look like counts


def looks_like_counts(matrix, rows: int = 2000) -> bool:
    """Whole numbers with a large maximum in the first rows: raw counts rather than log expression."""
    head = matrix[:rows]
    values = head.data if sp.issparse(head) else np.asarray(head).ravel()
    return values.size > 0 and float(values.max()) > COUNT_LIKE_MAX and bool(np.all(np.mod(values, 1) == 0))


@register
class SysVIModel(FamilyModel):
    """Integrate cells across systems.

    `system_key`: the obs column of the system (integrated by the cycle-consistency loss);
    `batch_keys`: batches within systems, and `categorical_covariate_keys` /
    `continuous_covariate_keys` other columns, which the model conditions on. Expression is
    normalised log expression (X or `layer`; run `engine.preprocess.rna` on counts). Other
    keywords are `SysVIConfig` fields (prior, n_latent, cycle_weight, training, ...) and
    `FamilyModel`'s (layer, genes, device, name, config).
    """

    config_class = SysVIConfig

    def __init__(self, adata: AnnData, system_key: str | None = None, batch_keys: list[str] | None = None,
                 categorical_covariate_keys: list[str] | None = None,
                 continuous_covariate_keys: list[str] | None = None, **options):
        for key, value in (("system_key", system_key), ("batch_keys", batch_keys),
                           ("categorical_covariate_keys", categorical_covariate_keys),
                           ("continuous_covariate_keys", continuous_covariate_keys)):
            if value is not None:
                options[key] = value
        if "system_key" not in options and options.get("config") is None:
            raise InputError("integration needs the column that names each cell's system (system_key)")
        super().__init__(adata, **options)

    # -- hooks -------------------------------------------------------------------------------
    def data_spec(self, adata: AnnData) -> DataSpec:
        self._check_systems(adata)
        matrix = adata.layers[self.layer] if self.layer in adata.layers else adata.X
        if matrix is not None and looks_like_counts(matrix):
            warnings.warn(
                f"the expression in {'layer ' + self.layer if self.layer else 'X'} looks like raw counts (whole "
                "numbers, some large); integration models normalised log expression: normalise and log-transform "
                "first (engine.preprocess.rna)", UserWarning, stacklevel=4)
        return DataSpec(categorical=[self.config.system_key] + self.config.covariate_columns,
                        continuous=list(self.config.continuous_covariate_keys))

    def _check_systems(self, adata: AnnData, known: list[str] | None = None) -> None:
        """Every cell has a system; two or more systems to train, or only `known` ones to map."""
        column = self.config.system_key
        if column not in adata.obs.columns:
            raise InputError(
                f"the system column {column} is not in the cell annotations; available columns: "
                f"{', '.join(map(str, adata.obs.columns)) or 'none'}. Pick the column that says which system "
                "(species, protocol, tissue, ...) each cell comes from")
        values = adata.obs[column]
        if values.isna().any():
            raise InputError(
                f"{int(values.isna().sum()):,} cells have no value in the system column {column}; every cell needs "
                "its system: fill it in or leave those cells out")
        systems = sorted(map(str, values.unique()))
        if known is None and len(systems) < 2:
            raise InputError(
                f"the system column {column} holds one system ({systems[0]}) in every cell; integration needs "
                "cells from at least two systems. Pick another column, or load cells of the other systems")
        unknown = sorted(set(systems) - set(known or systems))
        if unknown:
            raise InputError(
                f"these cells come from {', '.join(unknown)}, a system the model was not trained on (it knows "
                f"{', '.join(known)}); the model maps cells of known systems only: train it with cells of "
                f"{', '.join(unknown)} included")

    def build_module(self) -> SysVAE:
        cfg, registry = self.config, self.registry
        n_systems = len(registry.categorical[cfg.system_key])
        pseudo = None
        if cfg.prior == "vamp":  # K cells spread over the data, picked with the run's seed (the base seeds this call)
            pseudo = self.tensors(self.batches.take(self._prior_start_cells(cfg.n_prior_components)))
            if pseudo.get("cat_covs") is not None:
                pseudo["cat_covs"] = pseudo["cat_covs"].clamp(min=0)
        return SysVAE(len(registry.genes), n_systems,
                      len(cfg.continuous_covariate_keys),
                      [len(registry.categorical[c]) for c in cfg.covariate_columns], cfg.embed_categorical_covariates,
                      cfg.prior, cfg.n_prior_components, cfg.trainable_priors, pseudo, cfg.n_latent, cfg.n_hidden,
                      cfg.n_layers, cfg.dropout_rate, cfg.out_var_mode, cycle_input=cfg.cycle_input,
                      vamp_mixture=cfg.vamp_mixture, std_as_variance=cfg.std_as_variance,
                      encoder_variance=cfg.encoder_variance)

    def _prior_start_cells(self, k: int) -> torch.Tensor:
        """K cells for the VampPrior's pseudo-inputs: k-means++ seeding on the within-system
        expression (each system's mean removed) of a random subset of at most PRIOR_START_CELLS
        cells (fewer when genes are many, so the subset stays within PRIOR_START_VALUES values)."""
        n_cells, n_genes = self.batches.n_cells, self.batches.n_genes
        n = min(n_cells, PRIOR_START_CELLS, max(k, PRIOR_START_VALUES // max(n_genes, 1)))
        subset = torch.randperm(n_cells, device=self.batches.device)[:n]
        seed = int(torch.randint(0, 2**31 - 1, (1,)))
        cells = self.batches.take(subset)
        return subset[spread_cells(cells["x"], k, seed, groups=cells["obs"][self.config.system_key])]

    def build_controller(self) -> SysVIController:
        return SysVIController(self.model, self.config, self.tensors)

    def tensors(self, batch: dict) -> dict:
        """A batch of cells as the SysVAE's tensors: system codes, covariate codes, continuous values."""
        cfg, obs = self.config, batch["obs"]
        cats = [obs[c] for c in cfg.covariate_columns]
        conts = [obs[c].to(batch["x"].dtype) for c in cfg.continuous_covariate_keys]
        return {"x": batch["x"], "batch": obs[cfg.system_key],
                "cat_covs": torch.stack(cats, dim=1) if cats else None,
                "cont_covs": torch.stack(conts, dim=1) if conts else None}

    @property
    def latent_names(self) -> list[str]:
        return ["latent"]

    def encode(self, batch: dict, names: list[str]) -> dict[str, torch.Tensor]:
        t = self.tensors(batch)
        return {"latent": self.model.inference(t["x"], t["batch"], t.get("cat_covs"), t.get("cont_covs"))["qz_m"]}

    def cells(self, adata: AnnData | None = None) -> tuple[CellBatches, object]:
        if adata is not None:
            self._check_systems(adata, known=self.registry.categorical[self.config.system_key])
        return super().cells(adata)
