"""The ui room: the notebooks' widgets and plots (ipywidgets + matplotlib; no JavaScript of our own, no CDN).

    base        the shared VBox (error and note lines, the ``text`` property), figures rendered to PNG
    tokens      TokenizerWidget                                   notebook 01
    attention   AttentionExplorer                                 notebooks 04, 08
    generation  GenerationWidget                                  notebook 07
    explorer    TokenProbabilityExplorer                          notebook 10
    plots       heat maps, bar charts, token boxes (matplotlib)   notebooks 01, 04, 07, 08, 10
    dashboard   TrainingDashboard: the live training dashboard    notebook 08
                (its background run and record; the picture in dashboard_plot)

Learners import them through two doors at the top of the package: ``gptbook.widgets`` (every widget, the dashboard
and the explorer included) and ``gptbook.viz`` (the plots).

A new widget: a class in a module of its own here, built on ``base._GptbookBox`` (or ``base._TextBox`` when a
text box drives it), its parts tagged with ``gptbook-...`` CSS classes for ``tests/test_browser.py``; re-export it
from ``gptbook.widgets``.
"""
