"""What a model was trained on, saved beside its weights, so it reads other cells the same way.

Genes in order, the layer, every categorical column with its categories in code order, and the
continuous columns. A model loaded on other cells encodes them through this registry: the same
class keeps the same code whatever the new data's category order, classes the model never saw
are missing, and label columns the new cells lack are missing in every cell.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from anndata import AnnData

from engine.data.batches import CellBatches
from engine.data.errors import InputError

# The file name saved models had before the registry (genes, layer, name): readers of that form
# still find those keys, and this one tells the two forms apart by `categorical`.
REGISTRY_FILE = "genes.json"


@dataclass(frozen=True)
class DataRegistry:
    genes: list[str]
    layer: str | None = None
    categorical: dict[str, list[str]] = field(default_factory=dict)
    continuous: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, batches: CellBatches, layer: str | None) -> DataRegistry:
        """The registry of cells a model was built on."""
        continuous = [c for c in batches.obs_columns if c not in batches.categories]
        return cls(list(batches.gene_names), layer, {c: list(v) for c, v in batches.categories.items()}, continuous)

    def check_genes(self, adata: AnnData, source: str = "the model") -> None:
        missing = [g for g in self.genes if g not in adata.var_names]
        if missing:
            raise InputError(
                f"{source} was trained on {len(self.genes)} genes; {len(missing)} are not in this data "
                f"(first: {', '.join(map(str, missing[:10]))}); use cells measured on the same genes (check "
                "whether the genes are named by symbols or by Ensembl ids)"
            )

    def cells(self, adata: AnnData, device: str | torch.device | None = "auto") -> CellBatches:
        """Other cells, encoded as the model's: its genes, layer and category codes; absent label
        columns are missing, not an error."""
        self.check_genes(adata)
        return CellBatches(
            adata, categorical=list(self.categorical), continuous=self.continuous, layer=self.layer,
            genes=self.genes, device=device, categories=self.categorical, absent_columns_missing=True,
        )

    def save(self, directory: Path, **about) -> None:
        """Write the registry (and `about`: the model's family and name) as JSON into `directory`."""
        (directory / REGISTRY_FILE).write_text(json.dumps({**about, **asdict(self)}, indent=2))

    @classmethod
    def read(cls, directory: Path) -> tuple[DataRegistry | None, dict]:
        """(the registry, or None for a model saved before it: genes and layer only; the file's data)."""
        data = json.loads((directory / REGISTRY_FILE).read_text())
        if "categorical" not in data:
            return None, data
        return cls(data["genes"], data.get("layer"), data["categorical"], data.get("continuous", [])), data
