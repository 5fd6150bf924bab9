"""Allocating and growing the venue state inside numba (the engine and sweeps share these)."""

import numpy as np
from numba import njit

from simulator import state as S
from tradetower import kernel_abi as K
from tradetower import risk_nb as R


@njit(cache=True)
def pending_rows_nb(order_rows: int, max_actions: int) -> int:
    """Rows the queue of pending events needs. Each queued event is the cancel or refusal of a
    distinct order, so the queue never holds more entries than the order log has rows."""
    return order_rows + 2 * max_actions + 16


@njit(cache=True)
def risk_log_rows_nb(time_ms: np.ndarray) -> int:
    """Rows the risk log needs: a daily pause and resume for every UTC day, plus room."""
    if time_ms.shape[0] == 0:
        return 8
    days = (time_ms[time_ms.shape[0] - 1] - time_ms[0]) // int(R.DAY_MS) + 2
    return int(2 * days + 8)


@njit(cache=True)
def allocate_nb(
    ohlcv: np.ndarray,
    time_ms: np.ndarray,
    inst: np.ndarray,
    params: np.ndarray,
    funding: np.ndarray,
    signals: np.ndarray,
    capacity: int,
    lows: np.ndarray,
    highs: np.ndarray,
) -> S.SimState:
    n = ohlcv.shape[0]
    k = ohlcv.shape[1]
    max_actions = int(params[S.P_MAX_ACTIONS])
    account = np.zeros(S.N_ACCOUNT)
    account[S.AC_CASH] = params[S.P_CASH0]
    pos = np.zeros((k, S.N_POSITION))
    pos[:, S.PS_LIQ] = np.nan
    pos[:, S.PS_MARK] = np.nan
    bounds = np.empty((k, 2))
    bounds[:, 0] = -np.inf
    bounds[:, 1] = np.inf
    counters = np.zeros(S.N_COUNTERS, dtype=np.int64)
    counters[S.C_NEXT_TIMER] = S.NO_TIMER
    monitor = np.zeros(R.N_MONITOR)
    R.reset_monitor_nb(monitor)
    return S.SimState(
        ohlcv,
        time_ms,
        inst,
        funding,
        signals,
        params,
        account,
        pos,
        np.zeros((capacity, S.N_ORDER)),
        np.zeros(capacity, dtype=np.int64),
        np.zeros((capacity, S.N_FILL)),
        np.zeros((max(64, capacity // 4), S.N_TRIGGER)),
        np.zeros((64, S.N_TIMER), dtype=np.int64),
        np.zeros((pending_rows_nb(capacity, max_actions), K.N_EVENT)),
        bounds,
        np.full((k, 4), np.nan),
        np.zeros(k),
        np.zeros(n if funding.shape[0] > 0 else 0),
        counters,
        np.zeros(R.RT_RING + max(int(params[S.P_RISK_RATE]), 0)),
        monitor,
        np.zeros((risk_log_rows_nb(time_ms), S.N_RISK_LOG)),
        lows,
        highs,
    )


@njit(cache=True)
def _bigger_f(a: np.ndarray, room: int) -> np.ndarray:
    out = np.zeros((a.shape[0] * 2 + room, a.shape[1]))
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def _bigger_i(a: np.ndarray, room: int) -> np.ndarray:
    out = np.zeros((a.shape[0] * 2 + room, a.shape[1]), dtype=np.int64)
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def headroom_nb(st: S.SimState) -> int:
    """Rows a log must keep free before an event: one event can add this many at most."""
    return int(st.params[S.P_MAX_ACTIONS]) + 8


@njit(cache=True)
def grow_nb(st: S.SimState) -> S.SimState:
    """Double every log that lacks :func:`headroom_nb` free rows (the loop's own test)."""
    c = st.counters
    room = headroom_nb(st)
    orders, active = st.orders, st.active
    if c[S.C_N_ORDERS] + room >= orders.shape[0]:
        orders = _bigger_f(orders, room)
        active = np.zeros(orders.shape[0], dtype=np.int64)
        active[: st.active.shape[0]] = st.active
    fills = st.fills
    if c[S.C_N_FILLS] + room >= fills.shape[0]:
        fills = _bigger_f(fills, room)
    trig = st.trig
    if c[S.C_N_TRIG] + room >= trig.shape[0]:
        trig = _bigger_f(trig, room)
    timers = st.timers
    if c[S.C_N_TIMERS] + room >= timers.shape[0]:
        timers = _bigger_i(timers, room)
    pending = st.pending
    need = pending_rows_nb(orders.shape[0], int(st.params[S.P_MAX_ACTIONS]))
    if pending.shape[0] < need:
        pending = np.zeros((need, pending.shape[1]))
        pending[: st.pending.shape[0]] = st.pending
    return S.SimState(
        st.ohlcv,
        st.time_ms,
        st.inst,
        st.funding,
        st.signals,
        st.params,
        st.account,
        st.pos,
        orders,
        active,
        fills,
        trig,
        timers,
        pending,
        st.bounds,
        st.path,
        st.vol_used,
        st.cflow,
        st.counters,
        st.rate,
        st.monitor,
        st.risk_log,
        st.lows,
        st.highs,
    )
