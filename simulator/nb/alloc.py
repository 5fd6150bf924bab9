"""Allocating and growing the venue state inside numba (the engine and sweeps share these)."""

import numpy as np
from numba import njit

from simulator import state as S
from tradetower import kernel_abi as K
from tradetower import risk_nb as R
from tradetower.jit_options import kernel_jit_inline


@njit(cache=True)
def pending_rows_nb(max_actions: int) -> int:
    """Rows a fresh queue of pending events gets: room for the reactions to one event. The
    loop grows it before any event that could need more (:func:`pending_need_nb`), and the
    simulated exchange drains it after every call."""
    return 2 * max_actions + 80


@kernel_jit_inline
def pending_need_nb(st: S.SimState) -> int:
    """Rows the queue must have before the next event. Its rows up to the tail hold events of
    distinct closed orders; one event and the reaction to it can add one for each active order
    (a cancel-all, a liquidation) and two per action (an order placed, then cancelled or
    refused). The order log's rows bound this too, but grow with every order a run places."""
    c = st.counters
    return c[S.C_PEND_TAIL] + c[S.C_N_ACTIVE] + 2 * int(st.params[S.P_MAX_ACTIONS]) + 16


@njit(cache=True)
def min_log_rows_nb(max_actions: int) -> int:
    """Rows every log starts with at least: the headroom the loop keeps free before each event
    (:func:`headroom_nb`) and 64 more. With fewer (the timer log had 64), every run stopped at
    its first event to grow them: a second trip through Python, about 0.1 ms a run."""
    return max_actions + 8 + 64


@njit(cache=True)
def risk_log_rows_nb(times: np.ndarray, time_scale: np.ndarray) -> int:
    """Rows the risk log needs: a daily pause and resume for every UTC day, plus room."""
    if times.shape[0] == 0:
        return 8
    first = times[0] * time_scale[0] // time_scale[1]
    last = times[times.shape[0] - 1] * time_scale[0] // time_scale[1]
    days = (last - first) // int(R.DAY_MS) + 2
    return int(2 * days + 8)


@njit(cache=True)
def allocate_nb(
    ohlcv: np.ndarray,
    times: np.ndarray,
    time_scale: np.ndarray,
    inst: np.ndarray,
    params: np.ndarray,
    funding: np.ndarray,
    signals: np.ndarray,
    sig_bars: np.ndarray,
    capacity: int,
    lows: np.ndarray,
    highs: np.ndarray,
) -> S.SimState:
    n = ohlcv.shape[0]
    k = ohlcv.shape[1]
    max_actions = int(params[S.P_MAX_ACTIONS])
    floor = min_log_rows_nb(max_actions)
    capacity = max(capacity, floor)
    st = S.SimState(
        ohlcv,
        times,
        time_scale,
        inst,
        funding,
        signals,
        sig_bars,
        params,
        np.empty(S.N_ACCOUNT),
        np.empty((k, S.N_POSITION)),
        np.empty((capacity, S.N_ORDER)),
        np.empty(capacity, dtype=np.int64),
        np.empty((capacity, S.N_FILL)),
        np.empty((max(floor, capacity // 4), S.N_TRIGGER)),
        np.empty(max(floor, capacity // 4), dtype=np.int64),
        np.empty((floor, S.N_TIMER), dtype=np.int64),
        np.empty((pending_rows_nb(max_actions), K.N_EVENT)),
        np.empty((k, 2)),
        np.empty((k, 4)),
        np.empty(k),
        np.empty(n if funding.shape[0] > 0 else 0),
        np.empty(S.N_COUNTERS, dtype=np.int64),
        np.empty(R.RT_RING + max(int(params[S.P_RISK_RATE]), 0)),
        np.empty(R.N_MONITOR),
        np.empty((risk_log_rows_nb(times, time_scale), S.N_RISK_LOG)),
        lows,
        highs,
    )
    reset_nb(st)
    return st


@njit(cache=True)
def reset_nb(st: S.SimState) -> None:
    """Every mutable array back to a fresh run's values, in place, keeping its size.

    :func:`allocate_nb` ends here, so a state reset for the next run of a sweep equals a
    freshly allocated one (its logs may be longer, which no run can observe). Sweeps reuse one
    state per thread: allocating per run costs page faults wherever the allocator hands big
    blocks back to the system (Dask workers set ``MALLOC_TRIM_THRESHOLD_``, which does).

    The logs (orders, fills, triggers, timers and the two id lists) are not cleared: a row is
    written whole when it is appended (an order's and a trigger's row is zeroed first) and
    nothing reads a row at or past its log's counter (``tests/simulator/test_log_rows.py``
    fills them with garbage first). Clearing them cost a year-of-minutes SMA run 0.2 ms for
    the 18,000 rows its logs start with, most of which it never reaches."""
    st.account[:] = 0.0
    st.account[S.AC_CASH] = st.params[S.P_CASH0]
    st.pos[:] = 0.0
    st.pos[:, S.PS_LIQ] = np.nan
    st.pos[:, S.PS_MARK] = np.nan
    st.pending[:] = 0.0
    st.bounds[:, 0] = -np.inf
    st.bounds[:, 1] = np.inf
    st.path[:] = np.nan
    st.vol_used[:] = 0.0
    st.cflow[:] = 0.0
    st.counters[:] = 0
    st.counters[S.C_NEXT_TIMER] = S.NO_TIMER
    st.rate[:] = 0.0
    R.reset_monitor_nb(st.monitor)
    st.risk_log[:] = 0.0


@njit(cache=True)
def _bigger_f(a: np.ndarray, room: int) -> np.ndarray:
    """``a``'s rows in a log twice as long. The new rows are left as they come, as a fresh
    log's are (:func:`reset_nb`): each is written whole when appended, so clearing them would
    only fault in pages the run may never reach."""
    out = np.empty((a.shape[0] * 2 + room, a.shape[1]))
    out[: a.shape[0]] = a
    return out


@njit(cache=True)
def _bigger_i(a: np.ndarray, room: int) -> np.ndarray:
    """:func:`_bigger_f` for an integer log."""
    out = np.empty((a.shape[0] * 2 + room, a.shape[1]), dtype=np.int64)
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
    trig, trig_live = st.trig, st.trig_live
    if c[S.C_N_TRIG] + room >= trig.shape[0]:
        trig = _bigger_f(trig, room)
        trig_live = np.zeros(trig.shape[0], dtype=np.int64)
        trig_live[: st.trig_live.shape[0]] = st.trig_live
    timers = st.timers
    if c[S.C_N_TIMERS] + room >= timers.shape[0]:
        timers = _bigger_i(timers, room)
    pending = st.pending
    need = pending_need_nb(st)
    if pending.shape[0] < need:
        pending = np.zeros((max(need, 2 * pending.shape[0]), pending.shape[1]))
        tail = c[S.C_PEND_TAIL]  # only the queued rows: the queue is nearly always empty, and
        pending[:tail] = st.pending[:tail]  # copying the rest would touch pages never read
    return S.SimState(
        st.ohlcv,
        st.times,
        st.time_scale,
        st.inst,
        st.funding,
        st.signals,
        st.sig_bars,
        st.params,
        st.account,
        st.pos,
        orders,
        active,
        fills,
        trig,
        trig_live,
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
