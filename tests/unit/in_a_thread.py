"""Running what a click starts to its end in a unit test, whatever event loop the test process holds."""
from concurrent.futures import ThreadPoolExecutor


def in_a_thread(action):
    """Call `action` in a thread of its own, where no event loop runs, so that Panel runs the async
    callbacks it triggers to their end there. (After the browser tests, Playwright's loop counts as
    running in the main thread, where an async callback would only be scheduled.)"""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(action).result()
