"""Settings for the whole suite.

Property tests (hypothesis) run the same examples on every run (`derandomize`) and have no
per-example deadline: a test's outcome never depends on chance or on how busy the machine is.
`HYPOTHESIS_PROFILE=explore` draws fresh examples instead (and keeps what fails, to replay).
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, deadline=None, database=None)
settings.register_profile("explore", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))
