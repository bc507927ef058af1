"""`FlowAnnotator`: population labels from a knowledge table by a normalising flow (family "flow").

The family checks the table against the cells (`diagnose_table`), builds a `PopulationFlow` on
the table's markers with the batch and covariate columns one-hot (continuous ones as they are),
and reads its results out: labels with unknown cells (`predict`), posteriors (`predict_proba`),
why a cell got its label (`marker_contributions`), batch correction through the flow
(`correct_batch`) and generated cells (`sample`). Training, eval passes, write, save and load are
the shared `FamilyModel`'s.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from anndata import AnnData

from engine.config.flow import FlowConfig
from engine.controllers.flow import FlowController
from engine.data.errors import InputError
from engine.data.knowledge import KnowledgeTable, read_knowledge_table
from engine.data.table_diagnostics import diagnose_table
from engine.families.base import DataSpec, FamilyModel
from engine.families.flow_scores import PopulationScores
from engine.families.registry import register
from engine.families.results import Results
from engine.models.flow import PopulationFlow


def as_knowledge_table(table) -> KnowledgeTable:
    """A KnowledgeTable from itself, a CSV path, or a populations x markers DataFrame."""
    if isinstance(table, KnowledgeTable):
        return table
    if isinstance(table, (str, Path)):
        return read_knowledge_table(table)
    if isinstance(table, pd.DataFrame):
        levels = [c for c in table.columns if "level" in str(c).lower()]
        return KnowledgeTable(values=table.drop(columns=levels), levels=table[levels].astype(str) if levels else None,
                              source="knowledge table")
    raise InputError("the knowledge table must be a CSV file, a table of populations by markers, or a KnowledgeTable")


def table_settings(table: KnowledgeTable) -> dict:
    """The table as configuration fields (None for unknown levels)."""
    values = table.values.astype(object).where(table.values.notna(), None)
    return {
        "populations": [str(p) for p in table.populations],
        "markers": [str(m) for m in table.markers],
        "values": values.values.tolist(),
        "levels": {str(c): [str(v) for v in table.levels[c]] for c in table.levels.columns},
    }


@register
class FlowAnnotator(FamilyModel):
    """Annotate cells with the populations of a knowledge table (after Scyan).

    `table`: a CSV path, a DataFrame or a `KnowledgeTable` (populations x markers: 1, -1,
    fractions, blank for unknown; "level" columns give a hierarchy). `batch_key` names the batch
    column (the one `correct_batch` swaps); the covariate keys add other columns the flow is
    conditioned on. Other keywords are `FlowConfig` fields (hidden_size, n_layers, prior_std,
    temperature, training, ...) and `FamilyModel`'s (layer, device, name, config).
    """

    config_class = FlowConfig

    def __init__(self, adata: AnnData, table=None, batch_key: str | None = None,
                 categorical_covariate_keys: list[str] | None = None,
                 continuous_covariate_keys: list[str] | None = None, **options):
        if table is not None:
            options |= table_settings(as_knowledge_table(table))
        elif options.get("config") is None:
            raise InputError("a population model needs a knowledge table (populations by markers)")
        for key, value in (("batch_key", batch_key), ("categorical_covariate_keys", categorical_covariate_keys),
                           ("continuous_covariate_keys", continuous_covariate_keys)):
            if value is not None:
                options[key] = value
        if options.get("registry") is None and options.get("genes") is None:
            options["genes"] = options.get("markers") or self.resolve_config(options.get("config"), {}).markers
        super().__init__(adata, **options)

    # -- the table ---------------------------------------------------------------------------
    @property
    def table(self) -> KnowledgeTable:
        return self._table_of(self.config)

    # -- hooks -------------------------------------------------------------------------------
    def prepare_config(self, adata: AnnData, config: FlowConfig) -> FlowConfig:
        findings = diagnose_table(self._table_of(config), adata, self.layer)
        errors = [f.message for f in findings if f.severity == "error"]
        if errors:
            raise InputError("\n".join(errors))
        for finding in findings:
            warnings.warn(finding.message, UserWarning, stacklevel=4)
        return config

    @staticmethod
    def _table_of(config: FlowConfig) -> KnowledgeTable:
        index = pd.Index(config.populations, name="population")
        return KnowledgeTable(values=pd.DataFrame(config.values, index=index, columns=config.markers, dtype=float),
                              levels=pd.DataFrame(config.levels, index=index))

    def data_spec(self, adata: AnnData) -> DataSpec:
        return DataSpec(categorical=self.config.covariate_columns, continuous=list(self.config.continuous_covariate_keys))

    @property
    def n_covariates(self) -> int:
        return sum(len(self.registry.categorical[c]) for c in self.config.covariate_columns) + len(
            self.config.continuous_covariate_keys)

    def build_module(self) -> PopulationFlow:
        cfg = self.config
        rho = torch.tensor([[np.nan if v is None else v for v in row] for row in cfg.values], dtype=torch.float32)
        continuum = torch.tensor([m in cfg.continuum_markers for m in cfg.markers], dtype=torch.bool)
        return PopulationFlow(rho, self.n_covariates, continuum, cfg.hidden_size, cfg.n_hidden_layers, cfg.n_layers,
                              cfg.prior_std, cfg.temperature, covariate_scale=cfg.covariate_scale)

    def build_controller(self) -> FlowController:
        return FlowController(self.model, self.config, self.covariates)

    def covariates(self, batch: dict, replace: dict[str, int] | None = None) -> torch.Tensor | None:
        """The flow's covariate matrix of a batch: one-hot categories (zeros where missing), then
        continuous values; `replace` sets a categorical column to one category in every cell."""
        parts = []
        for column in self.config.covariate_columns:
            n = len(self.registry.categorical[column])
            codes, present = batch["obs"][column], batch["mask"][column]
            if replace and column in replace:
                codes, present = torch.full_like(codes, replace[column]), torch.ones_like(present)
            parts.append(torch.nn.functional.one_hot(codes.clamp(min=0), n).to(batch["x"].dtype) * present[:, None])
        parts += [batch["obs"][c][:, None].to(batch["x"].dtype) for c in self.config.continuous_covariate_keys]
        return torch.cat(parts, dim=1) if parts else None

    @property
    def latent_names(self) -> list[str]:
        return ["latent"]

    def encode(self, batch: dict, names: list[str]) -> dict[str, torch.Tensor]:
        return {"latent": self.model(batch["x"], self.covariates(batch))[0]}

    def trainer(self, max_epochs=None, *, story=None, **options):
        """The shared Trainer; on large data an epoch is `cells_per_epoch` cells, not a full pass."""
        per_epoch = self.config.cells_per_epoch
        if "tick_batches" not in options and per_epoch and self.config.training.tick_batches is None:
            batch_size = options.get("batch_size", self.config.training.batch_size)
            if self.batches.n_cells > per_epoch:
                options["tick_batches"] = max(1, per_epoch // batch_size)
        return super().trainer(max_epochs, story=story, **options)

    # -- reading the model out ---------------------------------------------------------------
    def _eval_prior(self) -> None:
        self.model.prior_std = self.config.prior_std  # training may have left the warm-up width

    def scores(self, *, adata: AnnData | None = None) -> PopulationScores:
        """Every cell's log-likelihood under each population (one pass; relabel it at will)."""
        self._eval_prior()
        batches, index = self.cells(adata)
        prior = self.model.prior
        parts = [
            p.float().cpu()
            for p in self.evaluate(batches, lambda b: prior.log_prob(self.encode(b, [])["latent"], self.config.prior_std))
        ]
        return PopulationScores(torch.cat(parts).numpy(), self.model.log_pi.detach().cpu().numpy(),
                                list(self.config.populations), index)

    def predict(self, log_prob_threshold: float | None = None, *, levels: bool = False,
                adata: AnnData | None = None) -> pd.Series | pd.DataFrame:
        """Population names per cell, NaN where the cell fits no population well enough.

        With `levels`, a DataFrame: the population and one column per hierarchy level."""
        threshold = self.config.log_prob_threshold if log_prob_threshold is None else log_prob_threshold
        labels = self.scores(adata=adata).labels(threshold)
        return self.with_levels(labels) if levels else labels

    def with_levels(self, labels: pd.Series) -> pd.DataFrame:
        """`labels` and, for each hierarchy level, the level each label belongs to."""
        frame = pd.DataFrame({"population": labels})
        for level, names in self.config.levels.items():
            mapping = dict(zip(self.config.populations, names))
            frame[level] = pd.Categorical(labels.astype(object).map(mapping), categories=list(dict.fromkeys(names)))
        return frame

    def predict_proba(self, *, adata: AnnData | None = None) -> pd.DataFrame:
        return self.scores(adata=adata).probabilities()

    def marker_contributions(self, cells=None, population: str | None = None) -> pd.DataFrame:
        """Why cells got (or did not get) a label: each marker's term of log p(u | population).

        Without `population`: populations x markers, the mean over `cells` (a mask, indices or
        cell names; all by default). With it: cells x markers for that population."""
        self._eval_prior()
        index = self._cell_index(cells)
        prior, std = self.model.prior, self.config.prior_std
        per_marker = [
            t.float().cpu()
            for t in self.evaluate(self.batches, lambda b: prior.log_prob_per_marker(self.encode(b, [])["latent"], std),
                                   cells=index)
        ]
        terms = torch.cat(per_marker) if per_marker else torch.zeros(0, len(self.config.populations), len(self.config.markers))
        if population is None:
            return pd.DataFrame(terms.mean(dim=0).numpy(), index=pd.Index(self.config.populations, name="population"),
                                columns=self.config.markers)
        p = self._population_index(population)
        return pd.DataFrame(terms[:, p].numpy(), index=self.obs_names[index.cpu().numpy()], columns=self.config.markers)

    def correct_batch(self, reference: str | None = None) -> np.ndarray:
        """Markers of every cell as if measured in the `reference` batch (default: the largest):
        x -> u with the cell's covariates, then u -> x with only the batch swapped."""
        column = self.config.batch_key
        if column is None:
            raise InputError("batch correction needs the model to be built with a batch column (batch_key)")
        categories = self.registry.categorical[column]
        if reference is None:
            counts = self.batches.category_counts(column)
            reference = categories[counts.index(max(counts))]
        if reference not in categories:
            raise InputError(f"batch {reference} is not in column {column}; its batches: {', '.join(categories)}")
        swap = {column: categories.index(reference)}

        def corrected(batch):
            u = self.model(batch["x"], self.covariates(batch))[0]
            return self.model.inverse(u, self.covariates(batch, swap))

        return torch.cat([x.float().cpu() for x in self.evaluate(self.batches, corrected)]).numpy()

    def sample(self, n: int, population: str | None = None, *, seed: int = 0) -> AnnData:
        """`n` generated cells (markers in the data's scale), with the covariates of random real
        cells; all of one population, or drawn with the learnt population weights."""
        self._eval_prior()
        generator = torch.Generator().manual_seed(seed)
        donors = torch.randint(self.batches.n_cells, (n,), generator=generator).to(self.batches.device)
        batch = self.batches.take(donors)
        z = None if population is None else self._population_index(population)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            x, z = self.model.sample(n, self.covariates(batch), z=z, return_z=True)
        obs = pd.DataFrame({"population": pd.Categorical.from_codes(z.cpu().numpy(), categories=self.config.populations)})
        for column in self.config.covariate_columns:
            obs[column] = pd.Categorical.from_codes(batch["obs"][column].cpu().numpy(),
                                                    categories=self.registry.categorical[column])
        obs.index = [f"sample{i}" for i in range(n)]
        return AnnData(X=x.float().cpu().numpy(), obs=obs, var=pd.DataFrame(index=self.config.markers))

    def results(self) -> Results:
        results = super().results()
        scores = self.scores()
        labels = scores.labels(self.config.log_prob_threshold)
        frame = self.with_levels(labels)
        results.obs[f"{self.name}_population"] = frame["population"]
        results.obs[f"{self.name}_log_prob"] = pd.Series(scores.best_log_likelihood, index=scores.index)
        for level in self.config.levels:
            results.obs[f"{self.name}_population_{level}"] = frame[level]
        results.obsm[f"{self.name}_probabilities"] = scores.probabilities().to_numpy()
        uns = results.uns[self.name]
        uns |= {"populations": list(self.config.populations), "markers": list(self.config.markers),
                "log_prob_threshold": self.config.log_prob_threshold,
                "population_weights": self.model.pi.detach().cpu().numpy()}
        uns["table"] = json.dumps(table_settings(self.table))
        return results

    # -- helpers -----------------------------------------------------------------------------
    def _population_index(self, population: str) -> int:
        if population not in self.config.populations:
            raise InputError(f"no population named {population}; the table has: {', '.join(self.config.populations)}")
        return self.config.populations.index(population)

    def _cell_index(self, cells) -> torch.Tensor:
        if cells is not None and not torch.is_tensor(cells):
            cells = np.asarray(cells)
            if cells.dtype.kind in "OUS":
                positions = self.obs_names.get_indexer(cells)
                if (positions < 0).any():
                    raise InputError(f"cell {cells[positions < 0][0]} is not among the model's cells")
                cells = positions
        return self.batches.cell_index(cells)
