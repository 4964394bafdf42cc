"""``python -m autotune``: the CLI, for a child process started with the same interpreter."""

import sys

from autotune.cli import main

sys.exit(main())
