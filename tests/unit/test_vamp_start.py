"""The VampPrior's starting cells: spread over the populations, including small ones, where a
uniform draw would miss them."""
import numpy as np
import torch

import engine
from engine.data.simulate_systems import cells_from_systems
from engine.models.vamp_start import spread_cells


def populations(sizes, genes=40, seed=0):
    """Well-separated groups of cells (each its own mean), returned with each cell's group."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, (len(sizes), genes))
    group = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[group] + rng.normal(0, 0.5, (len(group), genes))
    return torch.tensor(x, dtype=torch.float32), group


def test_one_cell_from_each_population_even_the_small_ones():
    x, group = populations([900, 50, 30, 20])
    for seed in range(5):
        picked = spread_cells(x, 4, seed)
        assert sorted(group[picked.numpy()]) == [0, 1, 2, 3], seed
    # a uniform draw of 4 of these cells covers all four groups in well under 1% of draws
    draws = np.random.default_rng(0).integers(0, len(group), (1000, 4))
    assert np.mean([len(set(group[d])) == 4 for d in draws]) < 0.01


def test_the_same_seed_picks_the_same_cells_and_few_cells_are_reused():
    x, _ = populations([30, 30])
    assert torch.equal(spread_cells(x, 5, 3), spread_cells(x, 5, 3))
    few = spread_cells(x[:3], 5, 0)
    assert few.shape == (5,) and int(few.max()) < 3


def test_the_family_starts_its_prior_on_every_cell_type():
    cells = cells_from_systems(2000, 100, n_cell_types=4, seed=0)
    model = engine.SysVIModel(cells, "system", n_prior_components=5, n_latent=4, n_hidden=32)
    expression = cells.X.toarray()
    starts = [int(np.abs(expression - row).sum(axis=1).argmin()) for row in model.model.prior.x.detach().numpy()]
    assert set(cells.obs["cell_type"].to_numpy()[starts]) == set(cells.obs["cell_type"])


def test_with_the_systems_given_the_cells_spread_over_types_not_systems():
    x, cell_type = populations([200, 200], seed=1)  # two cell types ...
    system = torch.tensor(np.tile([0, 1], 200))     # ... each in both systems,
    x = x + 100.0 * system[:, None]                 # which differ far more than the types do
    by_system = [sorted(cell_type[spread_cells(x, 2, seed, groups=system).numpy()]) for seed in range(5)]
    assert all(types == [0, 1] for types in by_system)
