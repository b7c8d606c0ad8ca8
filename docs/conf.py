"""Sphinx configuration for the dlvr_jax documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``
from the repository root. No network is needed (no intersphinx).
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sphinx.application import Sphinx

# Let autodoc import dlvr_jax from the checkout, without installing it.
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import dlvr_jax  # found through the path above

project = "dlvr_jax"
author = "dlvr_jax developers"
copyright = "dlvr_jax developers"
version = release = dlvr_jax.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
]

exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

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

# Type hints go into the parameter descriptions, not into the signatures,
# which keeps signatures short; nitpicky stays off, so type names that have no
# target here (jax.Array, matplotlib's Axes, ...) are not warnings.
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_member_order = "bysource"
# Show default values as written in the source (``dtype=jnp.float32``,
# ``names=FEATURES``), not their repr.
autodoc_preserve_defaults = True
autodoc_default_options = {"members": True}
nitpicky = False

html_theme = "alabaster"
html_title = f"dlvr_jax {release}"


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


def setup(app: Sphinx) -> None:
    app.connect("autodoc-skip-member", _skip_namedtuple_fields)
