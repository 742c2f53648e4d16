"""Shared pytest setup. The broker and PostgreSQL fixtures live in their own plugin modules.

Property tests (hypothesis) are derandomized by default, so ``make test`` explores the same
examples on every run and its exit status depends on the code alone; ``HYPOTHESIS_PROFILE=explore``
draws new examples each run (what to do after changing a parser), and a failure it finds
prints the seed that reproduces it.
"""

import os

from hypothesis import settings

settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

pytest_plugins = ["tests.broker_fixture", "tests.postgres_fixture"]
