"""`FamilyBuilder`: the Model tab's part for one model family.

A family's builder fills a few hooks: `config_data()` (its settings as the family's config dict),
`checks()` (what a configuration cannot check alone: values and genes in the data, settings that
train nothing), `place(location)` (which control an engine problem belongs beside), `fit()`
(greys and hides its widgets to fit their values), `alerts()` (where problems are shown),
`controls()` (its widgets) and its part of the training story (`phase_task()`, `warmup_task`).
How it trains is the shared `TrainingOptions` view (the Train tab), which the builder validates
with the rest of the configuration. The base validates through `engine.config.problems`, so every
problem comes with its field location and none is parsed from error text; it builds
`family_class(family)(state.adata, config=..., device="auto")` into `state.model`.
"""
from __future__ import annotations

import asyncio

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import panel as pn
import param

from app.builders.widgets import alert, next_step, say
from app.components.training_options import TrainingOptions
from app.state import StudioState
from engine.config.problems import Problem as ConfigProblem
from engine.config.problems import problems as config_problems
from engine.data.errors import InputError
from engine.families import FamilyModel, family_class

SETTINGS = "model settings"
SEE_TRAINING = "the training options (in 3 · Train) have a problem: see them there"
NEXT_AFTER_BUILD = "Next: open 3 · Train, set how long to train, and press Start."
TRAINING_WORDS = {"max_epochs": "epochs", "batch_size": "cells per step", "lr": "learning rate",
                  "bf16": "faster arithmetic", "story": "order of training"}


@dataclass
class Problem:
    """A problem shown beside a control: `where` names a row or a settings area.

    `level` is "danger" (stops the build) or "warning" (only explains); `text` is what the control
    shows, `line` the full sentence config() raises; `found` is the engine's problem, if it found it.
    """

    where: str
    level: str
    text: str
    line: str = ""
    found: ConfigProblem | None = None

    def __post_init__(self):
        self.line = self.line or f"{self.where}: {self.text}"


class FamilyBuilder(pn.viewable.Viewer):
    """Settings for one family on `state.adata`; `build()` puts the model in `state.model`."""

    family: ClassVar[str] = ""
    title: ClassVar[str] = ""  # what the family chooser shows a biologist
    title_help: ClassVar[str] = ""  # one line under the chooser: what the family does, with its ML name
    warmup_task: ClassVar[dict | None] = None  # task settings of a warm-up phase; None: no warm-up
    warmup_label: ClassVar[str] = ""  # how the story choice names that warm-up
    warmup_name: ClassVar[str] = "warmup"  # the warm-up phase's name
    warmup_length_label: ClassVar[str] = ""  # the label of the warm-up's length ("" : made from warmup_label)
    state = param.ClassSelector(class_=StudioState, doc="The session this builder works for.")
    valid = param.Boolean(default=False, constant=True, doc="True when config() would succeed.")

    def __init__(self, state: StudioState, training: TrainingOptions | None = None, **params):
        super().__init__(state=state, **params)
        self._holding = 0
        self.training = training if training is not None else TrainingOptions(family=lambda: self)
        self.training.param.watch(self._on_training, "changed")
        self._build_button = pn.widgets.Button(label="Build model", color="primary",
                                               css_classes=["hanami-build-model"], width=160,
                                               description="Make the model from these settings (nothing is "
                                                           "trained yet; that happens in 3 · Train).")
        self._build_button.on_click(self._on_build)
        self._status = alert("hanami-build-status")
        self._next = next_step()
        self._general = alert("hanami-model-general-problem")

    # -- hooks -------------------------------------------------------------------------------
    def config_data(self) -> dict:
        """The settings as the family's configuration dict."""
        raise NotImplementedError

    def checks(self) -> list[Problem]:
        """Problems the configuration cannot see (none by default)."""
        return []

    def place(self, location: tuple[str, ...]) -> tuple[str, str]:
        """(where, prefix) for a configuration problem: the control key and what to put before it.

        Training problems go beside the shared training options; others to 'general' by default.
        """
        if location[:1] == ("training",):
            field = TRAINING_WORDS.get(location[1], location[1]) if len(location) > 1 else "training"
            return ("story" if location[1:2] == ("story",) else "training"), field
        return "general", " ".join(location).replace("_", " ")

    def fit(self) -> None:
        """Fit widgets to their values before problems are shown (nothing by default)."""

    def alerts(self) -> dict[str, pn.pane.Alert]:
        """Where each kind of problem is shown, by `where`; 'general' is added by the base."""
        return {}

    def controls(self) -> list:
        """The family's widgets, above the build button."""
        return []

    def phase_task(self) -> dict:
        """Task settings every training phase carries (none by default)."""
        return {}

    def built(self, model: FamilyModel) -> str:
        """The success line after a build."""
        parameters = sum(p.numel() for p in model.model.parameters())
        return (f"Model built on {model.batches.device}: embeddings {', '.join(model.latent_names)}; "
                f"{parameters:,} parameters to learn.")

    def training_options(self) -> dict:
        """Keyword arguments for `model.trainer`, from the shared training options."""
        return self.training.options()

    def training_data(self) -> dict:
        """The configuration's training settings: the shared options over the family's own
        training defaults (a flow's held-out cells and early stopping, SysVI's batch size)."""
        defaults = family_class(self.family).config_class.model_fields["training"].default_factory()
        return defaults.model_dump(mode="json") | self.training_options()

    # -- validation --------------------------------------------------------------------------
    def problems(self) -> list[Problem]:
        """Every problem: the builder's own checks, then the engine's with their locations."""
        found = self.checks()
        config_class = family_class(self.family).config_class
        for problem in config_problems(config_class, self.config_data()):
            where, prefix = self.place(problem.location)
            text = f"{prefix}: {problem.message}" if prefix else problem.message
            found.append(Problem(where, "danger", text, str(problem), problem))
        return found

    def config(self):
        """The validated configuration, or engine.InputError with one line per problem (and each
        problem, with its location, in `.problems`)."""
        errors = [p for p in self.problems() if p.level == "danger"]
        if errors:
            lines = [f"{SETTINGS}: {len(errors)} problem(s)", *(f"  - {p.line}" for p in errors)]
            located = [p.found or ConfigProblem(tuple(p.where.split(".")), p.text) for p in errors]
            raise InputError("\n".join(lines), problems=located)
        return family_class(self.family).config_class.model_validate(self.config_data())

    @contextmanager
    def _batch(self):
        """Set many widgets, validate once at the end."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
            self._refresh()

    def refresh(self) -> None:
        """Validate again and show each problem beside its control (and in the training options)."""
        self._refresh()

    def _on_training(self, _) -> None:
        if self.training.family is None or self.training.family() is self:  # only the family shown
            self._refresh()

    def _refresh(self, *_) -> None:
        """Validate and put each problem beside its control."""
        if self._holding:
            return
        self._holding += 1  # fit() may set widgets; their watchers must not re-enter
        try:
            self.fit()
            self.training.fit()
            found = self.problems()
            if any(p.level == "danger" and p.where in self.training.alerts for p in found):
                found.append(Problem("general", "danger", SEE_TRAINING))
            panes = self.alerts() | self.training.alerts | {"general": self._general}
            for where, pane in panes.items():
                here = [p for p in found if p.where == where]
                if here:
                    say(pane, "danger" if any(p.level == "danger" for p in here) else "warning", *(p.text for p in here))
                else:
                    pane.visible = False
            with param.edit_constant(self):
                self.valid = not any(p.level == "danger" for p in found)
            self._build_button.disabled = not self.valid
        finally:
            self._holding -= 1

    # -- building ----------------------------------------------------------------------------
    def build(self) -> FamilyModel:
        """Build the family's model for `state.adata` and store it in `state.model`.

        On failure the reason is shown in the page, `state` is left as it was, and
        engine.InputError is raised.
        """
        try:
            model, caught = self._construct(self.state.adata, self._checked_config())
        except (ValueError, RuntimeError) as error:  # InputError is a ValueError; RuntimeError covers the device
            failure = self._failed(error)
            if failure is error:
                raise
            raise failure from error
        return self._built(model, caught)

    build_model = build

    async def _on_build(self, _) -> None:
        """Build from the button: the model is made in a worker thread (moving cells to the device
        takes a while on large data), so the page and other users go on meanwhile."""
        self._build_button.loading = True
        adata = self.state.adata
        try:
            model, caught = await asyncio.to_thread(self._construct, adata, self._checked_config())
        except (ValueError, RuntimeError) as error:
            self._failed(error)  # shown beside the button
            return
        finally:
            self._build_button.loading = False
        if self.state.adata is adata:  # other cells were loaded meanwhile: this model is not theirs
            self._built(model, caught)

    def _checked_config(self):
        if self.state.adata is None:
            raise InputError("no cells are loaded: load data before building a model")
        return self.config()

    def _construct(self, adata, config) -> tuple[FamilyModel, list]:
        """The model and the warnings its construction raised (shown with the success line)."""
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = family_class(self.family)(adata, config=config, device="auto")
        return model, caught

    def _failed(self, error: Exception) -> InputError:
        self._next.visible = False
        say(self._status, "danger", "The model was not built.", str(error))
        return error if isinstance(error, InputError) else InputError(str(error))

    def _built(self, model: FamilyModel, caught: list) -> FamilyModel:
        self.state.model = model
        say(self._status, "success", self.built(model), *(str(w.message) for w in caught))
        say(self._next, "info", NEXT_AFTER_BUILD)
        return model

    def __panel__(self):
        return pn.Column(*self.controls(), pn.Row(self._build_button, self._general, sizing_mode="stretch_width"),
                         self._status, self._next, sizing_mode="stretch_width",
                         css_classes=[f"hanami-builder-{self.family}"])
