"""A flow's verdict on every cell, kept so a new threshold relabels cells without the model.

`log_likelihood[i, p]` is log p(u_i | p), the latent density of cell i under population p's
mode; adding log pi gives the posterior's logits. A cell takes its most probable population,
and is left unknown when its latent density under that population is below the threshold: the
density ignores the flow's volume term, so it measures distance to the population's mode in
marker units and means the same in every region of marker space.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.special import log_softmax


@dataclass(frozen=True)
class PopulationScores:
    log_likelihood: np.ndarray  # (cells, populations)
    log_pi: np.ndarray  # (populations,)
    populations: list[str]
    index: pd.Index

    @cached_property  # computed once: a threshold slider relabels many times
    def best(self) -> np.ndarray:
        """Each cell's most probable population (index)."""
        return (self.log_likelihood + self.log_pi).argmax(axis=1)

    @cached_property
    def best_log_likelihood(self) -> np.ndarray:
        return np.take_along_axis(self.log_likelihood, self.best[:, None], axis=1)[:, 0]

    def labels(self, log_prob_threshold: float) -> pd.Series:
        """Population names, NaN below the threshold (categories: every population, in table order)."""
        codes = np.where(self.best_log_likelihood < log_prob_threshold, -1, self.best)
        return pd.Series(pd.Categorical.from_codes(codes, categories=self.populations), index=self.index,
                         name="population")

    def probabilities(self) -> pd.DataFrame:
        """Posterior probability of each population per cell."""
        probs = np.exp(log_softmax(self.log_likelihood + self.log_pi, axis=1))
        return pd.DataFrame(probs, index=self.index, columns=self.populations)
