"""Pictures of what the model does: attention heat maps, next-token bars, coloured tokens (``from gptbook import viz``).

The code is in ``gptbook.ui.plots``; this module keeps the path the notebooks import from. It imports matplotlib,
so ``import gptbook`` does not import it.
"""

from .ui.plots import (  # noqa: F401
    BAR_COLOUR, CHOSEN_COLOUR, TOKEN_COLOURS, __all__, attention_figsize, attention_weights, plot_attention,
    plot_attention_heads, plot_next_token_probs, token_label, token_spans_html, token_strings, top_tokens,
    top_tokens_html,
)
