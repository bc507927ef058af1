"""`GuidedModel`: the knowledge-guided embedding of an AnnData in a few calls (family "guided").

It validates the user's knowledge against the data (obs columns, gene sets), builds the
`Extractor` and its controller, and names its results the way scvi-tools users expect
(`obsm['X_<run>_<latent>']`); the rest (config, training, eval passes, write, save / load) is
the shared `FamilyModel`.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping

import torch
from anndata import AnnData

from engine.config.extractor import ExtractorConfig, HeadSpec
from engine.controllers.extractor import ExtractorController
from engine.data.errors import InputError
from engine.data.genesets import match_genes
from engine.families.base import DataSpec, FamilyModel, Prediction
from engine.families.registry import register
from engine.models.extractor import Extractor


@register
class GuidedModel(FamilyModel):
    """A main latent plus one head per phenotype and per signature, trained together.

    `phenotypes` maps a head name to its settings (a `PhenotypeSpec` or dict: obs `column`,
    `kind`, `role` learn/remove/neutralize, `latent_dim` or `attach`, losses ...); `signatures`
    maps a head name to a list of genes or to a `SignatureSpec` dict. Other keyword arguments are
    `ExtractorConfig` fields (`main_latent_dim`, `pre_encoder_dims`, `dropout`, `training`, ...).
    """

    config_class = ExtractorConfig

    def __init__(self, adata: AnnData, phenotypes: Mapping | None = None, signatures: Mapping | None = None,
                 **options):
        """`options`: `FamilyModel`'s (config, layer, genes, device, name) and `ExtractorConfig` fields."""
        if phenotypes is not None:
            options["phenotypes"] = {
                n: spec.model_dump() if hasattr(spec, "model_dump") else dict(spec) for n, spec in phenotypes.items()
            }
        if signatures is not None:
            options["signatures"] = {
                n: {"genes": list(spec)} if isinstance(spec, (list, tuple)) else
                (spec.model_dump() if hasattr(spec, "model_dump") else dict(spec))
                for n, spec in signatures.items()
            }
        super().__init__(adata, **options)

    # -- hooks -------------------------------------------------------------------------------
    def prepare_config(self, adata: AnnData, config: ExtractorConfig) -> ExtractorConfig:
        return self._match_signatures(adata, config)

    def data_spec(self, adata: AnnData) -> DataSpec:
        self._check_columns(adata)
        active = self.config.active_phenotypes
        return DataSpec(
            categorical=sorted({s.column or n for n, s in active.items() if s.kind == "categorical"}),
            continuous=sorted({s.column or n for n, s in active.items() if s.kind == "continuous"}),
        )

    def build_controller(self) -> ExtractorController:
        position = {gene: i for i, gene in enumerate(self.registry.genes)}
        device = self.batches.device
        return ExtractorController(
            self.model,
            self.config,
            signature_genes={
                n: torch.tensor([position[g] for g in s.genes], device=device)
                for n, s in self.config.active_signatures.items()
            },
            n_categories={
                n: len(self._categories(n)) for n, s in self.config.active_phenotypes.items() if s.kind == "categorical"
            },
        )

    @property
    def latent_names(self) -> list[str]:
        return self.model.latent_names

    def encode(self, batch: dict, names: list[str]) -> dict[str, torch.Tensor]:
        out = self.model(batch["x"], forward_reconstruction=False)
        return {
            name: out["lat_main"] if name == "main" else
            out["lat_pheno" if name in self.model.phenotypes else "lat_signature"][name]
            for name in names
        }

    def prediction(self, target: str | None) -> Prediction:
        heads = list(self.model.phenotypes)
        if target is None and len(heads) == 1:
            target = heads[0]
        if target not in self.model.phenotypes:
            raise ValueError(f"no phenotype head named {target}; this model has: {', '.join(heads) or 'none'}")
        spec = self.config.phenotypes[target]
        return Prediction(target, spec.column or target, spec.kind == "categorical")

    def predict_batch(self, batch: dict, target: str) -> torch.Tensor:
        return self.model(batch["x"], forward_reconstruction=False)["pheno_out"][target]

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
                    f"gene program {name}: none of its {len(spec.genes)} genes is in the data "
                    f"(first: {', '.join(map(str, spec.genes[:5]))}); check the gene naming (symbols or Ensembl "
                    "ids) or switch the program off"
                )
            if match.missing:
                warnings.warn(
                    f"gene program {name}: {len(match.missing)} of {len(spec.genes)} genes are not in the data "
                    f"and were left out: {', '.join(map(str, match.missing[:10]))}"
                    + (" and more" if len(match.missing) > 10 else ""),
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
        return self.registry.categorical[spec.column or phenotype]

    def build_module(self) -> Extractor:
        cfg = self.config
        excluded = {g for s in cfg.active_signatures.values() if s.exclude_from_input for g in s.genes}
        input_genes = [i for i, g in enumerate(self.registry.genes) if g not in excluded]
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
            len(self.registry.genes),
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


def _head(spec: HeadSpec, out_dim: int) -> dict:
    """The Extractor's description of one head, from its configuration."""
    return {"out_dim": out_dim, "latent_dim": spec.latent_dim, "attach": spec.attach, "head_dims": tuple(spec.head_dims)}
