"""``python -m gptbook.generate``: the command line of ``gptbook.generate_cli`` (see there).

Kept this small on purpose: ``gptbook.generate`` is the generation *function*; import
``gptbook.generate_cli`` (not this module) to call the command line from Python.
"""

import sys

from gptbook.generate_cli import main

if __name__ == "__main__":
    sys.exit(main())
