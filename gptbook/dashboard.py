"""The live training dashboard for ``Trainer`` and ``train_model_simple`` (notebook 08).

The code is in the ``gptbook.ui`` room (``ui/dashboard.py``: the widget, its background run and what it records;
``ui/dashboard_plot.py``: the picture); this module keeps the path the notebooks import from::

    from gptbook.dashboard import TrainingDashboard
"""

from .ui.dashboard import DRAW_SPACING, TrainingDashboard, __all__, live_frontend, reference_losses  # noqa: F401
