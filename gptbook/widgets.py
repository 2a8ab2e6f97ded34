"""Interactive widgets for the notebooks: see tokens as you type, explore attention, watch generation.

The code is in the ``gptbook.ui`` room; this module keeps the path the notebooks import from.

- ``TokenizerWidget``: type text, see its tokens and their IDs.                 notebook 01
- ``AttentionExplorer``: a text, a layer, a head -> the attention heat map.     notebooks 04, 08
- ``GenerationWidget``: a prompt and the sampling knobs -> text, token by token. notebook 07
- ``TrainingDashboard``: loss curves, samples, probes and a Stop button while training. notebook 08
- ``TokenProbabilityExplorer``: what the model expected at every token of a text.  notebook 10

Each widget is an ``ipywidgets.VBox``: make it the last expression of a cell to show it. They
are plain ipywidgets plus matplotlib pictures sent as PNG images: no JavaScript of our own and no
CDN, so they work offline in JupyterLab 4, Notebook 7, VS Code and Colab. Everything can also
be driven from Python (set ``.text``, call ``.generate()``, read ``.output.value``), which the
tests do. Problems (an empty prompt, a bad seed) appear in the widget's red error line and the
widget keeps working; notes (a text cropped to the context) appear in a line below it.

The parts carry CSS classes for browser tests: ``gptbook-token-input``, ``gptbook-token-view``,
``gptbook-attention-input``, ``gptbook-layer``, ``gptbook-head``, ``gptbook-heatmap``,
``gptbook-prompt``, ``gptbook-temperature``, ``gptbook-top-k``, ``gptbook-top-p``,
``gptbook-max-new-tokens``, ``gptbook-seed``, ``gptbook-generate-button``,
``gptbook-stop-button``, ``gptbook-status``, ``gptbook-output``, ``gptbook-candidates``,
``gptbook-error``, ``gptbook-note``.
"""

from .ui.attention import AttentionExplorer
from .ui.base import figure_to_png
from .ui.dashboard import TrainingDashboard
from .ui.explorer import TokenProbabilityExplorer
from .ui.generation import GenerationWidget
from .ui.tokens import TokenizerWidget

__all__ = ["AttentionExplorer", "GenerationWidget", "TokenProbabilityExplorer", "TokenizerWidget", "TrainingDashboard",
           "figure_to_png"]
