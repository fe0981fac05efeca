"""``python -m crawler.faces.cli``: the ``newswatch`` command."""

import sys

from crawler.faces.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
