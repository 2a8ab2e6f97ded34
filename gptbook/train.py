"""The older spelling of ``gptbook train``: ``python -m gptbook.train ARGS`` runs ``gptbook train ARGS``.

The command line lives in ``gptbook.cli``; this module only keeps old commands working.
"""

import sys

from gptbook.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
