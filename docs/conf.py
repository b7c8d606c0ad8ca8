"""Sphinx configuration for the dlvr_jax documentation.

Build from the repository root (``tox -e docs`` does exactly this, then opens
the site in headless Chromium, see ``tests/test_docs_site.py``)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

What runs at build time, so that nothing can rot:

- ``autosummary`` writes one page per public symbol (each module's
  ``__all__``) into ``docs/api/generated/``;
- ``sphinx-gallery`` executes every script of ``examples/`` (a failing one
  fails the build) and renders it with the figures it saves into
  ``docs/auto_examples/``;
- ``myst-nb`` executes the tutorials (``docs/tutorials/*.md``, MyST
  notebooks) in a fresh Jupyter kernel each; an error in a cell fails the build.

All three outputs are generated, git-ignored (``docs/.gitignore``) and never
committed. JAX runs on the CPU during the build (``JAX_PLATFORMS=cpu`` unless
set), so the numbers in the pages do not depend on the machine's accelerator.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sphinx.application import Sphinx

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# Let autodoc import dlvr_jax from the checkout, without installing it, and
# make the helpers in docs/_ext importable (sphinx-gallery imports its scraper
# and sort key by name, which keeps the configuration picklable).
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))
# Before JAX is imported, here or in a tutorial's kernel (which inherits the
# environment): the documentation is built and measured on the CPU.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")

import dlvr_docs  # noqa: E402  (docs/_ext/dlvr_docs.py, after the environment is set)

import dlvr_jax  # noqa: E402  (found through the path above)

project = "dlvr_jax"
author = "dlvr_jax developers"
copyright = "dlvr_jax developers"
version = release = dlvr_jax.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    # docs/_ext/dlvr_docs.py: MathJax served from the site itself
    # (sphinx.ext.mathjax alone loads it from a CDN), so formulas render
    # offline, in CI's browser test too.
    "dlvr_docs",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
    "sphinx_gallery.gen_gallery",
    "myst_nb",
]

exclude_patterns = [
    "_build",
    "_ext",
    "jupyter_execute",
    # sphinx-gallery's downloadable notebooks are not pages (myst-nb would
    # read and execute them as such).
    "auto_examples/*.ipynb",
    "Thumbs.db",
    ".DS_Store",
]
templates_path = ["_templates"]

# ----------------------------------------------------------------------------
# API reference: autodoc + autosummary + napoleon.

# One page per public symbol, listed from each module's ``__all__``.
autosummary_generate = True
autosummary_ignore_module_all = False
autosummary_imported_members = False

# Google-style docstrings only.
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# "Attributes:" sections of the NamedTuples become ``:ivar:`` fields, so the
# fields are not documented twice (once by napoleon, once by autodoc), which
# would be "duplicate object description" warnings.
napoleon_use_ivar = True
# Napoleon would take the fields' types from the class annotations and print
# them fully qualified (``jax.jaxlib._jax.Array``, an internal path); the
# descriptions already give dtype and shape.
napoleon_attr_annotations = False
# "Keys:" documents a TypedDict's keys (engine.FitOptions) as a parameter list.
napoleon_custom_sections = [("Keys", "params_style")]

# Type hints go into the parameter descriptions, not into the signatures,
# which keeps signatures short; nitpicky stays off, so type names that have no
# target here (jax.Array, matplotlib's Axes, ...) are not warnings.
# train re-exports the engine's TrainState, History, ...: the source pages link only
# the objects a module defines, so engine's source links to engine's pages (following
# the re-exports linked it to train's pages with anchors that only engine's pages have).
viewcode_follow_imported_members = False

autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_member_order = "bysource"
# Show default values as written in the source (``dtype=jnp.float32``,
# ``names=FEATURES``), not their repr.
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True}
nitpicky = False
mathjax_path = dlvr_docs.MATHJAX_PATH

# ----------------------------------------------------------------------------
# Links to the libraries dlvr_jax builds on.
#
# Intersphinx needs each project's ``objects.inv``. CI has no internet and no
# package ships these files, and Sphinx reports an unreachable inventory as a
# warning (which ``-W`` turns into an error), so a project is linked only if
# its inventory is there: a local copy in ``docs/_intersphinx/<name>.inv`` (or
# in the folder ``$DLVR_JAX_INTERSPHINX_DIR``), else the online one if a quick
# probe reaches it. Otherwise references to it stay plain text, and the build
# log says which projects were left unlinked and why.
intersphinx_mapping = dlvr_docs.intersphinx_mapping(
    {
        "python": "https://docs.python.org/3",
        "numpy": "https://numpy.org/doc/stable",
        "matplotlib": "https://matplotlib.org/stable",
        "jax": "https://docs.jax.dev/en/latest",
        "flax": "https://flax.readthedocs.io/en/latest",
        "optax": "https://optax.readthedocs.io/en/latest",
    },
    local_dirs=[DOCS / "_intersphinx", os.environ.get("DLVR_JAX_INTERSPHINX_DIR")],
)
intersphinx_timeout = 10

# ----------------------------------------------------------------------------
# The example gallery: every script in examples/, executed.
#
# The scripts save their figures into the current folder by default, and
# sphinx-gallery runs each one in the folder that holds it. So that a build
# never writes into the checkout's examples/, they are copied into the
# (git-ignored) build folder and run from there; a scraper picks up every
# image a script saves, block by block (viz builds figures without pyplot, so
# matplotlib's own scraper would see none).
GALLERY_SOURCE = dlvr_docs.copy_examples(ROOT / "examples", DOCS / "_build" / "gallery_src")

sphinx_gallery_conf = {
    "examples_dirs": os.path.relpath(GALLERY_SOURCE, DOCS),
    "gallery_dirs": "auto_examples",
    # Execute every script, not only those named plot_*.
    "filename_pattern": r".*\.py$",
    "within_subsection_order": "dlvr_docs.ExampleOrder",
    "image_scrapers": ("matplotlib", "dlvr_docs.saved_figures"),
    "reset_argv": "dlvr_docs.no_arguments",
    # A failing example fails the build (the default, stated on purpose).
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
    # Run every example on every build, even one unchanged since the last.
    "run_stale_examples": True,
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
}

# ----------------------------------------------------------------------------
# Tutorials: MyST notebooks, executed at build time in a fresh kernel each.

nb_execution_mode = "force"
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
# Markdown a cell displays (IPython.display.Markdown) may hold tables.
nb_render_markdown_format = "gfm"
# Anything a tutorial writes to stderr (a warning, a JAX log line) fails the
# build instead of appearing in the page.
nb_output_stderr = "remove-warn"
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
suppress_warnings = [
    # The kernel's mime bundle offers text/plain next to image/png for every
    # figure; myst-nb renders the image and reports the rest at debug level.
    "mystnb.unknown_mime_type",
]

# ----------------------------------------------------------------------------
# HTML.

html_theme = "furo"
html_title = f"dlvr_jax {release}"
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"
html_theme_options = {"navigation_with_keys": True}


def _skip_namedtuple_fields(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """Skips the ``Alias for field number N`` members of NamedTuples.

    The fields are documented by the class docstring's ``Attributes:`` section
    (or its summary line); listing the generated aliases as well would only
    repeat each name with a content-free description.
    """
    doc = getattr(obj, "__doc__", None)
    if isinstance(doc, str) and doc.startswith("Alias for field number "):
        return True
    return None


def _skip_scikit_learns_members(
    app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any
) -> bool | None:
    """Skips the methods scikit-learn puts on the estimators' classes.

    scikit-learn generates ``set_fit_request``, ``set_score_request``, ... on
    every estimator class (metadata routing); their docstrings are
    scikit-learn's own and point into its glossary, which this site does not
    have. The estimators' page links to scikit-learn for them.
    """
    if str(getattr(obj, "__module__", None) or "").startswith("sklearn."):
        return True
    return None


def _no_docstring_of_the_type(
    app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """Drops the docstring a module constant without one inherits from its type.

    A constant such as ``OBJECTIVES = {...}`` with no docstring of its own
    would otherwise be documented by ``dict``'s docstring.
    """
    if what in ("data", "attribute") and not isinstance(obj, type):
        own = dlvr_docs.attribute_docstring(name)
        if own is None:
            lines.clear()


def setup(app: Sphinx) -> None:
    app.connect("autodoc-skip-member", _skip_namedtuple_fields)
    app.connect("autodoc-skip-member", _skip_scikit_learns_members)
    app.connect("autodoc-process-docstring", _no_docstring_of_the_type)
    app.connect("builder-inited", _check_api_lists_every_module)


def _check_api_lists_every_module(app: Sphinx) -> None:
    """Warns (an error under ``-W``) if a public module is missing from api.rst."""
    from sphinx.util import logging

    listed = set(re.findall(r"^\s+(dlvr_jax\.\w+)\s*$", (DOCS / "api.rst").read_text(), re.M))
    for module in dlvr_docs.public_modules(ROOT / "dlvr_jax"):
        if module not in listed:
            logging.getLogger(__name__).warning(
                "%s is a public module but docs/api.rst does not list it", module
            )
