"""The Model tab: choose a model family, then set up and build it with that family's builder.

The chooser lists the families the engine registers (`engine.families.family_names`) that the
studio has a builder for (`app.builders`); each family's settings, problems and build button are
its `FamilyBuilder`. How the model trains is one shared view for every family, `training`
(`TrainingOptions`), which the Train tab shows; the training monitor takes `training_options()`
and the model from `state.model`.
"""
from __future__ import annotations

import panel as pn
import param

from app.escape import html_text

from app.builders.base import FamilyBuilder
from app.builders.registry import BUILDERS
from app.builders.widgets import help_line
from app.components.training_options import TrainingOptions
from app.state import StudioState
from engine.families import family_class, family_names

CHOOSER_HELP = "The kind of model to learn from your cells; its settings and the Build model button follow below."


class ModelBuilder(pn.viewable.Viewer):
    """A family chooser above the chosen family's builder; `builder` is the one shown."""

    state = param.ClassSelector(class_=StudioState, doc="The session this tab works for.")
    family = param.String(default="guided", doc="The chosen family's registered name.")

    def __init__(self, state: StudioState, **params):
        super().__init__(state=state, **params)
        families = [name for name in family_names() if name in BUILDERS]
        self._builders: dict[str, FamilyBuilder] = {}
        self.training = TrainingOptions(family=lambda: self._builders.get(self.family))
        self._chooser = pn.widgets.Select(label="Kind of model", options={BUILDERS[f].title or f: f for f in families},
                                          value=self.family if self.family in families else families[0],
                                          css_classes=["hanami-model-family"], width=620,
                                          description=CHOOSER_HELP)
        self._chooser_help = help_line("", "hanami-model-family-help")
        self._chooser.param.watch(self._on_family, "value")
        self._body = pn.Column(sizing_mode="stretch_width", margin=0)
        self._shown: str | None = None  # the family whose builder the tab shows; none until needed

    @property
    def builder(self) -> FamilyBuilder:
        """The chosen family's builder (made on first need, then kept with its settings)."""
        return self.show()

    def show(self) -> FamilyBuilder:
        """Put the chosen family's builder in the tab, making it on first need; returns it.

        Made when first needed (the Model or Train tab opened, a model built) rather than with the
        page: on the demo it is hundreds of widgets, about half of what opening a page costs.
        """
        family = self._chooser.value
        if family not in self._builders:
            self._builders[family] = BUILDERS[family](self.state, self.training)
        builder = self._builders[family]
        if self._shown != family:
            defaults = family_class(family).config_class.model_fields["training"].default_factory()
            self.training.take_defaults(defaults)  # each family its own (a flow trains on large batches)
            self._shown = self.family = family
            self._chooser_help.object = f"<small>{html_text(builder.title_help or CHOOSER_HELP)}</small>"
            self._body.objects = [builder]
            builder.refresh()  # the shared training options follow the family shown
        return builder

    def _on_family(self, *_) -> None:
        self.show()

    def training_options(self) -> dict:
        """The chosen family's trainer keyword arguments."""
        return self.builder.training_options()

    def build_model(self):
        return self.builder.build()

    def __panel__(self):
        return pn.Column(
            self._chooser,
            self._chooser_help,
            self._body,
            sizing_mode="stretch_width",
            css_classes=["hanami-model-builder"],
        )
