"""The drawdown figures of an equity curve in one compiled pass (see ``simulator.metrics``):
the same numbers as the numpy formulation (running peak, ``E/peak - 1`` where the peak is
positive, the money drop, the longest peak-to-recovery span), without its five temporaries."""

import numpy as np
from numba import njit


@njit(cache=True)
def drawdown_nb(values: np.ndarray, times: np.ndarray) -> tuple[float, float, int, int]:
    """(worst ``E/peak - 1`` over bars with a positive peak, NaN when none; worst ``E - peak``;
    longest span in bars; longest span in the unit of ``times``, epoch integers of any unit).
    A NaN in ``values`` stops the pass at once with a span of -1 bars (the caller then takes
    the numpy formulation).

    The bars under one peak are scanned for their lowest value only, and the quotient and the
    difference are taken once per peak: ``x / peak - 1`` and ``x - peak`` never decrease as
    ``x`` grows (IEEE rounding is monotonic), so the lowest value gives the worst of each,
    the same floats as taking them bar by bar. A year of minutes: one division per new high,
    not per bar."""
    n = values.shape[0]
    peak = -np.inf
    low = np.inf  # the lowest value since the running peak was set
    worst_frac = np.nan
    worst_amount = np.inf
    best_bars = 0
    best_span = 0
    run_start = -1  # first underwater bar of the current run
    for t in range(n):
        v = values[t]
        if v < peak:
            if run_start < 0:
                run_start = t
            low = min(low, v)
            continue
        if v != v:  # NaN is never below the peak, so it lands here first
            return np.nan, np.nan, -1, -1
        # at or above the running peak: the bars under the old one are done
        if run_start >= 0:
            best_bars = max(best_bars, t - (run_start - 1))
            best_span = max(best_span, times[t] - times[run_start - 1])
            run_start = -1
        if t > 0:
            worst_frac, worst_amount = _worst(peak, low, worst_frac, worst_amount)
        peak = v
        low = v
    if n > 0:
        worst_frac, worst_amount = _worst(peak, low, worst_frac, worst_amount)
    if run_start >= 0:  # not recovered: counts to the last bar
        best_bars = max(best_bars, (n - 1) - (run_start - 1))
        best_span = max(best_span, times[n - 1] - times[run_start - 1])
    return worst_frac, worst_amount, best_bars, best_span


@njit(cache=True, inline="always")
def _worst(peak: float, low: float, worst_frac: float, worst_amount: float) -> tuple[float, float]:
    """The worst figures so far, with those of the bars under ``peak`` (lowest ``low``)."""
    if peak > 0:
        frac = low / peak - 1.0
        if not (frac >= worst_frac):  # also takes the first one (worst_frac NaN)
            worst_frac = frac
    return worst_frac, min(worst_amount, low - peak)
