"""Where the project's data lives: scenarios, catalog, traces, policies."""

from __future__ import annotations

import os
from pathlib import Path

# An editable install (the only one the Makefile makes) keeps data beside the
# package; AUTOTUNE_HOME points elsewhere for a checkout used as a library.
ROOT = Path(os.environ.get("AUTOTUNE_HOME", Path(__file__).resolve().parent.parent))
ENVS = ROOT / "envs"
CATALOG = ENVS / "catalog"
TRACES = ROOT / "traces"
POLICIES = ROOT / "policies"
