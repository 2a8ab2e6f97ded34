"""``python -m gptbook train ...`` and ``python -m gptbook generate ...``: the same as the ``gptbook`` command."""

import sys

from gptbook.cli import main

if __name__ == "__main__":
    sys.exit(main())
