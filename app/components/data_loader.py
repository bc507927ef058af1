"""The data area: bring cells into the session (upload, server file, demo), preprocess them, summarise them.

Every way in ends in ``engine.read``, so one code path validates every file, and every action
either replaces the session's cells with ``state.load`` or leaves them exactly as they were and
says why in the page. The message always says what is loaded afterwards, even when a view that
follows the cells failed while showing new ones.
"""
from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import panel as pn
import param
from anndata import AnnData

import engine
from app.components.data_summary import DataSummary
from app.components.server_picker import ServerPicker
from app.data_kind import rna_counts_where
from app.demo import (
    CYTOMETRY_NEXT, CYTOMETRY_NOTE, CYTOMETRY_TITLE, DEMO_NEXT, DEMO_NOTE, DEMO_TITLE, SYSTEMS_NEXT, SYSTEMS_NOTE,
    SYSTEMS_TITLE, cytometry_demo, load_demo, systems_demo,
)
from app.escape import html_text, markdown_text
from app.settings import BYTES_PER_MB, DATA_ROOT_VAR, MAX_UPLOAD_VAR, Settings
from app.state import StudioState
from app.uploads import stored_name
from engine.data.read import confined
from engine.data.read_table import SEPARATORS

TABLE_SUFFIXES = tuple(SEPARATORS) + tuple(f"{suffix}.gz" for suffix in SEPARATORS)
PICKER_OFF = (
    f"The server file picker is off. To pick files on this server, set {DATA_ROOT_VAR} to the folder "
    "holding the data files (or make a folder named data where the studio is started), then restart the studio."
)
PREPROCESSING = {
    "keep as loaded": "none",
    "RNA counts: normalise, log-transform, mark variable genes": "rna",
    "cytometry: asinh transform": "cytometry",
}
PREPROCESSING_HELP = (
    "Keep as loaded: change nothing (for values that are already preprocessed). RNA counts: scale every cell "
    "to 10,000 counts, log-transform (log1p) and mark the highly variable genes (HVG); offered only for raw "
    "counts. Cytometry: asinh transform with a cofactor (about 5 for mass cytometry, 150 for flow)."
)
NEXT_AFTER_PREPROCESSING = "Next: open 2 · Model, choose what guides the model and press Build model."
NEXT_FOR_COUNTS = ("Next: these look like raw RNA counts: choose RNA counts below and press Apply preprocessing, "
                   "then open 2 · Model.")
NEXT_OTHERWISE = ("Next: open 2 · Model and choose what guides the model. For raw cytometry values, first "
                  "choose cytometry: asinh transform below and press Apply preprocessing.")


class DataLoader(pn.viewable.Viewer):
    """Upload, server-side picker, demo button and preprocessing above a summary of the session's cells."""

    message = param.String(default="", doc="The last error or note shown in the page.")
    error = param.Boolean(default=False, doc="Whether `message` reports a failure.")

    def __init__(self, state: StudioState, settings: Settings, **params):
        super().__init__(**params)
        self.state = state
        self.settings = settings
        self._alert = pn.pane.Alert("", alert_type="success", visible=False, sizing_mode="stretch_width")
        self._summary = DataSummary(adata=state.adata, title=state.dataset)
        state.param.watch(self._refresh_summary, ["adata", "dataset", "obs_version"])
        self._next = pn.pane.Alert("", alert_type="info", visible=False, css_classes=["hanami-next-step"],
                                   sizing_mode="stretch_width")
        self._transpose = pn.widgets.Checkbox(label="CSV/TSV rows are features (features x cells)")
        # No accepted_filetypes: FilePond matches the browser's MIME type, which .h5ad and .fcs files
        # lack, so it would refuse them; engine.read checks the extension on the server instead.
        self._dropper = pn.widgets.FileDropper(
            max_file_size=_size_text(settings.max_upload_mb),
            multiple=False,
            sizing_mode="stretch_width",
        )
        self._dropper.param.watch(self._on_upload, "value")
        self._picker = None if settings.data_root is None else ServerPicker(settings.data_root)
        self._load_picked = pn.widgets.Button(label="Load selected file", color="primary")
        self._load_picked.on_click(lambda _: self._on_pick())
        self._demo = pn.widgets.Button(label="Load built-in demo", description=DEMO_NOTE)
        self._demo.on_click(lambda _: self.load_demo())
        self._cytometry = pn.widgets.Button(label="Load generated cytometry cells", description=CYTOMETRY_NOTE,
                                            css_classes=["hanami-cytometry-demo"])
        self._cytometry.on_click(lambda _: self.load_cytometry_demo())
        self._systems = pn.widgets.Button(label="Load generated cells from two systems", description=SYSTEMS_NOTE,
                                          css_classes=["hanami-systems-demo"])
        self._systems.on_click(lambda _: self.load_systems_demo())
        self._kind = pn.widgets.RadioButtonGroup(options=PREPROCESSING, value="none", color="light",
                                                 description=PREPROCESSING_HELP, css_classes=["hanami-preprocess-kind"])
        kind = self._kind.param.value.rx()
        self._n_top_genes = pn.widgets.IntInput(
            label="variable genes to mark", value=2000, start=1, width=180, visible=kind == "rna",
            description="How many of the genes that vary most between cells are marked as highly variable "
                        "(HVG); every gene stays in the data.",
        )
        self._cofactor = pn.widgets.FloatInput(
            label="asinh cofactor", value=5.0, start=0.001, width=180, visible=kind == "cytometry",
            description="Values are divided by it before the asinh: about 5 for mass cytometry, 150 for flow.",
        )
        self._apply = pn.widgets.Button(label="Apply preprocessing", color="primary",
                                        description="Preprocess a copy of the loaded cells and load that copy.")
        self._apply.on_click(lambda _: self._on_apply())
        self._preprocess_note = pn.pane.HTML("", margin=(0, 10), styles={"color": "#666"}, visible=False,
                                             css_classes=["hanami-preprocess-note"], sizing_mode="stretch_width")
        state.param.watch(lambda _: self._fit_preprocessing(), "adata")
        self._fit_preprocessing()
        if state.dataset == DEMO_TITLE:  # a page that opens on the demo says what to do with it
            self._say_next(DEMO_NEXT)

    # -- public actions ----------------------------------------------------------------------
    def load_bytes(self, filename: str, data: bytes, transpose: bool = False) -> bool:
        """Read uploaded bytes as the file they came from; the server checks the size limit too."""
        if len(data) > self.settings.max_upload_bytes:
            root = self.settings.data_root
            elsewhere = "" if root is None else f", or put the file under the server's data folder ({root}) and pick it there"
            self._show(
                f"{filename} is {_megabytes(len(data))} MB, over the upload limit of "
                f"{self.settings.max_upload_mb:g} MB. Ask the administrator to raise {MAX_UPLOAD_VAR}{elsewhere}.",
                "danger",
            )
            return False
        with tempfile.TemporaryDirectory(prefix="hanami-upload-") as folder:
            path = Path(folder) / stored_name(filename)
            try:
                path.write_bytes(data)
            except OSError as err:
                self._show(f"{filename} could not be stored on the server to be read ({err.strerror}); "
                           f"{self._kept()} Ask the administrator to free disk space.", "danger")
                return False
            return self._read_into_state(
                lambda: engine.read(path, transpose=transpose), filename, hide=(str(path), filename)
            )

    def load_path(self, path: str | Path, transpose: bool = False) -> bool:
        """Read a file or 10x folder on the server, refusing anything outside the data root.

        The root is checked by real paths for the path and, in engine.read, for every file read.
        """
        root = self.settings.data_root
        if root is None:
            self._show(PICKER_OFF, "danger")
            return False
        try:
            target = confined(root / path, root)  # an absolute `path` replaces root; `..` and links are followed
        except engine.InputError as err:
            self._show(f"{err} Ask the administrator to set {DATA_ROOT_VAR} to serve another folder.", "danger")
            return False
        name = str(target.relative_to(root.resolve()))
        return self._read_into_state(lambda: engine.read(target, transpose=transpose, root=root), name)

    def load_demo(self) -> bool:
        return self._read_into_state(load_demo, DEMO_TITLE, next_step=DEMO_NEXT)

    def load_cytometry_demo(self) -> bool:
        """Cells generated from the example knowledge table, to try the Populations kind of model."""
        return self._read_into_state(cytometry_demo, CYTOMETRY_TITLE, next_step=CYTOMETRY_NEXT)

    def load_systems_demo(self) -> bool:
        """RNA cells generated from two systems, to try integrating cells across systems."""
        return self._read_into_state(systems_demo, SYSTEMS_TITLE, next_step=SYSTEMS_NEXT)

    def preprocess(self, kind: str, **options) -> bool:
        """Preprocess a copy of the cells (``rna`` or ``cytometry``, options passed on); ``none`` keeps them."""
        if self.state.adata is None:
            self._show("Load cells before preprocessing them.", "danger")
            return False
        if kind == "none":
            self._show("Nothing changed: the cells are kept as loaded.", "success")
            self._say_next(NEXT_AFTER_PREPROCESSING)
            return True
        steps = {"rna": engine.preprocess.rna, "cytometry": engine.preprocess.cytometry}
        if kind not in steps:
            self._show(f"Unknown preprocessing {kind}; choose one of none, {', '.join(steps)}.", "danger")
            return False
        adata = self.state.adata
        return self._read_into_state(
            lambda: steps[kind](adata, copy=True, **options),
            f"{self.state.dataset} (preprocessed)",
            failure=f"Preprocessing ({kind}) failed: ",
            next_step=NEXT_AFTER_PREPROCESSING,
        )

    # -- widget callbacks --------------------------------------------------------------------
    def _on_upload(self, event: param.parameterized.Event) -> None:
        for filename in list(event.new):
            data = self._dropper.value.pop(filename)  # the session keeps the cells, not a second copy of the file
            if isinstance(data, str):  # FileDropper decodes text/* uploads; the reader wants the bytes back
                data = data.encode("utf-8")
            self.load_bytes(filename, data, transpose=self._transpose.value and _is_table(filename))

    def _on_pick(self) -> None:
        picked = self._picker.selected
        if len(picked) != 1:
            self._show(f"Select one file or 10x folder in the file browser ({len(picked)} selected).", "danger")
            return
        self.load_path(picked[0], transpose=self._transpose.value and _is_table(picked[0]))

    def _on_apply(self) -> None:
        options = {"rna": {"n_top_genes": self._n_top_genes.value}, "cytometry": {"cofactor": self._cofactor.value}}
        self.preprocess(self._kind.value, **options.get(self._kind.value, {}))

    def _fit_preprocessing(self) -> None:
        """Offer RNA counts preprocessing only for raw counts (in X or a counts layer); say why not."""
        where, why = rna_counts_where(self.state.adata)
        options = dict(PREPROCESSING) if where is not None or self.state.adata is None else {
            label: kind for label, kind in PREPROCESSING.items() if kind != "rna"}
        if self._kind.value not in options.values():
            self._kind.value = "none"
        if self._kind.options != options:
            self._kind.options = options
        if self.state.adata is None or where == "X":
            note = ""
        elif where is None:
            note = why
        else:
            note = "RNA counts preprocessing reads the counts layer (the raw counts kept beside the values shown)."
        self._preprocess_note.param.update(object=f"<small>{html_text(note)}</small>", visible=bool(note))

    def _next_after_load(self) -> str:
        where, _ = rna_counts_where(self.state.adata)
        return NEXT_FOR_COUNTS if where is not None else NEXT_OTHERWISE

    def _say_next(self, text: str) -> None:
        """The next-step line (plain text: it may quote the user's names)."""
        self._next.param.update(object=markdown_text(text), visible=bool(text))

    def _refresh_summary(self, *_events) -> None:
        self._summary.title = self.state.dataset
        if self._summary.adata is self.state.adata:
            self._summary.refresh_annotations()  # obs changed in place
        else:
            self._summary.adata = self.state.adata

    # -- helpers -----------------------------------------------------------------------------
    def _read_into_state(self, make: Callable[[], AnnData], name: str, *, hide: tuple[str, str] | None = None,
                         failure: str = "", next_step: str | None = None) -> bool:
        """Run `make`; load its result as `name`, or show why it failed and what is loaded now.

        `hide` replaces a temporary path in messages with the name the user knows the file by;
        `failure` says which action failed; `next_step` is the line shown after a success (by default
        one that fits the cells loaded). Warnings meant for the user (plain UserWarning, as
        the engine raises them) are shown with the success message. A view that fails while
        following `state.load` leaves the new cells loaded, and the message says so.
        """
        cells, dataset = self.state.adata, self.state.dataset
        self._say_next("")
        self._show(f"Loading {name} …", "info")  # the last message must not outlive the cells it spoke of
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UserWarning)
            try:
                adata = make()
                self.state.load(adata, name)
            except Exception as err:  # the page's boundary: any failure is reported with what is loaded now
                reason = str(err) if isinstance(err, engine.InputError) else f"{name}: {type(err).__name__}: {err}"
                reason = failure + (reason.replace(*hide) if hide else reason)
                reason += "" if reason.endswith(".") else "."
                if self.state.adata is cells and self.state.dataset == dataset:
                    self._show(f"{reason} {self._kept()}".strip(), "danger")
                else:
                    self._show(f"{self._loaded()}, but the page could not show them fully: {reason} "
                               "Some views may lag behind; load the cells again to redraw them.", "danger")
                return False
        notes = [str(w.message) for w in caught if w.category is UserWarning]
        self._show(" ".join([f"{self._loaded()}.", *notes]), "warning" if notes else "success")
        self._say_next(self._next_after_load() if next_step is None else next_step)
        return True

    def _loaded(self) -> str:
        adata = self.state.adata
        return f"Loaded {self.state.dataset}: {adata.n_obs:,} cells x {adata.n_vars:,} features"

    def _kept(self) -> str:
        return f"{self.state.dataset} is still loaded, unchanged." if self.state.adata is not None else ""

    def _show(self, text: str, level: str) -> None:
        """Show `text` as plain text: file, column and gene names in it are the user's, never markup."""
        self.error = level == "danger"
        self.message = text
        self._alert.param.update(object=markdown_text(text), alert_type=level, visible=bool(text))

    def __panel__(self):
        upload = pn.Column(
            "#### Upload a file",
            pn.pane.Markdown(
                f".h5ad, 10x .h5, .csv/.tsv (also .gz) or .fcs, up to {self.settings.max_upload_mb:g} MB",
                styles={"color": "#666"},
            ),
            self._dropper,
            self._transpose,
            "#### Or start from the demo",
            self._demo,
            pn.pane.HTML(f"<small>{html_text(DEMO_NOTE)}</small>", styles={"color": "#666"},
                         css_classes=["hanami-demo-note"], sizing_mode="stretch_width"),
            self._cytometry,
            pn.pane.HTML(f"<small>{html_text(CYTOMETRY_NOTE)}</small>", styles={"color": "#666"},
                         css_classes=["hanami-cytometry-note"], sizing_mode="stretch_width"),
            self._systems,
            pn.pane.HTML(f"<small>{html_text(SYSTEMS_NOTE)}</small>", styles={"color": "#666"},
                         css_classes=["hanami-systems-note"], sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )
        if self._picker is None:
            picker = [pn.pane.Markdown(markdown_text(PICKER_OFF), styles={"color": "#666"})]
        else:
            picker = [self._picker, self._load_picked]
        server = pn.Column("#### Or pick a file on the server", *picker, sizing_mode="stretch_width")
        preprocessing = pn.Column(
            "#### Preprocess the loaded cells",
            pn.pane.HTML(f"<small>{html_text(PREPROCESSING_HELP)}</small>", styles={"color": "#666"},
                         css_classes=["hanami-preprocess-help"], sizing_mode="stretch_width"),
            self._kind,
            self._preprocess_note,
            pn.Row(self._n_top_genes, self._cofactor, pn.Column(self._apply, align="end")),
            sizing_mode="stretch_width",
        )
        return pn.Column(
            pn.Card(
                pn.Row(upload, server, sizing_mode="stretch_width"),
                preprocessing,
                title="Load cells",
                collapsible=False,
                sizing_mode="stretch_width",
            ),
            self._alert,
            self._next,
            self._summary,
            sizing_mode="stretch_width",
        )


def _is_table(name: str | Path) -> bool:
    return str(name).lower().endswith(TABLE_SUFFIXES)


def _megabytes(n_bytes: int) -> str:
    megabytes = n_bytes / BYTES_PER_MB
    return f"{megabytes:,.0f}" if megabytes >= 10 else f"{megabytes:.3g}"


def _size_text(megabytes: float) -> str:
    """The limit as the upload widget wants it ("500MB", or kilobytes below one megabyte)."""
    return f"{megabytes:g}MB" if megabytes >= 1 and float(megabytes).is_integer() else f"{round(megabytes * 1000)}KB"
