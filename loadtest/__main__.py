"""``python -m loadtest`` → :func:`loadtest.cli.main`."""

import sys

from loadtest.cli import main

sys.exit(main())
