"""The documentation: every public name documented, and the built site checked in a browser.

``test_every_public_name_has_a_docstring`` always runs. The other tests need
a built site, given as ``DLVR_JAX_DOCS_HTML=<folder>`` (``tox -e docs`` builds
one and sets it)::

    sphinx-build -W --keep-going -b html docs docs/_build/html
    DLVR_JAX_DOCS_HTML=docs/_build/html python -m pytest tests/test_docs_site.py

They serve the site on 127.0.0.1 and check that no internal link is broken
(a crawl over HTTP from the index), that every public name has its page in
the API reference, and, in Debian's headless Chromium driven through
``/usr/bin/chromedriver`` (``apt-get install chromium chromium-driver``;
never a downloaded browser), that the index, every tutorial and every gallery
page load, that every image on them has loaded (``naturalWidth > 0``), that
formulas rendered, and that search finds results. Without a built site, or
without Chromium, chromedriver or selenium, they skip, saying why;
``DLVR_JAX_REQUIRE_BROWSER=1`` (set in CI) turns those skips into failures.
"""

from __future__ import annotations

import ast
import functools
import html.parser
import http.server
import importlib
import inspect
import os
import pkgutil
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dlvr_jax
from benchmarks import chromium

SITE_VARIABLE = "DLVR_JAX_DOCS_HTML"
REQUIRE_VARIABLE = "DLVR_JAX_REQUIRE_BROWSER"
TUTORIALS = 8
TIMEOUT = 60  # seconds to wait for a page, its images, its formulas or search results


def _skip(reason: str) -> None:
    """Skips, or fails where the environment says the docs checks must run (CI)."""
    if os.environ.get(REQUIRE_VARIABLE, "") not in ("", "0"):
        pytest.fail(f"{REQUIRE_VARIABLE} is set but {reason}")
    pytest.skip(reason)


# ----------------------------------------------------------------------------
# Every public name has a docstring (no built site needed).


def _public_modules() -> list[str]:
    """Every public module, those inside subpackages (``viz.training``, ...) included."""
    return sorted(
        info.name
        for info in pkgutil.walk_packages(dlvr_jax.__path__, "dlvr_jax.")
        if not any(part.startswith("_") for part in info.name.split("."))
    )


def _public_names(module: Any) -> list[str]:
    """``__all__``, or the public functions and classes defined in a module without one."""
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == module.__name__
    ]


@functools.cache
def _attribute_docstrings(module_name: str) -> frozenset[str]:
    """Module-level names assigned and followed by a string literal (their docstring)."""
    module = importlib.import_module(module_name)
    tree = ast.parse(Path(inspect.getfile(module)).read_text())
    documented = set()
    for node, following in zip(tree.body, tree.body[1:], strict=False):
        if not (
            isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
            and following.value.value.strip()
        ):
            continue
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        documented.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(documented)


def _own_docstring(value: Any) -> str:
    """The docstring written for ``value`` (not one NamedTuple or a base class made up)."""
    doc = value.__dict__.get("__doc__") if inspect.isclass(value) else value.__doc__
    if not isinstance(doc, str):
        return ""
    if inspect.isclass(value) and re.fullmatch(rf"{value.__name__}\(.*\)", doc.strip(), re.S):
        return ""  # the NamedTuple default, "Name(field, ...)"
    return doc.strip()


def test_every_public_name_has_a_docstring():
    missing = []
    for module_name in _public_modules():
        module = importlib.import_module(module_name)
        if not (module.__doc__ or "").strip():
            missing.append(f"{module_name} (the module)")
        for name in _public_names(module):
            value = getattr(module, name)
            if inspect.isfunction(value) or inspect.isclass(value):
                documented = bool(_own_docstring(value))
            else:  # a constant or registry: a string literal under its assignment
                documented = name in _attribute_docstrings(module_name)
            if not documented:
                missing.append(f"{module_name}.{name}")
    assert not missing, "public names without a docstring: " + ", ".join(missing)


# ----------------------------------------------------------------------------
# The built site, served over HTTP.


@pytest.fixture(scope="module")
def site() -> Path:
    folder = os.environ.get(SITE_VARIABLE, "")
    if not folder:
        _skip(
            f"no built documentation: set {SITE_VARIABLE} to the HTML folder of "
            "`sphinx-build -b html docs <folder>` (tox -e docs does both)"
        )
    path = Path(folder).resolve()
    if not (path / "index.html").is_file():
        _skip(f"{SITE_VARIABLE}={folder} holds no index.html: build the docs first")
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[str]:
    """The site on http://127.0.0.1:<free port>/, served from a thread."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


class _Links(html.parser.HTMLParser):
    """The link targets of a page (``href`` and ``src``) and its element ids."""

    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"] or "")
        if tag == "a" and values.get("name"):
            self.ids.add(values["name"] or "")
        for attribute in ("href", "src"):
            value = values.get(attribute)
            hint = tag == "link" and values.get("rel") in ("preconnect", "dns-prefetch")
            if value and not hint:
                self.targets.append(value)


def _fetch(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read(), response.headers.get_content_type()
    except urllib.error.HTTPError as error:
        return error.code, b"", ""


def test_no_internal_link_is_broken(server: str):
    """Crawls every page reachable from the index; every internal target and anchor exists."""
    pages: dict[str, _Links] = {}
    statuses: dict[str, int] = {}
    queue = [urllib.parse.urljoin(server, "index.html")]
    referrers: dict[str, str] = {}
    while queue:
        url = queue.pop()
        if url in statuses:
            continue
        status, body, content_type = _fetch(url)
        statuses[url] = status
        if status != 200 or content_type != "text/html":
            continue
        links = _Links()
        links.feed(body.decode("utf-8", errors="replace"))
        pages[url] = links
        for target in links.targets:
            absolute = urllib.parse.urljoin(url, target)
            parts = urllib.parse.urlsplit(absolute)
            if parts.scheme not in ("http", "https") or not absolute.startswith(server):
                continue  # external (no network in CI) or mailto:, javascript:, data:
            page = urllib.parse.urlunsplit(parts._replace(fragment="", query=""))
            referrers.setdefault(page, url)
            if page not in statuses:
                queue.append(page)
    broken = [f"{url} (status {s}, linked from {referrers.get(url)})" for url, s in statuses.items()
              if s != 200]  # fmt: skip
    assert not broken, "broken internal links:\n" + "\n".join(broken)

    missing_anchors = []
    for url, links in pages.items():
        for target in links.targets:
            absolute = urllib.parse.urljoin(url, target)
            parts = urllib.parse.urlsplit(absolute)
            if not parts.fragment or not absolute.startswith(server):
                continue
            page = urllib.parse.urlunsplit(parts._replace(fragment="", query=""))
            anchor = urllib.parse.unquote(parts.fragment)
            if page in pages and anchor not in pages[page].ids:
                missing_anchors.append(f"{target} in {url}")
    assert not missing_anchors, "links to missing anchors:\n" + "\n".join(missing_anchors)

    visited = {urllib.parse.urlsplit(url).path for url in pages}
    for expected in ("/tutorials/index.html", "/auto_examples/index.html", "/api.html"):
        assert expected in visited, f"{expected} is not reachable from the index"


def _inventory(site: Path) -> dict[str, str]:
    """``{name: uri}`` of the Python objects in Sphinx's ``objects.inv``."""
    raw = (site / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # four header lines, then zlib-compressed entries
        header_end = raw.index(b"\n", header_end) + 1
    entries = {}
    for line in zlib.decompress(raw[header_end:]).decode().splitlines():
        match = re.match(r"(?x)(.+?)\s+(py:\w+)\s+(-?\d+)\s+(\S*)\s+(.*)", line)
        if match:
            name, _, _, uri, _ = match.groups()
            entries[name] = uri.replace("$", name)
    return entries


def _documented_as(module_name: str, name: str) -> list[str]:
    """The names under which the API reference may document ``module_name.name``.

    Its own, and its package's when the package re-exports the same object
    (``dlvr_jax.viz.training.plot_dataset`` is documented as ``dlvr_jax.viz.plot_dataset``).
    """
    names = [f"{module_name}.{name}"]
    package_name = module_name.rpartition(".")[0]
    if package_name != "dlvr_jax":
        value = getattr(importlib.import_module(module_name), name)
        if getattr(importlib.import_module(package_name), name, None) is value:
            names.append(f"{package_name}.{name}")
    return names


def test_every_public_name_is_in_the_api_reference(site: Path):
    inventory = _inventory(site)
    missing = [
        f"{module_name}.{name}"
        for module_name in _public_modules()
        for name in _public_names(importlib.import_module(module_name))
        if not any(documented in inventory for documented in _documented_as(module_name, name))
    ]
    assert not missing, "public names missing from the API reference: " + ", ".join(missing)
    pages = {uri.split("#", 1)[0] for uri in inventory.values()}
    assert all((site / page).is_file() for page in pages)


# ----------------------------------------------------------------------------
# The site in headless Chromium.


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    why = chromium.missing()
    if why:
        _skip(why)

    def configure(options: Any) -> None:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})

    with chromium.driver(window_size="1280,1024", configure=configure) as driver:
        driver.set_page_load_timeout(TIMEOUT)
        yield driver


def _wait(driver: Any, script: str, what: str) -> Any:
    """Polls the JavaScript expression ``script`` until it is truthy; fails with ``what``."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, TIMEOUT, poll_frequency=0.2).until(
            lambda d: d.execute_script(f"return {script};")
        )
    except TimeoutException:
        pytest.fail(f"timed out after {TIMEOUT} s waiting for {what} on {driver.current_url}")


def _open(driver: Any, url: str) -> None:
    """Loads ``url`` and waits for it and all its images, lazy ones included."""
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(url)
    _wait(driver, "document.readyState === 'complete'", "the page to load")
    driver.execute_script(
        "for (const img of document.images) { img.loading = 'eager'; img.decoding = 'sync'; }"
    )
    _wait(
        driver,
        "Array.from(document.images).every(img => img.complete)",
        "every image to finish loading",
    )


def _page_problems(driver: Any) -> list[str]:
    """What is wrong with the page now open: its title, errors, images, console."""
    problems = []
    title = driver.title
    if not title or "404" in title or "not found" in title.lower():
        problems.append(f"title {title!r}")
    if driver.find_elements("css selector", ".system-message, .problematic"):
        problems.append("a reStructuredText error is rendered in the page")
    if driver.find_elements("css selector", ".output.error, .output.traceback"):
        problems.append("a notebook cell shows an error")
    broken = driver.execute_script(
        "return Array.from(document.images)"
        ".filter(img => !(img.naturalWidth > 0)).map(img => img.src);"
    )
    problems.extend(f"image did not load: {src}" for src in broken)
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            problems.append(f"console: {entry.get('message')}")
    return problems


def _pages(site: Path, folder: str) -> list[str]:
    return sorted(
        f"{folder}/{path.name}"
        for path in (site / folder).glob("*.html")
        if path.name not in ("sg_execution_times.html",)
    )


def test_the_index_every_tutorial_and_every_example_load_with_their_images(
    site: Path, server: str, browser: Any
):
    tutorials = [page for page in _pages(site, "tutorials") if not page.endswith("/index.html")]
    examples = [page for page in _pages(site, "auto_examples") if not page.endswith("/index.html")]
    assert len(tutorials) >= TUTORIALS, f"expected {TUTORIALS} tutorials, found {tutorials}"
    scripts = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))
    assert len(examples) >= len(scripts), f"expected a gallery page per script, found {examples}"
    pages = [
        "index.html",
        "tutorials/index.html",
        *tutorials,
        "auto_examples/index.html",
        *examples,
        "api.html",
        "api/generated/dlvr_jax.train.fit.html",
        "api/generated/dlvr_jax.viz.plot_neuron_maps.html",
        "playground.html",  # the committed screenshots load
        "design.html",
        "contributing.html",
    ]
    problems = {}
    images = {}
    for page in pages:
        _open(browser, urllib.parse.urljoin(server, page))
        images[page] = browser.execute_script("return document.images.length;")
        found = _page_problems(browser)
        if found:
            problems[page] = found
    assert not problems, "\n".join(f"{page}: {found}" for page, found in problems.items())
    # Each tutorial draws figures, and so does every example but the tensor tour.
    without_figures = [page for page in tutorials if images[page] == 0] + [
        page for page in examples if images[page] == 0 and "tensor_tour" not in page
    ]
    assert not without_figures, f"pages without a single figure: {without_figures}"


def test_formulas_render(server: str, browser: Any):
    _open(browser, urllib.parse.urljoin(server, "tutorials/03_core_concepts.html"))
    count = _wait(
        browser, "document.querySelectorAll('mjx-container').length", "MathJax to typeset"
    )
    assert count > 0
    assert not browser.find_elements("css selector", "mjx-merror"), "a formula failed to render"


def test_search_finds_the_perceptron(server: str, browser: Any):
    _open(browser, urllib.parse.urljoin(server, "search.html?q=perceptron"))
    count = _wait(
        browser,
        "document.querySelectorAll('#search-results li a, ul.search li a').length",
        "search results for 'perceptron'",
    )
    assert count >= 1
    links = browser.execute_script(
        "return Array.from(document.querySelectorAll('#search-results li a, ul.search li a'))"
        ".map(a => a.href);"
    )
    assert any("perceptron" in link for link in links), links
