"""Build helpers for the dlvr_jax documentation: a Sphinx extension, and helpers for conf.py.

As an extension it serves MathJax from the site itself. sphinx-gallery
imports :data:`saved_figures`, :class:`ExampleOrder` and :func:`no_arguments`
by their qualified names, which keeps Sphinx's configuration picklable.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.fileutil import copy_asset

LOGGER = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent

# ----------------------------------------------------------------------------
# Intersphinx without a network.


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url`` answers a HEAD request within ``timeout`` seconds."""
    try:
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bool(200 <= response.status < 400)
    except Exception:
        return False


def intersphinx_mapping(
    urls: dict[str, str], *, local_dirs: list[Path | str | None]
) -> dict[str, tuple[str, Any]]:
    """The projects whose inventory can be read now, as ``intersphinx_mapping``.

    A project is mapped to its local ``<name>.inv`` if one of ``local_dirs``
    holds it (links still point to the online documentation), else to its
    online ``objects.inv`` if a quick probe reaches it, else it is left out
    and the log says so: an unreachable inventory is a Sphinx warning, which
    would fail a ``-W`` build on a machine without internet.
    ``DLVR_JAX_DOCS_OFFLINE=1`` skips the probe.
    """
    mapping: dict[str, tuple[str, Any]] = {}
    remote: list[str] = []
    for name, url in urls.items():
        local = [Path(d) / f"{name}.inv" for d in local_dirs if d]
        found = next((str(p) for p in local if p.is_file()), None)
        if found is not None:
            mapping[name] = (url, found)
        else:
            remote.append(name)
    offline = os.environ.get("DLVR_JAX_DOCS_OFFLINE", "") not in ("", "0")
    if remote and not offline:
        with ThreadPoolExecutor(max_workers=len(remote)) as pool:
            answers = dict(
                zip(
                    remote,
                    pool.map(lambda n: _reachable(f"{urls[n]}/objects.inv"), remote),
                    strict=True,
                )
            )
    else:
        answers = dict.fromkeys(remote, False)
    for name in remote:
        if answers[name]:
            mapping[name] = (urls[name], None)
    missing = [name for name in remote if not answers[name]]
    if missing:
        LOGGER.info(
            "intersphinx: no inventory for %s (offline, and no local copy in "
            "docs/_intersphinx/ or $DLVR_JAX_INTERSPHINX_DIR); their names stay unlinked",
            ", ".join(missing),
        )
    return mapping


# ----------------------------------------------------------------------------
# The example gallery.

ORDER = (
    "plot_perceptron.py",
    "plot_xor_pocket.py",
    "plot_mlp.py",
    "plot_activations.py",
    "plot_optimizers_mlp.py",
    "plot_optimization.py",
    "tensor_tour.py",
)
"""The gallery's order: the chapter's; scripts not listed follow by name."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".gif")


def copy_examples(source: Path, target: Path) -> Path:
    """A fresh copy of the example scripts in ``target``, with the gallery's header.

    The scripts write their figures into the folder they run in; running the
    copy keeps those files out of the checkout.
    """
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for script in sorted(source.glob("*.py")):
        shutil.copy2(script, target / script.name)
    shutil.copyfile(HERE / "gallery_header.rst", target / "GALLERY_HEADER.rst")
    return target


class ExampleOrder:
    """sphinx-gallery sort key: the examples in :data:`ORDER`, then the rest by name."""

    def __init__(self, src_dir: str) -> None:
        self.src_dir = src_dir

    def __call__(self, filename: str) -> tuple[int, str]:
        name = Path(filename).name
        return (ORDER.index(name) if name in ORDER else len(ORDER), name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {', '.join(ORDER)}>"


def no_arguments(gallery_conf: dict[str, Any], script_vars: dict[str, Any]) -> list[str]:
    """Every script runs with its default arguments, as ``python script.py`` would."""
    return []


class SavedFigures:
    """sphinx-gallery image scraper: the images a code block wrote to disk.

    After each block it looks for image files in the example's folder that
    are new or were rewritten since the last look, and copies them, in the
    order they were saved, to the gallery's image paths. So the gallery shows
    exactly the files the script produces.
    """

    def __init__(self) -> None:
        self._stamps: dict[str, int] = {}

    def __repr__(self) -> str:
        return "<SavedFigures scraper>"

    def __call__(self, block: Any, block_vars: dict[str, Any], gallery_conf: dict[str, Any]) -> str:
        from sphinx_gallery.scrapers import figure_rst

        folder = Path(block_vars["src_file"]).parent
        written = []
        for path in folder.rglob("*"):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            stamp = path.stat().st_mtime_ns
            if self._stamps.get(str(path)) != stamp:
                self._stamps[str(path)] = stamp
                written.append((stamp, path))
        images = []
        targets = iter(block_vars["image_path_iterator"])
        for _, path in sorted(written):
            destination = Path(next(targets)).with_suffix(path.suffix.lower())
            shutil.copyfile(path, destination)
            images.append(str(destination))
        return figure_rst(images, gallery_conf["src_dir"])


saved_figures = SavedFigures()

# ----------------------------------------------------------------------------
# The API reference.


def attribute_docstring(name: str) -> str | None:
    """The docstring written under the module-level assignment ``name``, if any.

    ``name`` is the full dotted name, e.g. ``dlvr_jax.data.FEATURES``. A name
    whose module cannot be analysed gives the empty string (keep what autodoc has).
    """
    from sphinx.pycode import ModuleAnalyzer

    module, _, attribute = name.rpartition(".")
    try:
        docs = ModuleAnalyzer.for_module(module).find_attr_docs()
    except Exception:
        return ""
    found = docs.get(("", attribute))
    return None if found is None else "\n".join(found)


def public_modules(package: Path) -> list[str]:
    """``dlvr_jax.<module>`` for every module file of the package not named ``_*``."""
    return [
        f"{package.name}.{path.stem}"
        for path in sorted(package.glob("*.py"))
        if not path.stem.startswith("_")
    ]


# ----------------------------------------------------------------------------
# MathJax without a CDN.

MATHJAX_PATH = "mathjax/tex-chtml.js"
"""The ``mathjax_path`` that :func:`setup`'s copy of MathJax serves (under ``_static``)."""


def _mathjax_source() -> Path:
    """MathJax 3 as the ``sphinx-mathjax-offline`` package ships it (a docs dependency)."""
    spec = importlib.util.find_spec("sphinx-mathjax-offline")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "MathJax not found: install the docs extra (pip install -e '.[docs]'), "
            "which brings sphinx-mathjax-offline"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"


def _copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        copy_asset(_mathjax_source(), Path(app.outdir) / "_static" / "mathjax")


def setup(app: Sphinx) -> dict[str, Any]:
    """Copies MathJax into the built site, so formulas render without a network."""
    _mathjax_source()  # fail early, with the fix, when it is missing
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
