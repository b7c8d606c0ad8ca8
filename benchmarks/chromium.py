"""Debian's headless Chromium driven by selenium: the one setup that the browser
tests (``tests/test_playground_browser.py``, ``tests/test_docs_site.py``) and
the Playground benchmark (workload G) share.

Only Debian's ``chromium`` and ``chromium-driver`` packages (``/usr/bin``;
``DLVR_JAX_CHROMIUM`` and ``DLVR_JAX_CHROMEDRIVER`` point elsewhere), never a
browser download: ``SE_OFFLINE`` keeps selenium-manager from fetching one.
The flags keep a headless Chromium off this machine's closed network (no
background networking, component updates, sync or QUIC) and give it a fresh
profile each time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path(os.environ.get("DLVR_JAX_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("DLVR_JAX_CHROMEDRIVER", "/usr/bin/chromedriver"))
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def missing() -> str | None:
    """Why Chromium cannot be driven here (a sentence), or None when it can."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        return (
            f"no browser: {CHROMIUM} or {CHROMEDRIVER} is missing "
            "(apt-get install chromium chromium-driver)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (it comes with the test and docs extras)"
    return None


@contextmanager
def driver(
    *, window_size: str = "1400,1000", configure: Callable[[Any], None] | None = None
) -> Iterator[Any]:
    """A selenium Chrome driver on :data:`CHROMIUM` with :data:`FLAGS` and a fresh profile.

    ``configure(options)`` may add to the ``ChromeOptions`` before the start
    (preferences, capabilities). The browser quits and its profile is removed
    on exit.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium-manager must never download
    profile = tempfile.mkdtemp(prefix="dlvr_jax_chromium_")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--window-size={window_size}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if configure is not None:
        configure(options)
    try:
        browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    except BaseException:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    try:
        yield browser
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
