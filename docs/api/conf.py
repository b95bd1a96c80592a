"""Sphinx configuration for graphattn's API reference (``make docs``; warnings are errors)."""

import graphattn

project = "graphattn"
author = "graphattn contributors"
copyright = "2026, graphattn contributors"
release = version = graphattn.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",  # the docstrings' Google-style "Args:" / "Returns:" sections
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True  # NamedTuple fields: autodoc documents them once already
# No network at build time: cross-references to torch / PyG stay plain text.
intersphinx_mapping: dict = {}
nitpicky = False
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_title = f"graphattn {release}"
