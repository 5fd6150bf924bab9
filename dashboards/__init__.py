"""TradeTower dashboards: Panel views of backtests, comparisons and sweeps.

``result_view``, ``compare_view`` and ``sweep_view`` return Panel objects that show inline in
Jupyter (after ``pn.extension("tabulator")``) or serve as pages; ``serve`` runs them all with an
index of saved runs and sweeps. Panel loads only when a view is asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "result_view": "dashboards.views.result",
    "compare_view": "dashboards.views.compare",
    "sweep_view": "dashboards.views.sweep",
    "serve": "dashboards.app",
    "load_result": "dashboards.store",
    "load_sweep": "dashboards.store",
    "load_bars": "dashboards.store",
    "RunStore": "dashboards.store",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dashboards' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
