"""``python -m memq``: the same commands as the ``memq`` script."""

from memq.cli import main

raise SystemExit(main())
