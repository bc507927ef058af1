"""What one browser session works on, shared by the studio's areas.

Each area reads and writes this object instead of talking to the others; param's watchers carry
changes (new data loaded, a model built, a run submitted, labels added) to whichever area cares.
Nothing here is Panel-shaped, so a notebook can drive it too.
"""
from __future__ import annotations

import uuid

import param
from anndata import AnnData

from engine.families import FamilyModel


class StudioState(param.Parameterized):
    """The session's data, model, run and the last message to show."""

    adata = param.ClassSelector(class_=AnnData, doc="the loaded cells")
    dataset = param.String(default="", doc="what the cells are called in the page")
    model = param.ClassSelector(class_=FamilyModel, default=None, allow_None=True,
                                doc="the model (of any family) built for these cells")
    run_id = param.String(default=None, allow_None=True, doc="the run this session follows in the registry")
    obs_version = param.Integer(default=0, doc="bumped when obs/obsm gain columns (labels, latents)")
    owner = param.String(default="", doc="the user this session works for, in the run registry")

    def __init__(self, **params):
        params.setdefault("owner", uuid.uuid4().hex)
        super().__init__(**params)

    def load(self, adata: AnnData, dataset: str) -> None:
        """Replace the cells; a model built for other cells no longer applies."""
        with param.parameterized.batch_call_watchers(self):
            self.model = None
            self.run_id = None
            self.dataset = dataset
            self.adata = adata
            self.obs_version += 1

    def open_run(self, run) -> None:
        """Work on a run again: its cells (with the results written into them), its model, its events.

        A run submitted without cells (from Python) is only followed.
        """
        with param.parameterized.batch_call_watchers(self):
            if run.adata is not None:
                self.dataset = run.dataset
                self.adata = run.adata
                self.model = run.model
                self.obs_version += 1
            self.run_id = run.id

    def touch_obs(self) -> None:
        """Tell the areas that obs or obsm changed in place."""
        self.obs_version += 1
