"""The trade metrics of a backtest's trade rows in one compiled pass (see
``simulator.metrics.trade_stats``): the floats of the numpy formulation, whose sums and means
are numpy's pairwise sums (:mod:`simulator.nb.pairwise`), without its thirty-odd calls."""

import numpy as np
from numba import njit

from simulator.nb.pairwise import numpy_sum_nb


@njit(cache=True)
def trade_figures_nb(
    long: np.ndarray,
    qty: np.ndarray,
    entry_price: np.ndarray,
    exit_price: np.ndarray,
    entry_fees: np.ndarray,
    exit_fees: np.ndarray,
    is_open: np.ndarray,
    entry_ns: np.ndarray,
    exit_ns: np.ndarray,
) -> tuple[bool, int, int, int, int, float, float, float, float, float, int, int, float]:
    """(done, closed trades, open trades, wins, losses, sum of wins, sum of losses, sum of
    net PnL, largest win, largest loss, longest run of wins, longest run of losses, sum of
    durations in seconds). Net PnL is ``TradeRows.net_pnl``'s; trades count in exit order.
    ``done`` is False, and nothing else is reported, when the closed rows are not already in
    exit order (the caller then sorts them in numpy)."""
    n_rows = qty.shape[0]
    pnl = np.empty(n_rows)
    seconds = np.empty(n_rows)
    n = 0
    last_exit = exit_ns[0] if n_rows else 0
    for k in range(n_rows):
        if is_open[k]:
            continue
        if n > 0 and exit_ns[k] < last_exit:
            return False, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0.0
        last_exit = exit_ns[k]
        direction = 1.0 if long[k] else -1.0
        gross = direction * (exit_price[k] - entry_price[k]) * qty[k]
        pnl[n] = gross - entry_fees[k] - exit_fees[k]
        seconds[n] = (exit_ns[k] - entry_ns[k]) / 10**9
        n += 1
    pnl = pnl[:n]
    wins = np.empty(n)
    losses = np.empty(n)
    n_win = 0
    n_loss = 0
    run_win = 0
    run_loss = 0
    best_win_run = 0
    best_loss_run = 0
    for k in range(n):
        x = pnl[k]
        if x > 0:
            wins[n_win] = x
            n_win += 1
        if x < 0:
            losses[n_loss] = x
            n_loss += 1
        run_win = run_win + 1 if x > 0 else 0
        run_loss = run_loss + 1 if x < 0 else 0
        best_win_run = max(best_win_run, run_win)
        best_loss_run = max(best_loss_run, run_loss)
    wins = wins[:n_win]
    losses = losses[:n_loss]
    largest_win = wins.max() if n_win else np.nan
    largest_loss = losses.min() if n_loss else np.nan
    return (
        True,
        n,
        n_rows - n,
        n_win,
        n_loss,
        numpy_sum_nb(wins),
        numpy_sum_nb(losses),
        numpy_sum_nb(pnl),
        largest_win,
        largest_loss,
        best_win_run,
        best_loss_run,
        numpy_sum_nb(seconds[:n]),
    )
