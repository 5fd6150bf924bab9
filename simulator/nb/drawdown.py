"""The drawdown figures of an equity curve in one compiled pass (see ``simulator.metrics``):
the same numbers as the numpy formulation (running peak, ``E/peak - 1`` where the peak is
positive, the money drop, the longest peak-to-recovery span), without its five temporaries."""

import numpy as np
from numba import njit


@njit(cache=True)
def drawdown_nb(values: np.ndarray, times: np.ndarray) -> tuple[float, float, int, int]:
    """(worst ``E/peak - 1`` over bars with a positive peak, NaN when none; worst ``E - peak``;
    longest span in bars; longest span in the unit of ``times``, epoch integers of any unit).
    ``values`` must hold no NaN."""
    n = values.shape[0]
    peak = -np.inf
    worst_frac = np.nan
    worst_amount = np.inf
    best_bars = 0
    best_span = 0
    run_start = -1  # first underwater bar of the current run
    for t in range(n):
        v = values[t]
        peak = max(peak, v)
        if peak > 0:
            frac = v / peak - 1.0
            if not (frac >= worst_frac):  # also takes the first one (worst_frac NaN)
                worst_frac = frac
        worst_amount = min(worst_amount, v - peak)
        under = v < peak
        if under and run_start < 0:
            run_start = t
        elif not under and run_start >= 0:
            best_bars = max(best_bars, t - (run_start - 1))
            best_span = max(best_span, times[t] - times[run_start - 1])
            run_start = -1
    if run_start >= 0:  # not recovered: counts to the last bar
        best_bars = max(best_bars, (n - 1) - (run_start - 1))
        best_span = max(best_span, times[n - 1] - times[run_start - 1])
    return worst_frac, worst_amount, best_bars, best_span
