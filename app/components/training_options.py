"""How a model trains, the same view for every family: epochs, batch size, learning rate, story,
and bf16 arithmetic.

The Train tab shows it; the training monitor takes `options()` (the keyword arguments of
`model.trainer`) at Start. A family adds to the story through its builder's hooks: the task
settings of every phase (`phase_task()`) and, where it has one, a warm-up phase (`warmup_task`,
named by `warmup_label`). Problems the family's configuration finds in these settings are shown
here, beside their controls.
"""
from __future__ import annotations

from collections.abc import Callable

import panel as pn
import param

from app.builders.widgets import alert

FROM_START = "everything from the start"
HELP = "How long and how fast the built model learns; Start below begins the run."
ORDER_HELP = ("Order of training (in ML terms, the training story): learn everything at once, or first learn "
              "to reproduce expression alone for a few epochs and then add what you switched on in 2 · Model.")
BF16_HELP = ("Faster arithmetic: the large matrix products in 16-bit numbers (bf16). On a processor that computes "
             "bf16 itself (recent Intel Xeon and AMD EPYC) integration over 2,000 genes trained about 1.5x as fast; "
             "GPUs compute bf16 too. Slower on other processors and for small models. Results differ slightly from "
             "a run without it.")


class TrainingOptions(pn.viewable.Viewer):
    """The shared training settings; `family` gives the story's family-specific tasks."""

    changed = param.Event(doc="Fires when any setting changes.")

    def __init__(self, family: Callable[[], object] | None = None, **params):
        super().__init__(**params)
        self.family = family  # returns the chosen family's builder (its story hooks), or None

        def widget(cls, css, **kw):
            made = cls(css_classes=[f"hanami-model-{css}"], **kw)
            made.param.watch(lambda _: self.param.trigger("changed"), "value")
            return made

        self._epochs = widget(pn.widgets.IntInput, "epochs", label="epochs", value=30, start=1, width=110,
                              description="How many times training goes through every cell (epochs).")
        self._batch_size = widget(pn.widgets.IntInput, "batch-size", label="cells per step", value=256, start=2,
                                  step=64, width=110,
                                  description="How many cells each learning step looks at (batch size).")
        self._lr = widget(pn.widgets.FloatInput, "lr", label="learning rate", value=1e-3, start=1e-7, step=1e-4,
                          format="0.[00000]", width=130,
                          description="How big each learning step is; lower it if the curves jump up and down.")
        self._bf16 = widget(pn.widgets.Checkbox, "bf16", name="faster arithmetic (bf16)", value=False)
        self._story_choice = widget(pn.widgets.RadioBoxGroup, "story", label="order of training",
                                    options=[FROM_START], value=FROM_START, inline=True)
        self._warmup = widget(pn.widgets.IntInput, "warmup", label="warm-up epochs", value=5, start=1, width=220,
                              description="Epochs of the first phase, before the rest is added (warm-up).")
        self.alerts = {key: alert(f"hanami-model-{key}-problem") for key in ("training", "story")}
        self.fit()

    def _builder(self):
        return self.family() if self.family is not None else None

    @property
    def warming_up(self) -> bool:
        return self._story_choice.value != FROM_START

    @property
    def epochs(self) -> int:
        return self._epochs.value

    @property
    def warmup_epochs(self) -> int:
        return self._warmup.value

    def fit(self) -> None:
        """Offer the family's warm-up phase, if it has one; show its length only when chosen."""
        builder = self._builder()
        label = getattr(builder, "warmup_label", "") if builder is not None else ""
        options = [FROM_START, label] if label else [FROM_START]
        if self._story_choice.options != options:
            if self._story_choice.value not in options:
                self._story_choice.value = FROM_START
            self._story_choice.options = options
        if label:
            self._warmup.label = getattr(builder, "warmup_length_label", "") or \
                f"{label.split(',')[0].removesuffix(' first')}-only epochs"
        self._warmup.visible = self.warming_up

    def story(self) -> dict | None:
        """The phases: one, or the family's warm-up then the rest; each with the family's task settings."""
        builder = self._builder()
        task = builder.phase_task() if builder is not None else {}
        epochs = self._epochs.value
        if not self.warming_up or builder is None or builder.warmup_task is None:
            return {"phases": [{"name": "train", "epochs": epochs, "tasks": [task]}]} if task else None
        warmup = min(self._warmup.value, epochs)
        phases = [{"name": builder.warmup_name, "epochs": warmup, "tasks": [{**builder.warmup_task, **task}]}]
        if epochs > warmup:
            phases.append({"name": "heads", "epochs": epochs - warmup, "tasks": [task]})
        return {"phases": phases}

    def take_defaults(self, training) -> None:
        """Show a family's own defaults (a `TrainingConfig`): a flow trains on large batches, an
        autoencoder on small ones."""
        self._epochs.value, self._batch_size.value, self._lr.value = training.max_epochs, training.batch_size, training.lr
        self._bf16.value = training.bf16

    def options(self) -> dict:
        """Keyword arguments for `model.trainer`: max_epochs, batch_size, lr, bf16, story."""
        return {"max_epochs": self._epochs.value, "batch_size": self._batch_size.value, "lr": self._lr.value,
                "bf16": self._bf16.value, "story": self.story()}

    def __panel__(self):
        return pn.Card(
            pn.pane.HTML(f"<small>{HELP}</small>", margin=(0, 5)),
            pn.Row(self._epochs, self._batch_size, self._lr), self.alerts["training"],
            self._bf16, pn.pane.HTML(f"<small>{BF16_HELP}</small>", margin=(0, 10), css_classes=["hanami-bf16-help"]),
            pn.Row(pn.Column(pn.pane.HTML("order of training", margin=(5, 10, 0, 10)), self._story_choice),
                   self._warmup),
            pn.pane.HTML(f"<small>{ORDER_HELP}</small>", margin=(0, 10), css_classes=["hanami-story-help"]),
            self.alerts["story"],
            title="Training options", collapsible=True, sizing_mode="stretch_width", margin=(5, 0),
            css_classes=["hanami-training-options"],
        )
