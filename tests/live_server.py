"""Helpers the service tests share: uvicorn running a config in a thread, and a headless Chromium page."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time

import pytest


@contextlib.contextmanager
def running(config):
    """uvicorn running `config` in a thread of this process; yields `(server, url, thread)`, then stops it."""
    import uvicorn

    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start within 20 s"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}", thread
    finally:
        server.should_exit = True
        thread.join(timeout=15)


def chromium():
    """The path of an installed Chromium (Debian's `chromium`), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@contextlib.contextmanager
def browser_page(url):
    """A headless Chromium page opened at `url`, closed afterwards; skips when no Chromium is installed."""
    from playwright import sync_api as playwright  # a test dependency: missing it fails, it does not skip

    executable = chromium()
    if executable is None:
        pytest.skip("No Chromium installed: `apt-get install -y chromium` (Debian) runs this browser test")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(url)
            yield page
        finally:
            browser.close()
