"""Sphinx configuration: furo theme, API reference by autodoc from the docstrings."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import requests_ws

project = "requests_ws"
author = "The requests_ws authors"
copyright = "2026, The requests_ws authors"
release = requests_ws.__version__
version = release

extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = f"requests_ws {release}"
exclude_patterns = ["_build"]
