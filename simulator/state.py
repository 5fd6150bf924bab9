"""The simulated venue's state: plain C-contiguous numpy arrays grouped in one named tuple.

Column layouts are integer constants so numba freezes them at compile time. The logs
(orders, fills, triggers, timers) grow: the compiled loop returns ``EV_BUFFER_FULL`` when one
is close to full and :func:`grow` hands it a larger copy.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# --- simulation parameters (float64 vector) ---
P_CASH0 = 0
P_SLIP_MODE = 1  # 0 none, 1 fixed bps, 2 volume based
P_SLIP_BPS = 2
P_IMPACT = 3
P_MAX_BPS = 4
P_PARTICIPATION = 5  # 0 = no cap
P_INTRABAR = 6  # 0 default (nearer extreme first), 1 conservative (adverse extreme first)
P_WANTS_BARS = 7
P_START_BAR = 8
P_LIQUIDATION = 9  # 1 = margin positions are liquidated at their liquidation price
P_MAX_ACTIONS = 10
# Risk rules (tradetower.risk.RiskConfig); 0 turns a limit off, P_KILL_BAR < 0 has no kill switch
P_RISK_NOTIONAL = 11
P_RISK_LEVERAGE = 12
P_RISK_RATE = 13  # max orders per rolling minute
P_RISK_SPACING = 14  # ms between a bot's orders
P_RISK_DRAWDOWN = 15  # percent below the equity peak
P_RISK_DAILY_LOSS = 16  # quote currency
P_KILL_BAR = 17
N_PARAMS = 18

SLIP_NONE = 0
SLIP_FIXED = 1
SLIP_VOLUME = 2

# --- instrument table ---
I_TICK = 0
I_LOT = 1
I_MIN_QTY = 2
I_MIN_NOTIONAL = 3
I_MAKER = 4
I_TAKER = 5
I_LEVERAGE = 6
I_MARGIN = 7
I_TICK_DEC = 8
I_LOT_DEC = 9
N_INST = 10

# --- account ---
AC_CASH = 0
AC_LOCKED = 1  # quote reserved by resting spot buys
AC_FEES = 2
AC_FUNDING = 3
AC_SLIPPAGE = 4
N_ACCOUNT = 5

# --- positions, one row per instrument ---
PS_QTY = 0
PS_AVG = 1
PS_LOCKED = 2  # base reserved by resting spot sells
PS_LIQ = 3  # liquidation price, NaN when none
PS_MARK = 4  # last known price
PS_FROM = 5  # path position of the current bar where the position last changed
N_POSITION = 6

# --- orders (the order log; an order's id is its row) ---
O_INST = 0
O_SIDE = 1
O_TYPE = 2
O_PRICE = 3
O_QTY = 4
O_FILLED = 5
O_STATUS = 6
O_PLACED_BAR = 7
O_DONE_BAR = 8
O_TIF = 9
O_REDUCE = 10
O_TAG = 11
O_SIZE_MODE = 12
O_TAKER = 13  # marketable when placed: pays the taker rate
O_LAST_HIT_BAR = 14
O_AVG_FILL = 15
O_REASON = 16
O_LOCK = 17  # quote (buys) or base (sells) still reserved by this order
O_FEES = 18
N_ORDER = 19

# --- fills ---
F_ORDER = 0
F_BAR = 1
F_INST = 2
F_SIDE = 3
F_QTY = 4
F_PRICE = 5
F_FEE = 6
F_TAKER = 7
F_LIQUIDATION = 8
F_SLIPPAGE = 9  # cost of slippage in quote
N_FILL = 10

# --- triggers ---
T_INST = 0
T_KIND = 1
T_LEVEL = 2
T_DIST = 3
T_REF = 4
T_ARMED_BAR = 5
T_ACTIVE = 6
T_TAG = 7
T_FIRED_BAR = 8
N_TRIGGER = 9

# --- timers (int64) ---
TM_DUE = 0
TM_ACTIVE = 1
TM_TAG = 2
N_TIMER = 3

# --- counters (int64) ---
C_BAR = 0
C_STAGE = 1
C_N_ORDERS = 2
C_N_ACTIVE = 3
C_N_FILLS = 4
C_N_TRIG = 5
C_N_TIMERS = 6
C_PEND_HEAD = 7
C_PEND_TAIL = 8
C_STARTED = 9
C_N_TRAIL = 10
C_N_MARKET = 11  # open orders that act on any bar (market, IOC): no bar is quiet
C_NEXT_TIMER = 12
C_SIG_INST = 13
C_ENDED = 14
C_N_ACTIVE_TRIG = 15  # armed triggers: the length of ``trig_live``
C_BOUNDS_STALE = 16  # 1 when orders, triggers or timers changed since the bounds were computed
C_HITS_LEFT = 17  # hits of the current bar not yet handed out; -1 before its first scan
C_N_RISK_LOG = 18  # rows used in the risk log
C_FLATTEN_BAR = 19  # 1 + the bar at whose close the kill switch flattens what is left; 0: none
# Where the jump to the next signal (simulator.nb.loop.next_signal_nb) is in ``sig_bars``: the
# first entry at or after the bar it was last asked from. Any value in range is correct (it
# moves either way); kept so that a run's jumps cost one step each.
C_SIG_CURSOR = 20
N_COUNTERS = 21

# bar stages
STAGE_NEW = 0
STAGE_INTRABAR = 1
STAGE_START = 2
STAGE_TIMERS = 3
STAGE_SIGNALS = 4
STAGE_BAR = 5
STAGE_DONE = 6
STAGE_RISK = 7  # after the signals: the intra-trade monitor looks at the bar's close
STAGE_RISK_POP = 8  # hand out the commands it decided, one event each

# --- risk log (commands the risk rules sent) ---
RL_BAR = 0
RL_TIME = 1
RL_RULE = 2  # tradetower.risk_nb RULE_*
RL_COMMAND = 3  # the CMD_* code sent to the bot
RL_VALUE = 4  # the measure that tripped it (drawdown %, the day's PnL, equity)
RL_EQUITY = 5
N_RISK_LOG = 6
KILL_FLATTEN_ORDER = -3  # F_ORDER of the kill switch's own closing fills

NO_TIMER = np.iinfo(np.int64).max


class SimState(NamedTuple):
    ohlcv: np.ndarray  # f8[n, k, 5], Fortran order (tradetower.domain.bars.MarketData)
    times: np.ndarray  # i8[n]: epoch integers in the data's own unit (simulator.nb.times)
    time_scale: np.ndarray  # i8[2]: (mul, div), a bar's epoch ms being times[t] * mul // div
    inst: np.ndarray  # f8[k, N_INST]
    funding: np.ndarray  # f8[n, k] or f8[0, k]
    signals: np.ndarray  # i8[n, k] or i8[0, k]
    sig_bars: np.ndarray  # i8[m + 1]: the bars holding a signal, then n (signal_bars_nb)
    params: np.ndarray  # f8[N_PARAMS]
    account: np.ndarray  # f8[N_ACCOUNT]
    pos: np.ndarray  # f8[k, N_POSITION]
    orders: np.ndarray  # f8[cap, N_ORDER]
    active: np.ndarray  # i8[cap]
    fills: np.ndarray  # f8[cap, N_FILL]
    trig: np.ndarray  # f8[cap, N_TRIGGER]
    trig_live: np.ndarray  # i8[trig rows]: the armed triggers' ids in arming order (scans read
    # these, never the whole log: a bot re-arming its triggers grows the log with every fill)
    timers: np.ndarray  # i8[cap, N_TIMER]
    pending: np.ndarray  # f8[cap, N_EVENT]
    bounds: np.ndarray  # f8[k, 2]: lowest-side and highest-side levels that could act
    path: np.ndarray  # f8[k, 4]: the current bar's intrabar path
    vol_used: np.ndarray  # f8[k]: volume already taken in the current bar
    cflow: np.ndarray  # f8[n]: non-trade cash flows (funding) per bar; f8[0] without funding
    counters: np.ndarray  # i8[N_COUNTERS]
    rate: np.ndarray  # f8[RT_RING + max orders per minute]: the rate limiter (tradetower.risk_nb)
    monitor: np.ndarray  # f8[N_MONITOR]: the intra-trade monitor (tradetower.risk_nb)
    risk_log: np.ndarray  # f8[rows, N_RISK_LOG]: two rows a day plus room, never grows
    lows: np.ndarray  # f4[n]: one instrument's lows rounded down (the skip loop's stream); f4[0]
    highs: np.ndarray  # f4[n]: its highs rounded up (tradetower.domain.bars.outward_float32)


def allocate(
    ohlcv: np.ndarray,
    times: np.ndarray,
    inst: np.ndarray,
    params: np.ndarray,
    funding: np.ndarray | None = None,
    signals: np.ndarray | None = None,
    capacity: int = 1024,
    streams: tuple[np.ndarray, np.ndarray] | None = None,
    sig_bars: np.ndarray | None = None,
    time_scale: tuple[int, int] = (1, 1),
) -> SimState:
    """A fresh venue state over the given bars (see :func:`simulator.nb.alloc.allocate_nb`).

    ``times``: the bars' epoch integers, in milliseconds unless ``time_scale`` says otherwise:
    ``(mul, div)`` such that a bar's milliseconds are ``times[t] * mul // div``
    (``MarketData.ticks`` and ``MarketData.tick_scale``).

    ``sig_bars``: :func:`simulator.nb.signal_bars.signal_bars_nb` of ``signals``, when the
    caller has it already (the engine sizes the logs from it); else found here.

    ``streams``: one instrument's float32 lows and highs, rounded outwards
    (``MarketData.streams``), for the skip loop to read instead of the ``ohlcv`` columns: a
    quarter of the memory traffic, the same decisions. Worth it only when they already exist
    (``MarketData.built_streams``): building them costs more than one run saves."""
    empty = np.zeros(0, dtype=np.float32)
    lows, highs = streams if streams is not None else (empty, empty)
    from simulator.nb.alloc import allocate_nb

    k = ohlcv.shape[1]
    if funding is None:
        funding = np.zeros((0, k))
    if signals is None:
        signals = np.zeros((0, k), dtype=np.int64)
    signals = np.ascontiguousarray(signals, dtype=np.int64)
    if sig_bars is None:
        from simulator.nb.signal_bars import signal_bars_nb

        sig_bars = signal_bars_nb(signals)
    state: SimState = allocate_nb(
        np.asfortranarray(ohlcv, dtype=np.float64),  # MarketData's layout: one compile
        np.ascontiguousarray(times, dtype=np.int64),
        np.array(time_scale, dtype=np.int64),
        np.ascontiguousarray(inst, dtype=np.float64),
        np.ascontiguousarray(params, dtype=np.float64),
        np.ascontiguousarray(funding, dtype=np.float64),
        signals,
        np.ascontiguousarray(sig_bars, dtype=np.int64),
        int(capacity),
        lows,
        highs,
    )
    return state


def grow(state: SimState) -> SimState:
    """Double every log that is close to full (see :func:`simulator.nb.alloc.grow_nb`)."""
    from simulator.nb.alloc import grow_nb

    grown: SimState = grow_nb(state)
    return grown
