"""``python -m psc``: the ``psc`` command line."""

import sys

from psc.cli import main

sys.exit(main())
