"""How long the served studio takes to show its first content and to answer each click, in Chromium.

Serves the studio with `panel serve` (700 cells: `panel serve app` on the built-in demo, as users
do; more: bench/studio_cells_app.py on generated cells), opens it in headless Chromium and times,
from the request or the click to the visible result:

    load     page.goto until the dataset headline "N cells × M genes" is visible (fresh pages)
    switch   the Explore tab's embedding Select, X_pca <-> X_umap; the status line names the new
             embedding and every Bokeh view on the page has finished drawing
    gene     a gene typed into the gene box (Enter); the status line says coloured by that gene
    umap     the UMAP mode on X_pca, in a freshly reloaded page each time (a real computation); the
             status line says "UMAP of ..." (700 only; the "before" run used X_pca, X_umap and the
             UMAPs it had just made, as the old page also laid out 2-D layouts again)
    box      a drag with Bokeh's box-select tool (timed from the mouse-up); the selection note changes
    label    Add label; the success message "Labelled ..." names the new label
    compare  Compare A vs B (after two fresh disjoint boxes); the results table appears or changes
    export   the .h5ad download of the Export tab; the browser's download has completed. Above
             100,000 cells: "Save .h5ad on this computer" until the page names the saved file
             (the page refuses downloads its connection cannot carry)
    stop     Stop on a running run (model built on the Model tab, Start on the Train tab); "stopped"

Each wait has a generous bound (WAIT_S): a slow action is recorded as slow; one that fails is
recorded with its reason, the page is reopened and the bench goes on. The machine's load average
is sampled after each measurement and reported beside each action's figures.

    .venv/bin/python bench/studio_latency.py [--cells 700 --cells 1000000] [--repeats 5]
        [--only ACTION ...] [--label before|after]

Every way the bench finds something in the page is in LOCATORS and TEXTS below: when the app's
labels or CSS classes change, only that section changes.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
import traceback
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "tests" / "ui"))
from results_file import save  # noqa: E402
from serving import panel_served  # noqa: E402

# ----- the page, as the bench finds it: change only this section when the app changes ----------
# Playwright selectors (css, text="exact", text=/regex/, role=...). {column} and {key} are filled in.
LOCATORS = {
    "headline": ".hanami-headline",                              # Data tab: "N cells × M genes"
    "tab_model": 'text="2 · Model"',
    "tab_train": 'text="3 · Train"',
    "tab_explore": 'text="4 · Explore"',
    "tab_export": 'text="5 · Export"',
    "embedding_select": ".hanami-embedding-key select",          # Explore: Embedding (obsm)
    "embedding_options": ".hanami-embedding-key select option",
    "mode_dimensions": 'role=button[name="Dimensions"]',         # Explore: view mode buttons
    "mode_umap": 'role=button[name="UMAP"]',
    "color_gene": 'role=button[name="Gene"]',                    # Explore: colour kind buttons
    "gene_input": ".hanami-color-gene input",
    "status": "text=/ cells · .+ · coloured by /",               # Explore: the line above the plot
    "plot_canvas": ".bk-Canvas >> visible=true",                 # Explore: the first visible canvas
    "box_select_tool": ".bk-tool-icon-box-select >> visible=true",
    "selection_note": ".hanami-selection-note",
    "label_name": 'input[placeholder="e.g. activated T cells"]',
    "add_label": 'role=button[name="Add label"]',
    "label_done": "text=/Labelled [\\d,]+ cells/",
    "compare": 'role=button[name="Compare A vs B"]',
    "results_table": '.tabulator:has-text("log2 fold change") >> visible=true',
    "export_h5ad": 'text="AnnData (.h5ad)"',
    "save_h5ad": ".hanami-save-h5ad button",                    # Export: cells too large for a download
    "export_saved": "text=/Saved cells-/",
    "pheno_on": ".hanami-pheno-{column}-on",                     # Model: the head's switch
    "build_model": ".hanami-build-model button",
    "build_status": ".hanami-build-status",
    "epochs": ".hanami-model-epochs input",                      # Train: training options
    "start": ".hanami-start button",
    "stop": ".hanami-stop button",
    "run_state": ".hanami-run-state",
}
# Text the bench waits for in those places (regular expressions; {key}/{gene}/{name} are filled in).
TEXTS = {
    "headline": r"[\d,]+ cells × [\d,]+ genes",
    "status_view": r" {key} dimensions \d+ and \d+ · ",
    "status_umap": r" UMAP of {key} · ",
    "status_gene": r"coloured by gene {gene}(\s|$)",
    "label_done": r'Labelled [\d,]+ cells "{name}"',
    "fold_change": "log2 fold change",
    "model_built": "Model built",
    "running": "running",
    "stopped": "stopped",
}
# Every Bokeh document idle and every view shown on screen drawn, with no loading spinner (views in
# hidden tabs never draw, so a layout counts its own drawing, not that of its children).
VIEWS_IDLE = """() => {
  if (!window.Bokeh || Bokeh.documents.length === 0 || !Bokeh.documents.every(doc => doc.is_idle)) return false;
  for (const view of Bokeh.index.all_views()) {
    const el = view.el;
    if (!(el instanceof Element) || !el.isConnected || el.getClientRects().length === 0) continue;
    if (el.classList.contains('pn-loading')) return false;
    if (!('child_views' in view ? view._has_finished : view.has_finished())) return false;
  }
  return true;
}"""
# -------------------------------------------------------------------------------------------------

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]
WAIT_S = float(os.environ.get("HANAMI_BENCH_WAIT_S", 300))  # upper bound of any wait: only a hang reaches it
# export last: at 1,000,000 cells the old page sends the whole .h5ad through the websocket, which can
# take Playwright's driver down with it (a failure recorded as such; the other figures are kept).
ACTIONS = ("load", "switch", "gene", "umap", "box", "label", "compare", "stop", "export")
UMAP_MAX_CELLS = 700
EMBEDDINGS = ("X_pca", "X_umap")
GENES = {700: ["CD79A", "NKG7", "GNLY", "LYZ", "HLA-DRA"]}  # the demo's; generated: gene1, gene12, ...
# Boxes as fractions of the canvas, inside the plot's frame (the canvas also holds the axes on the
# left and bottom and the toolbar on the right); each repeat draws a different one.
BOXES = [((0.15, 0.08), (0.55, 0.80)), ((0.45, 0.10), (0.90, 0.85)), ((0.12, 0.40), (0.70, 0.85)),
         ((0.30, 0.05), (0.92, 0.60)), ((0.20, 0.20), (0.85, 0.80)), ((0.12, 0.05), (0.40, 0.85))]


class ActionFailed(Exception):
    pass


def loc(page: Page, name: str, **fill):
    return page.locator(LOCATORS[name].format(**fill))


def text(which: str, **fill) -> re.Pattern:
    escaped = {k: re.escape(str(v)) for k, v in fill.items()}
    return re.compile(TEXTS[which].format(**escaped))


def ms(seconds: float) -> int:
    return round(seconds * 1000)


def wait_idle(page: Page) -> None:
    page.wait_for_function(VIEWS_IDLE, timeout=ms(WAIT_S), polling=50)


def dataset(cells: int) -> dict:
    """What to serve for this size and the names the bench uses in it."""
    if cells == 700:
        return {"target": "app", "path": "app", "env": {}, "column": "bulk_labels", "genes": GENES[700],
                "save": False}
    return {"target": BENCH / "studio_cells_app.py", "path": "studio_cells_app",
            "env": {"HANAMI_BENCH_CELLS": str(cells)}, "column": "cell_type",
            "genes": ["gene1", "gene12", "gene23", "gene34", "gene45"], "save": cells > 100_000}


def open_page(browser, url: str) -> Page:
    """A fresh browser context (no cache, no cookies) with the studio loaded and drawn."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.goto(url, timeout=ms(WAIT_S))
    expect(loc(page, "headline")).to_contain_text(text("headline"), timeout=ms(WAIT_S))
    wait_idle(page)
    return page


def close_page(page: Page | None) -> None:
    if page is not None:
        try:
            page.context.close()
        except Exception:  # an already broken page
            pass


def explore(page: Page) -> None:
    loc(page, "tab_explore").click()
    expect(loc(page, "status").first).to_be_visible(timeout=ms(WAIT_S))
    wait_idle(page)


def status_text(page: Page) -> str:
    return loc(page, "status").first.inner_text()


# ----- the actions: each yields one duration (s) per repeat -------------------------------------

def measure_load(browser, url, cfg, repeats):
    for _ in range(repeats):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        try:
            started = time.perf_counter()
            page.goto(url, timeout=ms(WAIT_S))
            expect(loc(page, "headline")).to_contain_text(text("headline"), timeout=ms(WAIT_S))
            yield time.perf_counter() - started
            wait_idle(page)  # let the session finish before the next one starts
        finally:
            context.close()


def measure_switch(page, cfg, repeats):
    explore(page)
    current = loc(page, "embedding_select").input_value()
    for i in range(repeats):
        key = EMBEDDINGS[0] if current != EMBEDDINGS[0] else EMBEDDINGS[1]
        started = time.perf_counter()
        loc(page, "embedding_select").select_option(key)
        expect(loc(page, "status").first).to_contain_text(text("status_view", key=key), timeout=ms(WAIT_S))
        wait_idle(page)
        yield time.perf_counter() - started
        current = key


def measure_gene(page, cfg, repeats):
    explore(page)
    loc(page, "color_gene").click()
    box = loc(page, "gene_input")
    expect(box).to_be_visible(timeout=ms(WAIT_S))
    for i in range(repeats):
        gene = cfg["genes"][i % len(cfg["genes"])]
        box.click()
        box.fill("")
        box.press_sequentially(gene, delay=50)  # typed: the completion menu follows the keys
        page.wait_for_timeout(300)
        started = time.perf_counter()
        page.keyboard.press("Enter")  # takes the first completion, the gene itself
        expect(loc(page, "status").first).to_contain_text(text("status_gene", gene=gene), timeout=ms(WAIT_S))
        wait_idle(page)
        yield time.perf_counter() - started


def measure_umap(page, cfg, repeats):
    """X_pca's UMAP on a freshly loaded page each time (a new session holds no cached UMAP): the
    studio offers UMAP only for embeddings that are not already 2-D layouts."""
    for i in range(repeats):
        page.reload(timeout=ms(WAIT_S))  # untimed
        expect(loc(page, "headline")).to_contain_text(text("headline"), timeout=ms(WAIT_S))
        explore(page)
        key = EMBEDDINGS[0]
        if loc(page, "embedding_select").input_value() != key:
            loc(page, "embedding_select").select_option(key)
        expect(loc(page, "status").first).to_contain_text(text("status_view", key=key), timeout=ms(WAIT_S))
        wait_idle(page)
        started = time.perf_counter()
        loc(page, "mode_umap").click()
        expect(loc(page, "status").first).to_contain_text(text("status_umap", key=key), timeout=ms(WAIT_S))
        wait_idle(page)
        yield time.perf_counter() - started


def drag(page: Page, box: tuple) -> float:
    """Draw a box with the box-select tool (activated if it is not); returns the mouse-up time."""
    tool = loc(page, "box_select_tool").first
    expect(tool).to_be_visible(timeout=ms(WAIT_S))
    # the icon sits in its tool button's shadow root; the button (the root's host) carries bk-active
    active = tool.evaluate("el => { const host = el.getRootNode().host;"
                           " return !!(host && host.classList.contains('bk-active')); }")
    if not active:
        tool.click()
    canvas = loc(page, "plot_canvas").first
    canvas.evaluate("el => el.scrollIntoView({block: 'center'})")  # a button below may have scrolled it
    bounds = canvas.bounding_box()
    (x0, y0), (x1, y1) = box
    page.mouse.move(bounds["x"] + bounds["width"] * x0, bounds["y"] + bounds["height"] * y0)
    page.mouse.down()
    page.mouse.move(bounds["x"] + bounds["width"] * x1, bounds["y"] + bounds["height"] * y1, steps=10)
    started = time.perf_counter()
    page.mouse.up()
    return started


def select(page: Page, box: tuple) -> float:
    """One box selection; the seconds from mouse-up until the selection note changed."""
    note = loc(page, "selection_note").first
    before = note.inner_text()
    started = drag(page, box)
    expect(loc(page, "selection_note").first).not_to_have_text(before, timeout=ms(WAIT_S))
    return time.perf_counter() - started


def measure_box(page, cfg, repeats):
    explore(page)
    for i in range(repeats):
        yield select(page, BOXES[i % len(BOXES)])


def measure_label(page, cfg, repeats):
    explore(page)
    if "No selection" in loc(page, "selection_note").first.inner_text():
        select(page, BOXES[0])
    for i in range(repeats):
        name = f"bench label {i + 1}"
        loc(page, "label_name").fill(name)
        loc(page, "label_name").press("Enter")  # the value is sent; the click below is what is timed
        page.wait_for_timeout(300)
        started = time.perf_counter()
        loc(page, "add_label").click()
        expect(loc(page, "label_done").first).to_contain_text(text("label_done", name=name), timeout=ms(WAIT_S))
        yield time.perf_counter() - started


def measure_compare(page, cfg, repeats):
    explore(page)
    table = loc(page, "results_table")
    previous = None
    for i in range(repeats):
        # two disjoint boxes, different each time: left then right (A then B)
        shift = 0.05 * (i % 4)
        select(page, ((0.12 + shift, 0.05), (0.50, 0.85)))
        select(page, ((0.55, 0.05), (0.92 - shift, 0.85)))
        started = time.perf_counter()
        loc(page, "compare").click()
        deadline = started + WAIT_S
        while True:
            if table.count() and table.first.is_visible():
                shown = table.first.inner_text()
                if shown != previous and TEXTS["fold_change"] in shown and len(shown.splitlines()) > 5:
                    break
            if time.perf_counter() > deadline:
                raise ActionFailed(f"no new results table {WAIT_S} s after Compare")
            page.wait_for_timeout(20)
        yield time.perf_counter() - started
        previous = shown


def measure_export(page, cfg, repeats):
    if cfg["save"]:
        yield from measure_save(page, repeats)
        return
    loc(page, "tab_export").click()
    button = loc(page, "export_h5ad")
    expect(button).to_be_visible(timeout=ms(WAIT_S))
    for i in range(repeats):
        started = time.perf_counter()
        with page.expect_download(timeout=ms(WAIT_S)) as download_info:
            button.click()
        download = download_info.value
        path = download.path()  # waits until the download has completed (raises if it failed)
        seconds = time.perf_counter() - started
        size = Path(path).stat().st_size if path else 0
        download.delete()
        if not size:
            raise ActionFailed("the download completed empty")
        yield seconds
        page.wait_for_timeout(500)


def measure_save(page, repeats):
    """Cells too large for a download through the page: "Save .h5ad on this computer", until the
    page names the saved file (each repeat a new file; the bench deletes none)."""
    loc(page, "tab_export").click()
    button = loc(page, "save_h5ad")
    expect(button).to_be_visible(timeout=ms(WAIT_S))
    saved = loc(page, "export_saved")
    for i in range(repeats):
        before = saved.first.inner_text() if saved.count() else ""
        started = time.perf_counter()
        button.click()
        expect(saved.first).to_be_visible(timeout=ms(WAIT_S))
        expect(saved.first).not_to_have_text(before, timeout=ms(WAIT_S))
        yield time.perf_counter() - started
        page.wait_for_timeout(1100)  # file names carry the second


def measure_stop(page, cfg, repeats):
    loc(page, "tab_model").click()
    loc(page, "pheno_on", column=cfg["column"]).click()
    loc(page, "build_model").click()
    expect(loc(page, "build_status")).to_contain_text(TEXTS["model_built"], timeout=ms(WAIT_S))
    loc(page, "tab_train").click()
    epochs = loc(page, "epochs")
    epochs.fill("100000")
    epochs.press("Enter")
    state = loc(page, "run_state")
    for i in range(repeats):
        loc(page, "start").click()
        expect(state).to_contain_text(TEXTS["running"], timeout=ms(WAIT_S))
        page.wait_for_timeout(1000)  # a run well under way
        loc(page, "stop").hover()
        started = time.perf_counter()
        loc(page, "stop").click()
        expect(state).to_contain_text(TEXTS["stopped"], timeout=ms(WAIT_S))
        yield time.perf_counter() - started
        page.wait_for_timeout(500)


MEASURES = {"switch": measure_switch, "gene": measure_gene, "umap": measure_umap, "box": measure_box,
            "label": measure_label, "compare": measure_compare, "export": measure_export, "stop": measure_stop}


# ----- running and reporting ----------------------------------------------------------------------

def run_action(action, measure, repeats) -> dict:
    """Collect the durations one action yields, the load average beside each, and any failure."""
    seconds, loads, error = [], [os.getloadavg()[0]], None
    began = time.perf_counter()
    try:
        for s in measure(repeats):
            seconds.append(s)
            loads.append(os.getloadavg()[0])
            print(f"  {action}: {s:.3f} s (load {loads[-1]:.2f})", flush=True)
    except Exception as err:  # recorded, and the bench goes on
        error = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:400]
        print(f"  {action} FAILED after {len(seconds)} measurement(s): {error}", flush=True)
        traceback.print_exc(limit=3)
    return {
        "action": action,
        "n": len(seconds),
        "median_s": round(statistics.median(seconds), 3) if seconds else None,
        "max_s": round(max(seconds), 3) if seconds else None,
        "in_order_s": [round(s, 3) for s in seconds],
        "load_1min_mean": round(statistics.mean(loads), 2),
        "load_1min_max": round(max(loads), 2),
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "wall_s": round(time.perf_counter() - began, 1),
        "failed": error,
    }


def run_size(playwright, cells: int, actions, repeats: int, click_repeats: int, rows: list[dict]) -> None:
    """Measure every action at this size, appending each row to `rows` as soon as it is measured."""
    cfg = dataset(cells)
    print(f"== {cells:,} cells: serving {cfg['target']}", flush=True)
    served_at = time.perf_counter()
    with panel_served(cfg["target"], cfg["path"], env=cfg["env"]) as url:
        print(f"   served in {time.perf_counter() - served_at:.1f} s at {url}", flush=True)
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = None
        try:
            for action in actions:
                if action == "umap" and cells > UMAP_MAX_CELLS:
                    continue
                n = repeats if action == "load" else click_repeats
                if action == "load":
                    row = run_action(action, lambda r: measure_load(browser, url, cfg, r), n)
                else:
                    if page is None:
                        try:
                            page = open_page(browser, url)
                        except Exception as err:
                            rows.append({"action": action, "cells": cells, "n": 0, "median_s": None,
                                         "max_s": None, "failed": f"page did not open: {err}"[:400],
                                         "load_1min_mean": round(os.getloadavg()[0], 2)})
                            continue
                    row = run_action(action, lambda r: MEASURES[action](page, cfg, r), n)
                    if row["failed"]:  # the page may be broken: the next action gets a fresh one
                        close_page(page)
                        page = None
                row["cells"] = cells
                rows.append(row)
        finally:
            close_page(page)
            try:
                browser.close()
            except Exception:  # the driver is gone already
                pass


def table(rows: list[dict]) -> str:
    head = f"{'action':<9} {'cells':>10} {'median s':>9} {'max s':>8} {'n':>3} {'load 1m':>8}  failed"
    lines = [head, "-" * len(head)]
    for r in rows:
        med = f"{r['median_s']:.3f}" if r["median_s"] is not None else "-"
        mx = f"{r['max_s']:.3f}" if r["max_s"] is not None else "-"
        lines.append(f"{r['action']:<9} {r['cells']:>10,} {med:>9} {mx:>8} {r['n']:>3} "
                     f"{r['load_1min_mean']:>8.2f}  {r.get('failed') or ''}")
    return "\n".join(lines)


def markdown(rows: list[dict]) -> str:
    lines = ["| action | cells | median (s) | max (s) | n | load (1-min avg) |", "|---|--:|--:|--:|--:|--:|"]
    for r in rows:
        med = f"{r['median_s']:.2f}" if r["median_s"] is not None else "failed"
        mx = f"{r['max_s']:.2f}" if r["max_s"] is not None else "–"
        note = f" ({r['failed'][:60]})" if r.get("failed") and r["median_s"] is not None else ""
        lines.append(f"| {r['action']}{note} | {r['cells']:,} | {med} | {mx} | {r['n']} | {r['load_1min_mean']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, action="append", help="cells to serve (repeatable; default 700 and 1,000,000)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--big-repeats", type=int, default=None,
                        help="repeats of every click above 100,000 cells (default: --repeats; loads keep --repeats)")
    parser.add_argument("--only", action="append", choices=ACTIONS, help="measure only this action (repeatable)")
    parser.add_argument("--label", default="", help="goes into the results file name, e.g. before or after")
    args = parser.parse_args()
    sizes = args.cells or [700, 1_000_000]
    actions = [a for a in ACTIONS if not args.only or a in args.only]
    # Playwright's driver sees every websocket frame; a page sending a file of hundreds of MB needs room
    os.environ.setdefault("NODE_OPTIONS", "--max-old-space-size=8192")
    began = time.perf_counter()
    rows = []
    for cells in sizes:
        few = args.big_repeats if (args.big_repeats is not None and cells > 100_000) else args.repeats
        size_rows = []
        try:
            with sync_playwright() as playwright:
                run_size(playwright, cells, actions, args.repeats, few, size_rows)
        except Exception as err:  # the driver or the browser died: keep what was measured
            print(f"  {cells:,} cells: the browser session ended: {type(err).__name__}: {err}"[:400], flush=True)
            done = {r["action"] for r in size_rows}
            size_rows += [{"action": a, "cells": cells, "n": 0, "median_s": None, "max_s": None,
                           "load_1min_mean": round(os.getloadavg()[0], 2),
                           "failed": f"not measured: the browser session ended ({type(err).__name__})"}
                          for a in actions if a not in done and not (a == "umap" and cells > UMAP_MAX_CELLS)]
        rows += size_rows
    print()
    print(table(rows))
    print()
    print(markdown(rows))
    print()
    name = "studio_latency" + (f"_{args.label}" if args.label else "")
    save(name, {"label": args.label, "repeats": args.repeats, "sizes": sizes, "cpus": os.cpu_count(),
                "wall_s": round(time.perf_counter() - began, 1), "rows": rows, "markdown": markdown(rows)})


if __name__ == "__main__":
    main()
