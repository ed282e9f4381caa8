"""The page ``tterm serve`` gives the browser: textual-serve's template, with the font served locally."""

from pathlib import Path

TEMPLATES = Path(__file__).parent
"""The templates folder handed to textual-serve's ``Server(templates_path=...)``."""
