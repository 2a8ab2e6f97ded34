"""The token-probability explorer (notebook 10): ``TokenProbabilityExplorer(model)``.

The code is in ``gptbook.ui.explorer``; this module keeps the path the notebooks import from.
"""

from .ui.explorer import MAX_SURPRISE, TokenProbabilityExplorer, surprise_color, surprise_html  # noqa: F401

__all__ = ["TokenProbabilityExplorer", "surprise_color", "surprise_html"]
