"""Driving the studio page from Playwright: shared by the browser tests and bench/click_latency.py."""
import re
import time

from playwright.sync_api import Page, expect

# How long a test waits for the page to show the result of a click. Only a hang reaches it on a
# loaded 2-core CI machine; how fast clicks are answered is measured by bench/studio_latency.py.
UPDATE_WAIT_MS = 60_000
# Loading a page or building a model on a machine whose cores are all busy: only a hang reaches it.
SLOW_WAIT_MS = 120_000
LOSS_POINTS = """() => {
  let n = 0;
  for (const doc of window.Bokeh.documents)
    for (const model of doc.all_models)
      if (model.name && model.name.startsWith('loss:')) n += model.data.step.length;
  return n;
}"""
# Records, in the page, how many loss points it holds at the moment its run-state line first
# contains a word (the count is taken as the browser applies that change, whatever the timing).
RECORD_POINTS_AT_STATE = """(word) => {
  window.hanamiPointsAtState = null;
  for (const doc of window.Bokeh.documents)
    for (const model of doc.all_models)
      if (model.css_classes && model.css_classes.includes('hanami-run-state'))
        model.property('text').change.connect(() => {
          if (window.hanamiPointsAtState === null && String(model.text).includes(word))
            window.hanamiPointsAtState = (%s)();
        });
}""" % LOSS_POINTS


# Bokeh's document is idle once every view has painted; only then does the page tell the server it
# is ready. A view that never paints keeps the server's HoloViews plots re-scheduling themselves.
PAGE_READY = "() => window.Bokeh && Bokeh.documents.length > 0 && Bokeh.documents.every(doc => doc.is_idle)"


def open_studio(page: Page, url: str) -> None:
    """Open the page on the demo and wait until every view on it has rendered."""
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(url, timeout=SLOW_WAIT_MS)
    expect(page.get_by_text("700 cells × 765 genes")).to_be_visible(timeout=SLOW_WAIT_MS)
    page.wait_for_function(PAGE_READY, timeout=SLOW_WAIT_MS)


def tab(page: Page, name: str) -> None:
    """Open a tab; it is rendered when first opened, so callers wait for what they need in it."""
    page.get_by_text(name, exact=True).click()


def build_and_start(page: Page, epochs: int = 5000) -> None:
    """Switch the bulk_labels head on, build the model, set the epochs and press Start."""
    tab(page, "2 · Model")
    page.locator(".hanami-pheno-bulk_labels-on").click()
    page.locator(".hanami-build-model button").click()
    expect(page.locator(".hanami-build-status")).to_contain_text("Model built", timeout=SLOW_WAIT_MS)
    tab(page, "3 · Train")
    epochs_box = page.locator(".hanami-model-epochs input")  # the training options are in the Train tab
    epochs_box.fill(str(epochs))
    epochs_box.press("Enter")
    page.locator(".hanami-start button").click()


def run_id(page: Page) -> str:
    """The id of the run the page follows (the first bold word of its state line)."""
    return page.locator(".hanami-run-state strong").first.inner_text()


def loss_points(page: Page) -> int:
    return page.evaluate(LOSS_POINTS)


def record_points_at_state(page: Page, word: str) -> None:
    page.evaluate(RECORD_POINTS_AT_STATE, word)


def points_at_state(page: Page) -> int | None:
    """The loss points the page held when the recorded state word first appeared (None: not yet)."""
    return page.evaluate("() => window.hanamiPointsAtState")


def wait_for_points(page: Page, more_than: int, timeout_s: float = 120) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        points = loss_points(page)
        if points > more_than:
            return points
        page.wait_for_timeout(200)
    raise AssertionError(f"the loss plot did not grow past {more_than} points in {timeout_s} s")


def drag_box(page: Page, canvas, start=(0.15, 0.1), end=(0.6, 0.85)) -> None:
    """Draw a box with Bokeh's box-select tool, corners given as fractions of the canvas."""
    page.locator(".bk-tool-icon-box-select >> visible=true").first.click()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * start[0], box["y"] + box["height"] * start[1])
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end[0], box["y"] + box["height"] * end[1], steps=10)
    page.mouse.up()


def stop_run(page: Page) -> None:
    """Press Stop if this page's run is still going, so a failed test does not hold the device."""
    shown = " ".join(page.locator(".hanami-run-state strong").all_text_contents())
    if any(word in shown for word in ("running", "paused", "queued")):
        page.locator(".hanami-stop button").click()


def train_to_end(page: Page, settings: dict[str, int], next_tab: str) -> None:
    """In 3 · Train, type the settings (css name -> value), start, wait for the run's end, and
    check that the next step points to `next_tab`."""
    tab(page, "3 · Train")
    for css, value in settings.items():
        box = page.locator(f".hanami-model-{css} input")
        box.fill(str(value))
        box.press("Enter")
    page.locator(".hanami-start button").click()
    try:
        expect(page.locator(".hanami-run-state")).to_contain_text(re.compile("finished|stopped early"),
                                                                  timeout=SLOW_WAIT_MS)
    finally:
        stop_run(page)
    expect(page.locator(".hanami-next-step", has_text=next_tab)).to_be_visible()
