"""Parameter sweeps inside numba: one compiled kernel, many parameter vectors, ``prange``.

Each combination allocates its own venue state, runs to the end, and is reduced to a row of
metrics before the next one starts, so memory stays flat in the number of combinations.
Compiled at import with an explicit signature: import this module lazily.
"""

from typing import Any

import numpy as np
from numba import njit, prange, types

from simulator import state as S
from simulator.nb.alloc import allocate_nb, grow_nb, reset_nb
from simulator.nb.compiled import KERNEL_TYPE, run_kernel_nb
from simulator.nb.loop import finish_nb
from simulator.nb.orders import apply_actions_nb
from tradetower import kernel_abi as K
from tradetower.jit_options import kernel_jit, kernel_jit_inline

M_FINAL_EQUITY = 0
M_RETURN_PCT = 1
M_MAX_DRAWDOWN_PCT = 2
M_N_FILLS = 3
M_N_ORDERS = 4
M_FEES = 5
M_EXPOSURE_PCT = 6
N_METRICS = 7
METRIC_NAMES = (
    "final_equity",
    "return_pct",
    "max_drawdown_pct",
    "n_fills",
    "n_orders",
    "fees_paid",
    "exposure_pct",
)


@kernel_jit
def write_metrics_nb(st: S.SimState, eq: float, worst: float, in_pos: int, out: np.ndarray) -> None:
    """The metrics row from the reduction's final equity, worst drawdown and bars held."""
    cash0 = st.params[S.P_CASH0]
    out[M_FINAL_EQUITY] = eq
    out[M_RETURN_PCT] = (eq / cash0 - 1.0) * 100.0 if cash0 > 0 else np.nan
    out[M_MAX_DRAWDOWN_PCT] = worst * 100.0
    out[M_N_FILLS] = st.counters[S.C_N_FILLS]
    out[M_N_ORDERS] = st.counters[S.C_N_ORDERS]
    out[M_FEES] = st.account[S.AC_FEES]
    out[M_EXPOSURE_PCT] = in_pos / st.ohlcv.shape[0] * 100.0


CHUNK = 32  # bars the reduction tests at once, branch-free (a few SIMD registers of them)


@kernel_jit_inline
def last_close_nb(close_px: np.ndarray, start: int, end: int, close: float) -> float:
    """The last non-NaN close of bars start..end-1, else ``close``."""
    for u in range(end - 1, start - 1, -1):
        c = close_px[u]
        if c == c:
            return c
    return close


@kernel_jit_inline
def watch_equity_nb(
    eq: float, peak: float, worst: float, below: float
) -> tuple[float, float, float]:
    """One bar's equity against the running peak and worst drawdown: (peak, worst, below).
    ``below``: equity under it may set a new worst drawdown (a little slack kept, so the
    division is made only then)."""
    if eq > peak:
        peak = eq
        below = peak * (1.0 + worst) + peak * 1e-9 if peak > 0 else -np.inf
    if eq < below:
        dd = eq / peak - 1.0
        if dd < worst:
            worst = dd
            below = peak * (1.0 + worst) + peak * 1e-9
    return peak, worst, below


@kernel_jit
def reduce_one_nb(st: S.SimState, close_px: np.ndarray, out: np.ndarray) -> None:
    """:func:`reduce_metrics_nb` for one instrument without funding: the same figures, bit for
    bit, without visiting every bar. Between two fills the cash and position are fixed, so
    flat stretches are settled at once, and a held stretch goes ``CHUNK`` bars at a time: a
    chunk where no bar's equity sets a new peak or may be a new worst drawdown (a little
    slack kept) changes nothing and is passed after one branch-free test of its bars."""
    n = st.ohlcv.shape[0]
    cash = st.params[S.P_CASH0]
    pos = 0.0
    close = 0.0
    nf = st.counters[S.C_N_FILLS]
    j = 0
    peak = -np.inf
    worst = 0.0
    below = -np.inf  # equity under this may set a new worst drawdown
    in_pos = 0
    t = 0
    while t < n:
        while j < nf and st.fills[j, S.F_BAR] == t:
            signed = st.fills[j, S.F_SIDE] * st.fills[j, S.F_QTY]
            cash -= signed * st.fills[j, S.F_PRICE] + st.fills[j, S.F_FEE]
            pos += signed
            j += 1
        end = int(st.fills[j, S.F_BAR]) if j < nf else n
        end = max(end, t + 1)
        if abs(pos) <= 1e-12:  # flat: every bar's equity is the cash
            close = last_close_nb(close_px, t, end, close)
            peak, worst, below = watch_equity_nb(cash, peak, worst, below)
            t = end
            continue
        in_pos += end - t
        while t < end:
            if t + CHUNK <= end:
                base = np.uint64(t)  # unsigned indices: no negative-index wrap, vectorises
                acts = np.int64(0)
                for u in range(CHUNK):
                    c = close_px[base + np.uint64(u)]
                    e = cash + pos * c
                    acts |= np.int64(e > peak) | np.int64(e < below)
                if acts == 0:  # (a bar without a close repeats the equity of the one before)
                    close = last_close_nb(close_px, t, t + CHUNK, close)
                    t += CHUNK
                    continue
                stop = t + CHUNK
            else:
                stop = end
            for u in range(t, stop):
                c = close_px[u]
                if c == c:
                    close = c
                peak, worst, below = watch_equity_nb(cash + pos * close, peak, worst, below)
            t = stop
    eq = cash + pos * close if abs(pos) > 1e-12 else cash
    write_metrics_nb(st, eq, worst, in_pos, out)


@njit(cache=True)
def reduce_metrics_nb(st: S.SimState, close_px: np.ndarray, out: np.ndarray) -> None:
    """Equity at every bar close rebuilt from the fill log in one pass, reduced to metrics."""
    n = st.ohlcv.shape[0]
    k = st.ohlcv.shape[1]
    cash = st.params[S.P_CASH0]
    pos = np.zeros(k)
    close = np.zeros(k)
    nf = st.counters[S.C_N_FILLS]
    j = 0
    peak = -np.inf
    worst = 0.0
    in_pos = 0
    eq = cash
    flows = st.cflow.shape[0] > 0
    if k == 1 and not flows and close_px.shape[0] == n:
        reduce_one_nb(st, close_px, out)
        return
    for t in range(n):
        while j < nf and st.fills[j, S.F_BAR] == t:
            f = st.fills[j]
            signed = f[S.F_SIDE] * f[S.F_QTY]
            cash -= signed * f[S.F_PRICE] + f[S.F_FEE]
            pos[int(f[S.F_INST])] += signed
            j += 1
        if flows:
            cash += st.cflow[t]
        eq = cash
        held = False
        for i in range(k):
            c = st.ohlcv[t, i, 3]
            if c == c:
                close[i] = c
            if abs(pos[i]) > 1e-12:
                eq += pos[i] * close[i]
                held = True
        if held:
            in_pos += 1
        if eq > peak:
            peak = eq
        if peak > 0:
            dd = eq / peak - 1.0
            if dd < worst:
                worst = dd
    write_metrics_nb(st, eq, worst, in_pos, out)


@njit(cache=True)
def run_into_nb(
    st: S.SimState,
    ev: np.ndarray,
    actions: np.ndarray,
    kernel: Any,
    params: np.ndarray,
    kstate: np.ndarray,
    close_at_end: bool,
    extra_idx: np.ndarray,
    close_px: np.ndarray,
    out: np.ndarray,
    wanted: int,
) -> S.SimState:
    """One whole backtest of a compiled kernel on a fresh (or reset) state, reduced to ``out``;
    returns the state, which may have grown. ``close_px`` is the one instrument's closes as a
    contiguous array (shared by every run: the reduction then reads a fifth of the memory), or
    empty. ``wanted``: the kernel's event mask (``KernelStrategy.event_mask``)."""
    ev[:] = 0.0
    actions[:] = 0.0
    while True:
        et = run_kernel_nb(st, kernel, params, kstate, ev, actions, wanted)
        if et != K.EV_BUFFER_FULL:
            break
        st = grow_nb(st)
    if et == K.EV_ACTIONS_OVERFLOW:
        out[:] = np.nan  # the run cannot go on; its row says so instead of a wrong figure
        return st
    ev[:] = 0.0
    ev[K.E_TYPE] = K.EV_STOP
    ev[K.E_BAR] = st.ohlcv.shape[0] - 1
    n_act = kernel(params, kstate, ev, actions) if (wanted >> K.EV_STOP) & 1 else 0
    if n_act > actions.shape[0]:
        out[:] = np.nan
        return st
    if n_act > 0:
        st = grow_nb(st)
        apply_actions_nb(st, actions, n_act)
    finish_nb(st, close_at_end)
    reduce_metrics_nb(st, close_px, out)
    for e in range(extra_idx.shape[0]):
        out[N_METRICS + e] = kstate[extra_idx[e]]
    return st


@njit(cache=True)
def fresh_nb(
    ohlcv: np.ndarray,
    times: np.ndarray,
    time_scale: np.ndarray,
    inst: np.ndarray,
    simparams: np.ndarray,
    capacity: int,
    lows: np.ndarray,
    highs: np.ndarray,
) -> S.SimState:
    k = ohlcv.shape[1]
    return allocate_nb(
        ohlcv,
        times,
        time_scale,
        inst,
        simparams,
        np.zeros((0, k)),
        np.zeros((0, k), dtype=np.int64),
        np.zeros(1, dtype=np.int64),  # no signal bars: sweeps run bots without signals
        capacity,
        lows,
        highs,
    )


@njit(cache=True)
def run_one_nb(
    ohlcv: np.ndarray,
    times: np.ndarray,
    time_scale: np.ndarray,
    inst: np.ndarray,
    simparams: np.ndarray,
    kernel: Any,
    params: np.ndarray,
    kstate: np.ndarray,
    capacity: int,
    close_at_end: bool,
    extra_idx: np.ndarray,
    close_px: np.ndarray,
    lows: np.ndarray,
    highs: np.ndarray,
    out: np.ndarray,
    wanted: int,
) -> None:
    """One whole backtest on its own freshly allocated state (the serial path). ``times`` and
    ``time_scale``: ``MarketData.ticks`` and its ``tick_scale`` (see ``simulator.nb.times``)."""
    st = fresh_nb(ohlcv, times, time_scale, inst, simparams, capacity, lows, highs)
    ev = np.zeros(K.N_EVENT)
    actions = np.zeros((int(simparams[S.P_MAX_ACTIONS]), K.N_ACTION))
    run_into_nb(
        st, ev, actions, kernel, params, kstate, close_at_end, extra_idx, close_px, out, wanted
    )


@njit(
    types.void(
        types.float64[::1, :, :],  # MarketData's Fortran order
        types.int64[::1],
        types.int64[::1],
        types.float64[:, ::1],
        types.float64[::1],
        KERNEL_TYPE,
        types.float64[:, ::1],
        types.float64[:, ::1],
        types.int64[::1],
        types.int64,
        types.boolean,
        types.int64[::1],
        types.float64[::1],
        types.float32[::1],
        types.float32[::1],
        types.float64[:, ::1],
        types.int64,
        types.int64,
    ),
    parallel=True,
    cache=True,
)
def sweep_nb(  # type: ignore[no-untyped-def]
    ohlcv,
    times,
    time_scale,
    inst,
    simparams,
    kernel,
    params,
    kstates,
    order,
    capacity,
    close_at_end,
    extra_idx,
    close_px,
    lows,
    highs,
    out,
    threads,
    wanted,
):
    """Run every row of ``params``/``kstates`` (in the given ``order``) into ``out`` rows.

    One block per thread (``threads``: numba's thread count, passed in because reading it here
    would stop the cache), each taking every ``blocks``-th combination of ``order`` (shuffled by
    the caller, so blocks cost about the same) on one state reset between runs."""
    n = order.shape[0]
    blocks = max(1, min(threads, n))
    for b in prange(blocks):
        st = fresh_nb(ohlcv, times, time_scale, inst, simparams, capacity, lows, highs)
        ev = np.zeros(K.N_EVENT)
        actions = np.zeros((int(simparams[S.P_MAX_ACTIONS]), K.N_ACTION))
        for c in range(b, n, blocks):
            if c != b:
                reset_nb(st)
            j = order[c]
            st = run_into_nb(
                st,
                ev,
                actions,
                kernel,
                params[j].copy(),
                kstates[j].copy(),
                close_at_end,
                extra_idx,
                close_px,
                out[j],
                wanted,
            )
