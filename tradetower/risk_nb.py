"""The shared risk rules (STRATEGIES.md §4) as compiled functions on plain arrays.

Nothing here knows the simulator: the pre-trade checks take numbers, the rate limiter keeps its
clock in a small float array (:data:`RT_RING` + the limit), and the intra-trade monitor keeps
its state in another (:data:`N_MONITOR`). The simulator calls them from its order placement and
its bar loop; the live runner can call the same functions on its own copies of the arrays.
All are compiled with :func:`~tradetower.jit_options.kernel_jit` and allocate nothing.
"""

import math

import numpy as np

from tradetower.bots import codes as C
from tradetower.jit_options import kernel_jit, kernel_jit_inline

RATE_WINDOW_MS = 60_000.0
DAY_MS = 86_400_000.0

# --- rate limiter state (float64 vector of RT_RING + max_orders_per_minute) ---
RT_LAST = 0  # paced time of the last accepted order (epoch ms)
RT_COUNT = 1  # orders accepted so far
RT_RING = 2  # the times of the last `limit` accepted orders, a ring indexed by RT_COUNT

# --- intra-trade monitor state (float64 vector of N_MONITOR) ---
MN_PEAK = 0  # highest equity seen (NaN before the first observation)
MN_DAY = 1  # UTC day number of the last observation (-1 before the first)
MN_DAY_START = 2  # equity at the start of that UTC day
MN_LAST_EQ = 3  # equity at the last observation
MN_DAILY_PAUSED = 4  # 1 while the daily loss limit holds the bot paused
MN_DD_DONE = 5  # 1 once the drawdown limit closed the bot
MN_KILL_DONE = 6  # 1 once the kill switch fired (latched)
MN_PEND_RESUME = 7  # commands decided but not yet handed out
MN_PEND_KILL = 8
MN_PEND_DD = 9
MN_PEND_PAUSE = 10
MN_DD_VALUE = 11  # drawdown (percent of the peak) when the limit was hit
MN_LOSS_VALUE = 12  # the day's PnL when the daily limit was hit
N_MONITOR = 13

# Rules, as recorded in risk events
RULE_KILL_SWITCH = 1
RULE_MAX_DRAWDOWN = 2
RULE_DAILY_LOSS = 3
RULE_NEW_TRADING_DAY = 4


def new_monitor() -> np.ndarray:
    """A fresh intra-trade monitor (Python side; the simulator fills its own in numba)."""
    mon = np.zeros(N_MONITOR)
    reset_monitor_nb(mon)
    return mon


@kernel_jit
def reset_monitor_nb(mon: np.ndarray) -> None:
    mon[:] = 0.0
    mon[MN_PEAK] = np.nan
    mon[MN_DAY] = -1.0
    mon[MN_LAST_EQ] = np.nan


# ------------------------------------------------------------------------------ pre-trade


@kernel_jit_inline
def notional_over_cap_nb(qty: float, ref_price: float, cap: float) -> bool:
    """True when ``cap`` is on (> 0) and qty · price is above it (an unknown price passes)."""
    if cap <= 0.0 or ref_price != ref_price:
        return False
    return qty * ref_price > cap * (1.0 + 1e-12)


@kernel_jit_inline
def increases_exposure_nb(pos_qty: float, side: float, qty: float) -> bool:
    return abs(pos_qty + side * qty) > abs(pos_qty) + 1e-12


@kernel_jit_inline
def leverage_over_cap_nb(
    cap: float,
    setting: float,
    other_exposure: float,
    pos_qty: float,
    side: float,
    qty: float,
    ref_price: float,
    equity: float,
) -> bool:
    """True when ``cap`` is on (> 0) and an exposure-increasing order would trade at a leverage
    setting above it, or lift gross exposure (``other_exposure`` of the other instruments plus
    this one's position after the order, at ``ref_price``) above ``cap`` times ``equity``."""
    if cap <= 0.0 or not increases_exposure_nb(pos_qty, side, qty):
        return False
    if setting > cap + 1e-12:
        return True
    if ref_price != ref_price:
        return False
    exposure = other_exposure + abs(pos_qty + side * qty) * ref_price
    if not equity > 0.0:
        return True
    return exposure > cap * equity * (1.0 + 1e-9)


@kernel_jit_inline
def paced_time_nb(rate: np.ndarray, now_ms: float, spacing_ms: float) -> float:
    """When the next order goes out: no earlier than ``now_ms`` and ``spacing_ms`` after the
    last accepted one (the k-th order of one reaction at now + k · spacing)."""
    if rate[RT_COUNT] == 0.0:
        return now_ms
    return float(max(now_ms, rate[RT_LAST] + spacing_ms))


@kernel_jit_inline
def rate_allows_nb(rate: np.ndarray, at_ms: float, limit: int) -> bool:
    """True when an order at ``at_ms`` keeps the accepted orders of the rolling minute
    (at_ms − 60 s, at_ms] at ``limit`` or fewer."""
    n = int(rate[RT_COUNT])
    if n < limit:
        return True
    oldest = rate[RT_RING + n % limit]  # the limit-th most recent accepted order
    return bool(oldest <= at_ms - RATE_WINDOW_MS)


@kernel_jit_inline
def rate_record_nb(rate: np.ndarray, at_ms: float, limit: int) -> None:
    n = int(rate[RT_COUNT])
    rate[RT_RING + n % limit] = at_ms
    rate[RT_COUNT] = n + 1
    rate[RT_LAST] = at_ms


# ---------------------------------------------------------------------------- intra-trade


@kernel_jit
def observe_nb(
    mon: np.ndarray,
    now_ms: float,
    equity: float,
    max_drawdown_pct: float,
    daily_loss_limit: float,
    kill_due: bool,
) -> None:
    """Update the monitor with the bot's equity at ``now_ms`` and decide the commands due
    (handed out by :func:`pop_command_nb`). Limits ≤ 0 are off. Once the kill switch or the
    drawdown limit has closed the bot, nothing more is decided."""
    if mon[MN_KILL_DONE] > 0.0 or mon[MN_DD_DONE] > 0.0:
        return
    if kill_due:
        mon[MN_KILL_DONE] = 1.0
        mon[MN_PEND_KILL] = 1.0
        mon[MN_PEND_RESUME] = 0.0
        mon[MN_PEND_PAUSE] = 0.0
        return
    day = math.floor(now_ms / DAY_MS)
    if mon[MN_DAY] != day:
        mon[MN_DAY_START] = equity if mon[MN_DAY] < 0.0 else mon[MN_LAST_EQ]
        mon[MN_DAY] = day
        if mon[MN_DAILY_PAUSED] > 0.0:
            mon[MN_DAILY_PAUSED] = 0.0
            mon[MN_PEND_RESUME] = 1.0
    mon[MN_LAST_EQ] = equity
    if not equity <= mon[MN_PEAK]:
        mon[MN_PEAK] = equity
    peak = mon[MN_PEAK]
    if max_drawdown_pct > 0.0 and peak > 0.0:
        dd = (peak - equity) / peak * 100.0
        if dd >= max_drawdown_pct - 1e-12:
            mon[MN_DD_DONE] = 1.0
            mon[MN_PEND_DD] = 1.0
            mon[MN_DD_VALUE] = dd
            mon[MN_PEND_RESUME] = 0.0
            mon[MN_PEND_PAUSE] = 0.0
            return
    if daily_loss_limit > 0.0 and mon[MN_DAILY_PAUSED] == 0.0:
        pnl = equity - mon[MN_DAY_START]
        if pnl <= -daily_loss_limit:
            mon[MN_DAILY_PAUSED] = 1.0
            mon[MN_LOSS_VALUE] = pnl
            if mon[MN_PEND_RESUME] > 0.0:
                mon[MN_PEND_RESUME] = 0.0  # still paused: the new day starts at a loss
            else:
                mon[MN_PEND_PAUSE] = 1.0


@kernel_jit_inline
def command_due_nb(mon: np.ndarray) -> bool:
    """True when :func:`pop_command_nb` has a command to hand out."""
    due: bool = (
        mon[MN_PEND_RESUME] > 0.0
        or mon[MN_PEND_KILL] > 0.0
        or mon[MN_PEND_DD] > 0.0
        or mon[MN_PEND_PAUSE] > 0.0
    )
    return due


@kernel_jit
def pop_command_nb(mon: np.ndarray) -> tuple[int, int, float]:
    """The next command the monitor decided: (command code, rule, measured value), or
    (0, 0, nan) when none is due. Order: resume, kill switch, drawdown close, daily pause."""
    if mon[MN_PEND_RESUME] > 0.0:
        mon[MN_PEND_RESUME] = 0.0
        return C.CMD_RESUME, RULE_NEW_TRADING_DAY, mon[MN_DAY_START]
    if mon[MN_PEND_KILL] > 0.0:
        mon[MN_PEND_KILL] = 0.0
        return C.CMD_KILL, RULE_KILL_SWITCH, mon[MN_LAST_EQ]
    if mon[MN_PEND_DD] > 0.0:
        mon[MN_PEND_DD] = 0.0
        return C.CMD_RISK_CLOSE, RULE_MAX_DRAWDOWN, mon[MN_DD_VALUE]
    if mon[MN_PEND_PAUSE] > 0.0:
        mon[MN_PEND_PAUSE] = 0.0
        return C.CMD_PAUSE, RULE_DAILY_LOSS, mon[MN_LOSS_VALUE]
    return 0, 0, np.nan
