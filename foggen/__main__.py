"""``python -m foggen``: the same as the ``foggen`` console script."""

import sys

from foggen.cli import main

sys.exit(main())
