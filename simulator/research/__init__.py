"""The research layer over :func:`simulator.sweep.sweep`: parameter spaces declared against a
strategy's config model, grid/random/Optuna sweeps run in chunks (in-process or on Dask),
resumable sweep folders, walk-forward analysis, and the golden-backtest regression check.

``from simulator.research import run_sweep, walk_forward`` imports them on first use; this
package imports nothing heavy by itself.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_sweep", "walk_forward"]


def __getattr__(name: str) -> Any:
    if name == "run_sweep":
        from simulator.research.runner import run_sweep

        return run_sweep
    if name == "walk_forward":
        from simulator.research.walkforward import walk_forward

        return walk_forward
    raise AttributeError(name)
