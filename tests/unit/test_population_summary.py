"""Per-sample population counts, fractions (also among a parent level) and mean intensities."""
from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from engine.population_summary import mean_intensities, population_fractions

LABELS = pd.Series(pd.Categorical(["CD4", "CD8", "CD4", "B", None, "CD4"], categories=["CD4", "CD8", "B", "NK"]))
SAMPLES = pd.Series(["s1", "s1", "s1", "s2", "s2", "s2"])
PARENTS = pd.Series(["T", "T", "T", "B", None, "T"])


def test_counts_and_fractions_per_sample_count_unknown_cells_in_the_total():
    counts = population_fractions(LABELS, SAMPLES, counts=True)
    assert list(counts.columns) == ["CD4", "CD8", "B", "NK"]
    assert counts.loc["s1"].tolist() == [2, 1, 0, 0] and counts.loc["s2"].tolist() == [1, 0, 1, 0]
    fractions = population_fractions(LABELS, SAMPLES)
    assert fractions.loc["s2", "CD4"] == pytest.approx(1 / 3)  # 3 cells in s2, one of them unknown


def test_fractions_among_a_parent_level():
    among = population_fractions(LABELS, SAMPLES, among=PARENTS)
    assert among.loc["s1", "CD4"] == pytest.approx(2 / 3) and among.loc["s2", "CD4"] == pytest.approx(1.0)
    assert np.isnan(among.loc["s1", "B"])  # no B cells at all in s1


def test_mean_intensity_per_population_and_sample():
    adata = ad.AnnData(np.arange(12, dtype=float).reshape(6, 2), var=pd.DataFrame(index=["CD3", "CD19"]))
    means = mean_intensities(adata, LABELS, SAMPLES)
    assert means.loc[("s1", "CD4")].tolist() == [2.0, 3.0]  # cells 0 and 2
    assert ("s2", "NK") not in means.index and len(means) == 4
