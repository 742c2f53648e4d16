"""The service's own page: dashboards of suppressed versus raised, and the decision explorer.

The worker calls :func:`install` once, with its faust app; everything else here is the page
(:mod:`.page`, ``assets/``), its JSON and SVG API (:mod:`.routes`), the figures behind them
(:mod:`.figures`, :mod:`.svg`) and who may read them (:mod:`.access`). ``docs/dashboard.md``
describes the page and its API.
"""

from triage.web.access import WebAccessError
from triage.web.routes import install

__all__ = ["WebAccessError", "install"]
