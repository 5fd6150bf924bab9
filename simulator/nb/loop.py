"""The event-skipping loop: advance through bars until something happens.

``next_event_inline_nb`` is the only place that walks bars. A bar is skipped with a few comparisons
when no resting order, trigger, liquidation, timer, signal or funding payment can act on it.
Otherwise the bar's intrabar path is fixed and its hits are handed out one at a time, earliest
first, so a strategy's reaction to one fill (a cancel, say) is in force for the rest of the bar.
Orders placed or triggers armed while bar t is processed act from bar t+1.
"""

import numpy as np

from simulator import state as S
from simulator.nb.alloc import pending_need_nb
from simulator.nb.execution import (
    apply_fill_nb,
    apply_funding_nb,
    execute_order_nb,
    liquidate_nb,
    slipped_price_nb,
)
from simulator.nb.orders import (
    apply_actions_nb,
    bounds_stale_nb,
    cancel_order_nb,
    disarm_trigger_nb,
    equity_nb,
    finish_order_nb,
    refresh_bounds_nb,
    update_bounds_nb,
    write_event_nb,
)
from simulator.nb.path import (
    hit_down_from_nb,
    hit_down_nb,
    hit_up_from_nb,
    hit_up_nb,
    set_path_nb,
    trail_hit_nb,
)
from simulator.nb.prefetch import prefetch_row
from simulator.nb.times import bar_ms_nb, ticks_upto_ms_nb
from tradetower import kernel_abi as K
from tradetower import risk_nb as R
from tradetower.bots import codes as C
from tradetower.jit_options import kernel_jit, kernel_jit_inline


@kernel_jit_inline
def bar_end_ms_nb(st: S.SimState, t: int) -> int:
    n = st.times.shape[0]
    if t + 1 < n:
        return bar_ms_nb(st, t + 1)
    if n > 1:
        return bar_ms_nb(st, t) + (bar_ms_nb(st, t) - bar_ms_nb(st, t - 1))
    return bar_ms_nb(st, t) + 1


@kernel_jit_inline
def timer_due_nb(st: S.SimState, t: int) -> bool:
    """True when a timer falls due before bar t ends. Without timers the bar's end is not read:
    it is the one bar time the skip loop has not brought into cache."""
    due = st.counters[S.C_NEXT_TIMER]
    return due != S.NO_TIMER and due < bar_end_ms_nb(st, t)


@kernel_jit_inline
def risk_watch_nb(st: S.SimState) -> bool:
    """True while an intra-trade limit watches every bar's equity (no bar is quiet)."""
    p = st.params
    if p[S.P_RISK_DRAWDOWN] <= 0.0 and p[S.P_RISK_DAILY_LOSS] <= 0.0:
        return False
    return st.monitor[R.MN_KILL_DONE] == 0.0 and st.monitor[R.MN_DD_DONE] == 0.0


@kernel_jit_inline
def kill_pending_nb(st: S.SimState) -> bool:
    return st.params[S.P_KILL_BAR] >= 0.0 and st.monitor[R.MN_KILL_DONE] == 0.0


@kernel_jit_inline
def risk_bar_nb(st: S.SimState) -> int:
    """The next bar the risk rules must see even if nothing else happens in it, or -1."""
    if kill_pending_nb(st):
        return int(st.params[S.P_KILL_BAR])
    return int(st.counters[S.C_FLATTEN_BAR]) - 1


@kernel_jit_inline
def is_quiet_nb(st: S.SimState, t: int) -> bool:
    """True when bar t cannot produce any event or state change."""
    c = st.counters
    if c[S.C_N_MARKET] > 0 or c[S.C_N_TRAIL] > 0 or st.params[S.P_WANTS_BARS] > 0:
        return False
    due = risk_bar_nb(st)
    if risk_watch_nb(st) or (due >= 0 and t >= due):
        return False
    if t == int(st.params[S.P_START_BAR]) and c[S.C_STARTED] == 0:
        return False
    if timer_due_nb(st, t):
        return False
    for i in range(st.bounds.shape[0]):
        if (
            st.signals.shape[0] > 0
            and st.signals[t, i] != 0
            and c[S.C_STARTED] != 0
            and not np.isnan(st.ohlcv[t, i, 3])
        ):
            return False
        if st.funding.shape[0] > 0 and st.funding[t, i] != 0.0 and st.pos[i, S.PS_QTY] != 0.0:
            return False
        lo = st.ohlcv[t, i, 2]
        if lo <= st.bounds[i, 0] or st.ohlcv[t, i, 1] >= st.bounds[i, 1]:
            return False
    return True


SKIP_CHUNK = 64  # bars the stream test takes at once: no early exit inside, so it vectorises


@kernel_jit_inline
def skip_stream_nb(
    lows: np.ndarray, highs: np.ndarray, lo: float, hi: float, t: int, limit: int
) -> int:
    """The first bar from t (before ``limit``) whose low reaches ``lo`` or high reaches ``hi``,
    else ``limit``, over the float32 streams. The first ``SKIP_CHUNK`` bars are walked one by
    one (most quiet stretches are short); a longer stretch is then tested a whole chunk at a
    time, and the chunk that holds the bar is walked."""
    stop = min(t + SKIP_CHUNK, limit)
    while t < stop and lows[t] > lo and highs[t] < hi:
        t += 1
    if t < stop:
        return t
    while t + SKIP_CHUNK <= limit:
        base = np.uint64(t)  # unsigned indices: no negative-index wrap, so LLVM vectorises
        reached = np.int64(0)
        for u in range(SKIP_CHUNK):
            at = base + np.uint64(u)
            reached |= np.int64(lows[at] <= lo) | np.int64(highs[at] >= hi)
        if reached:
            break
        t += SKIP_CHUNK
    while t < limit and lows[t] > lo and highs[t] < hi:
        t += 1
    return t


@kernel_jit_inline
def skip_rows_nb(
    ohlcv: np.ndarray,
    signals: np.ndarray,
    times: np.ndarray,
    due_tick: int,
    lo: float,
    hi: float,
    t: int,
    limit: int,
) -> int:
    """:func:`skip_stream_nb` over the one instrument's ``ohlcv`` bars, stopping also at a bar
    with a signal when ``signals`` (one column) has rows, and at the first bar that ends after
    the next timer's time (``due_tick``: the last tick at or before it,
    :func:`simulator.nb.times.ticks_upto_ms_nb`; int64's largest for no timer). Bar ends are
    read from the next bar's time as the walk goes, so the times are in cache when the event
    stopping it reads its own (a cache miss per event otherwise: a quarter of an SMA run's
    loop); without a timer the times are not read, and :func:`prefetch_event_bar_nb` asks for
    the stopping bar's. The last bar, whose end is not in ``times``, is left to
    :func:`is_quiet_nb`. Walked bar by bar: the signal and time tests stop it too, and between
    two events the walk is short."""
    last = min(limit, times.shape[0] - 1)
    if signals.shape[0] > 0:
        while (
            t < last
            and ohlcv[t, 0, 2] > lo
            and ohlcv[t, 0, 1] < hi
            and signals[t, 0] == 0
            and times[t + 1] <= due_tick
        ):
            t += 1
        return t
    if due_tick == S.NO_TIMER:
        while t < last and ohlcv[t, 0, 2] > lo and ohlcv[t, 0, 1] < hi:
            t += 1
        return t
    while t < last and ohlcv[t, 0, 2] > lo and ohlcv[t, 0, 1] < hi and times[t + 1] <= due_tick:
        t += 1
    return t


@kernel_jit_inline
def next_signal_nb(st: S.SimState, t: int, last: int) -> int:
    """The first bar from t (up to ``last``) with a signal, for a one-instrument run that
    nothing but a signal can wake: nothing rests, no timer is set. Only ``sig_bars`` is read:
    a cursor into it moves to the first entry at or after t (one step a jump, in a run).

    Walking the bars instead would cost a year of minutes 1 ms, mostly to bring in the bars
    the events then read; scanning the codes, 0.5 ms. What the signal after the one returned
    reads (its prices, time and code, and the next bar's prices, where its order fills) is
    prefetched, so it is in cache by the time the loop gets there."""
    if t >= last:
        return t
    bars = st.sig_bars
    c = st.counters
    cur = c[S.C_SIG_CURSOR]
    while cur > 0 and bars[cur - 1] >= t:
        cur -= 1
    while bars[cur] < t:  # the last entry is the end (n): never below t
        cur += 1
    c[S.C_SIG_CURSOR] = cur
    nxt = bars[cur]
    if nxt >= last:
        return last
    after = bars[cur + 1]  # (nxt is a signal, so an entry follows it)
    if after < st.ohlcv.shape[0]:  # (a prefetch past the last row would be harmless, and useless)
        # The bar and the one its order fills on, in each field's column (Fortran order: one
        # line of a column holds eight bars, so one prefetch a field nearly always covers both)
        for k in range(4):
            prefetch_row(st.ohlcv[:, 0, k], after + 1)
        prefetch_row(st.times, after)
        prefetch_row(st.signals, after)  # its code: nothing else reads the codes now
    return nxt


@kernel_jit_inline
def prefetch_event_bar_nb(st: S.SimState, t: int) -> None:
    """Start loading what the event at bar t reads that the walk to it did not: its open and
    close (the walk read only lows and highs) and its time. Asked for together, the three
    cache misses overlap instead of stalling the event one after another."""
    prefetch_row(st.ohlcv[:, 0, 0], t)
    prefetch_row(st.ohlcv[:, 0, 3], t)
    prefetch_row(st.times, t)


@kernel_jit_inline
def skip_quiet_nb(st: S.SimState, t: int) -> int:
    """The first bar from t on that :func:`is_quiet_nb` does not call quiet, or a bar where
    that check must be made (a timer's or the start's bar). One tight pass over the bars: the
    state cannot change while bars are skipped, so everything but the prices is read once."""
    c = st.counters
    n = st.times.shape[0]
    if c[S.C_N_MARKET] > 0 or c[S.C_N_TRAIL] > 0 or st.params[S.P_WANTS_BARS] > 0:
        return t
    if risk_watch_nb(st):
        return t
    limit = n
    if c[S.C_STARTED] == 0:
        limit = min(limit, int(st.params[S.P_START_BAR]))
    due_risk = risk_bar_nb(st)
    if due_risk >= 0:
        limit = min(limit, due_risk)
    due = c[S.C_NEXT_TIMER]
    k = st.bounds.shape[0]
    signals = st.signals.shape[0] > 0 and c[S.C_STARTED] != 0
    funding = st.funding.shape[0] > 0
    # One instrument without the float32 streams (MarketData.streams), or with signals: its
    # rows are walked with its bar times, the timer tested as the walk goes; or, when only a
    # signal can wake the run (no timer, nothing resting), it jumps to the next signal bar.
    rows = signals or st.lows.shape[0] < limit
    if k == 1 and not funding and rows:
        lo = st.bounds[0, 0]
        hi = st.bounds[0, 1]
        if signals and due == S.NO_TIMER and lo == -np.inf and hi == np.inf:
            return next_signal_nb(st, t, min(limit, n - 1))
        sig = st.signals if signals else st.signals[:0]
        stop = skip_rows_nb(st.ohlcv, sig, st.times, ticks_upto_ms_nb(st, due), lo, hi, t, limit)
        if stop != t:
            prefetch_event_bar_nb(st, stop)
        return stop
    if due != S.NO_TIMER:
        # Bars before the one holding the due time end at or before it.
        last_tick = ticks_upto_ms_nb(st, due)
        limit = min(limit, max(int(np.searchsorted(st.times, last_tick, side="right")) - 1, 0))
    if k == 1 and not funding:
        # The float32 streams of a sweep: a quarter of the traffic.
        return skip_stream_nb(st.lows, st.highs, st.bounds[0, 0], st.bounds[0, 1], t, limit)
    while t < limit:
        for i in range(k):
            if st.ohlcv[t, i, 2] <= st.bounds[i, 0] or st.ohlcv[t, i, 1] >= st.bounds[i, 1]:
                return t
            if signals and st.signals[t, i] != 0:
                return t
            if funding and st.funding[t, i] != 0.0 and st.pos[i, S.PS_QTY] != 0.0:
                return t
        t += 1
    return t


@kernel_jit_inline
def enter_bar_nb(st: S.SimState, t: int) -> None:
    conservative = st.params[S.P_INTRABAR] > 0
    for i in range(st.path.shape[0]):
        o = st.ohlcv[t, i, 0]
        if np.isnan(o):
            st.path[i, :] = np.nan
            continue
        adverse = 0
        if conservative:
            q = st.pos[i, S.PS_QTY]
            adverse = 1 if q >= 0 else -1
        set_path_nb(st.path[i], o, st.ohlcv[t, i, 1], st.ohlcv[t, i, 2], st.ohlcv[t, i, 3], adverse)
        st.pos[i, S.PS_MARK] = o
        st.pos[i, S.PS_FROM] = 0.0
        st.vol_used[i] = 0.0
    st.counters[S.C_HITS_LEFT] = -1
    if st.funding.shape[0] > 0:  # tested here: a call costs more than the test
        apply_funding_nb(st, t)


@kernel_jit_inline
def order_hit_nb(st: S.SimState, oid: int) -> tuple[float, float]:
    """(position on the path, touch price) for an order, or (-1, nan)."""
    o = st.orders[oid]
    i = int(o[S.O_INST])
    path = st.path[i]
    if np.isnan(path[0]):
        return -1.0, np.nan
    typ = o[S.O_TYPE]
    side = o[S.O_SIDE]
    if typ == K.MARKET:
        return 0.0, path[0]
    lvl = o[S.O_PRICE]
    if (typ == K.LIMIT) == (side > 0):  # buy limit or sell stop: acts on a fall
        p = hit_down_nb(path, lvl)
        if p < 0:
            return -1.0, np.nan
        return p, (path[0] if p == 0.0 else lvl)
    p = hit_up_nb(path, lvl)
    if p < 0:
        return -1.0, np.nan
    return p, (path[0] if p == 0.0 else lvl)


@kernel_jit_inline
def trigger_hit_nb(st: S.SimState, tid: int) -> tuple[float, float, float]:
    tr = st.trig[tid]
    path = st.path[int(tr[S.T_INST])]
    if np.isnan(path[0]):
        return -1.0, np.nan, tr[S.T_REF]
    kind = tr[S.T_KIND]
    if kind == K.TR_CROSS_DOWN:
        p = hit_down_nb(path, tr[S.T_LEVEL])
        return p, (path[0] if p == 0.0 else tr[S.T_LEVEL]), tr[S.T_REF]
    if kind == K.TR_CROSS_UP:
        p = hit_up_nb(path, tr[S.T_LEVEL])
        return p, (path[0] if p == 0.0 else tr[S.T_LEVEL]), tr[S.T_REF]
    direction = 1 if kind == K.TR_TRAIL_LONG else -1
    return trail_hit_nb(path, tr[S.T_REF], tr[S.T_DIST], direction)


@kernel_jit_inline
def intrabar_event_nb(st: S.SimState, t: int, ev: np.ndarray) -> int:
    """Hand out the earliest remaining hit of bar t; EV_NONE when none is left."""
    while True:
        best_pos = np.inf
        best_kind = -1  # 0 liquidation, 1 order, 2 trigger
        best_id = -1
        best_px = np.nan
        if st.params[S.P_LIQUIDATION] > 0:
            for i in range(st.pos.shape[0]):
                liq = st.pos[i, S.PS_LIQ]
                if np.isnan(liq) or np.isnan(st.path[i, 0]):
                    continue
                # Only the part of the bar after the position last changed can liquidate it.
                start = st.pos[i, S.PS_FROM]
                if st.pos[i, S.PS_QTY] > 0:
                    p = hit_down_from_nb(st.path[i], liq, start)
                else:
                    p = hit_up_from_nb(st.path[i], liq, start)
                if p >= 0 and p < best_pos:
                    best_pos, best_kind, best_id = p, 0, i
                    best_px = st.path[i, 0] if p == 0.0 else liq
        # Orders placed and triggers armed during this bar cannot act in it, so the hits of
        # the bar are known after its first scan: once they are all handed out, no scan.
        if st.counters[S.C_HITS_LEFT] != 0:
            hits = 0
            for j in range(st.counters[S.C_N_ACTIVE]):
                oid = st.active[j]
                if st.orders[oid, S.O_PLACED_BAR] >= t or st.orders[oid, S.O_LAST_HIT_BAR] >= t:
                    continue
                # Cheap rejection on the bar's range before the path walk: most resting orders of
                # a grid are far from the bar, and a call per order costs more than the test.
                typ = st.orders[oid, S.O_TYPE]
                if typ != K.MARKET:
                    i = int(st.orders[oid, S.O_INST])
                    lvl = st.orders[oid, S.O_PRICE]
                    if (typ == K.LIMIT) == (st.orders[oid, S.O_SIDE] > 0):
                        if st.ohlcv[t, i, 2] > lvl:
                            continue
                    elif st.ohlcv[t, i, 1] < lvl:
                        continue
                p, px = order_hit_nb(st, oid)
                if p >= 0:
                    hits += 1
                    if p < best_pos or (p == best_pos and best_kind == 1 and oid < best_id):
                        best_pos, best_kind, best_id, best_px = p, 1, oid, px
            for r in range(st.counters[S.C_N_ACTIVE_TRIG]):
                tid = st.trig_live[r]
                if st.trig[tid, S.T_ARMED_BAR] < t:
                    p, px, _ = trigger_hit_nb(st, tid)
                    if p >= 0:
                        hits += 1
                        if p < best_pos:
                            best_pos, best_kind, best_id, best_px = p, 2, tid, px
            st.counters[S.C_HITS_LEFT] = hits
        if best_kind < 0:
            return K.EV_NONE
        if best_kind > 0:
            st.counters[S.C_HITS_LEFT] -= 1
        if best_kind == 0:
            return liquidate_nb(st, best_id, best_px, ev)
        if best_kind == 2:
            disarm_trigger_nb(st, best_id)
            tr = st.trig[best_id]
            tr[S.T_FIRED_BAR] = t
            i = int(tr[S.T_INST])
            st.pos[i, S.PS_MARK] = best_px
            bounds_stale_nb(st)
            write_event_nb(
                st,
                ev,
                K.EV_TRIGGER,
                i,
                best_id,
                tr[S.T_KIND],
                best_px,
                0.0,
                0.0,
                0.0,
                0.0,
                tr[S.T_TAG],
            )
            return K.EV_TRIGGER
        et = execute_order_nb(st, best_id, best_px, ev)
        if et == K.EV_FILL:
            st.pos[int(st.orders[best_id, S.O_INST]), S.PS_FROM] = best_pos
        if et != K.EV_NONE:
            return et
        # The bar's volume allowance was used up: look for the next hit.


@kernel_jit
def expire_ioc_nb(st: S.SimState, t: int, ev: np.ndarray) -> int:
    """Cancel one IOC order that had its first bar (t) and is still open; EV_NONE when none."""
    for j in range(st.counters[S.C_N_ACTIVE]):
        oid = st.active[j]
        o = st.orders[oid]
        if o[S.O_TIF] != K.IOC or o[S.O_PLACED_BAR] >= t:
            continue
        i = int(o[S.O_INST])
        if np.isnan(st.path[i, 0]):
            continue  # the instrument has no bar here: the order has not had its chance yet
        finish_order_nb(st, oid, K.ST_CANCELLED, K.R_IOC_UNFILLED)
        bounds_stale_nb(st)
        write_event_nb(
            st,
            ev,
            K.EV_CANCEL,
            i,
            oid,
            o[S.O_SIDE],
            o[S.O_PRICE],
            o[S.O_FILLED],
            0.0,
            K.R_IOC_UNFILLED,
            o[S.O_QTY] - o[S.O_FILLED],
            o[S.O_TAG],
        )
        return K.EV_CANCEL
    return K.EV_NONE


@kernel_jit_inline
def commit_trailing_nb(st: S.SimState, t: int) -> None:
    """At the end of a bar, carry each trailing trigger's running peak or trough forward."""
    if st.counters[S.C_N_TRAIL] == 0:
        return
    for r in range(st.counters[S.C_N_ACTIVE_TRIG]):
        tid = st.trig_live[r]
        tr = st.trig[tid]
        if tr[S.T_KIND] < K.TR_TRAIL_LONG or tr[S.T_ARMED_BAR] >= t:
            continue
        _, level, ref = trigger_hit_nb(st, tid)
        tr[S.T_REF] = ref
        tr[S.T_LEVEL] = level


@kernel_jit_inline
def needs_growth_nb(st: S.SimState) -> bool:
    c = st.counters
    room = int(st.params[S.P_MAX_ACTIONS]) + 8
    return (
        c[S.C_N_ORDERS] + room >= st.orders.shape[0]
        or c[S.C_N_FILLS] + room >= st.fills.shape[0]
        or c[S.C_N_TRIG] + room >= st.trig.shape[0]
        or c[S.C_N_TIMERS] + room >= st.timers.shape[0]
        or st.pending.shape[0] < pending_need_nb(st)
    )


@kernel_jit
def log_risk_nb(st: S.SimState, t: int, rule: int, code: int, value: float) -> None:
    row = st.counters[S.C_N_RISK_LOG]
    if row < st.risk_log.shape[0]:
        log = st.risk_log[row]
        log[S.RL_BAR] = t
        log[S.RL_TIME] = bar_ms_nb(st, t)
        log[S.RL_RULE] = rule
        log[S.RL_COMMAND] = code
        log[S.RL_VALUE] = value
        log[S.RL_EQUITY] = equity_nb(st)
        st.counters[S.C_N_RISK_LOG] = row + 1


@kernel_jit
def kill_flatten_nb(st: S.SimState, t: int) -> None:
    """The kill switch's last step, at the close of the bar after it tripped (the bot's own
    closing orders have had their bar): cancel whatever still rests and close every position
    left at the close with the taker fee, logged per instrument."""
    st.counters[S.C_FLATTEN_BAR] = 0
    while st.counters[S.C_N_ACTIVE] > 0:
        cancel_order_nb(st, st.active[0], K.R_USER, True)
    bounds_stale_nb(st)
    for i in range(st.pos.shape[0]):
        q = st.pos[i, S.PS_QTY]
        close = st.ohlcv[t, i, 3]
        if q == 0.0 or np.isnan(close):
            continue
        side = -1.0 if q > 0 else 1.0
        px = slipped_price_nb(st, i, side, close, abs(q), t)
        fee = px * abs(q) * st.inst[i, S.I_TAKER]
        slip = abs(px - close) * abs(q)
        apply_fill_nb(st, i, S.KILL_FLATTEN_ORDER, side, abs(q), px, fee, 1.0, 0.0, slip)
        log_risk_nb(st, t, R.RULE_KILL_SWITCH, 0, -q)


@kernel_jit
def risk_command_nb(st: S.SimState, t: int, ev: np.ndarray) -> int:
    """The next command the risk rules send the bot at the close of bar t, logged, as an
    EV_SIGNAL; EV_NONE when none is due."""
    code, rule, value = R.pop_command_nb(st.monitor)
    if code == 0:
        return K.EV_NONE
    log_risk_nb(st, t, rule, code, value)
    if code == C.CMD_KILL:
        st.counters[S.C_FLATTEN_BAR] = min(t + 1, st.times.shape[0] - 1) + 1
    write_event_nb(
        st, ev, K.EV_SIGNAL, 0, -1.0, 0.0, st.pos[0, S.PS_MARK], 0.0, 0.0, float(code), 0.0, 0.0
    )
    return K.EV_SIGNAL


@kernel_jit_inline
def next_event_inline_nb(st: S.SimState, ev: np.ndarray) -> int:
    """Write the next event into ``ev`` and return its type. Inlined into the two drivers'
    loops (``simulator.nb.compiled.run_kernel_nb`` and :func:`step_nb`): a call would pass the
    whole venue state on the stack once per event."""
    c = st.counters
    # Before any event reaches the strategy, the logs must have room for its reaction; queued
    # events included (a strategy answering each refusal with more orders never drains them).
    if needs_growth_nb(st):
        return K.EV_BUFFER_FULL
    head = c[S.C_PEND_HEAD]
    if head < c[S.C_PEND_TAIL]:
        for f in range(ev.shape[0]):
            ev[f] = st.pending[head, f]
        c[S.C_PEND_HEAD] = head + 1
        if head + 1 == c[S.C_PEND_TAIL]:
            c[S.C_PEND_HEAD] = 0
            c[S.C_PEND_TAIL] = 0
        return int(ev[K.E_TYPE])
    n = st.times.shape[0]
    start_bar = int(st.params[S.P_START_BAR])
    while True:
        t = c[S.C_BAR]
        if t >= n:
            c[S.C_ENDED] = 1
            write_event_nb(st, ev, K.EV_END, -1, -1.0, 0.0, np.nan, 0.0, 0.0, 0.0, 0.0, 0.0)
            return K.EV_END
        stage = c[S.C_STAGE]
        if stage == S.STAGE_NEW:
            if c[S.C_BOUNDS_STALE] != 0:
                refresh_bounds_nb(st)
            skipped = skip_quiet_nb(st, t)
            if skipped != t:
                c[S.C_BAR] = skipped
                continue
            if is_quiet_nb(st, t):
                c[S.C_BAR] = t + 1
                continue
            enter_bar_nb(st, t)
            c[S.C_STAGE] = S.STAGE_INTRABAR
            stage = S.STAGE_INTRABAR
        if stage == S.STAGE_INTRABAR:
            # Once the bar's hits are all handed out, only a liquidation can still happen.
            if c[S.C_HITS_LEFT] != 0 or st.params[S.P_LIQUIDATION] > 0:
                et = intrabar_event_nb(st, t, ev)
                if et != K.EV_NONE:
                    return et
            refresh_bounds_nb(st)
            if c[S.C_N_MARKET] > 0:  # IOC orders are counted there
                et = expire_ioc_nb(st, t, ev)
                if et != K.EV_NONE:
                    return et
            commit_trailing_nb(st, t)
            for i in range(st.pos.shape[0]):
                close = st.ohlcv[t, i, 3]
                if not np.isnan(close):
                    st.pos[i, S.PS_MARK] = close
            c[S.C_STAGE] = S.STAGE_START
            stage = S.STAGE_START
        if stage == S.STAGE_START:
            c[S.C_STAGE] = S.STAGE_TIMERS
            stage = S.STAGE_TIMERS
            if t == start_bar and c[S.C_STARTED] == 0:
                c[S.C_STARTED] = 1
                write_event_nb(
                    st,
                    ev,
                    K.EV_START,
                    0 if st.pos.shape[0] else -1,
                    -1.0,
                    0.0,
                    st.ohlcv[t, 0, 3],
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                )
                return K.EV_START
        if stage == S.STAGE_TIMERS:
            refresh_bounds_nb(st)
            if c[S.C_STARTED] != 0 and timer_due_nb(st, t):
                end = bar_end_ms_nb(st, t)
                best = -1
                for j in range(c[S.C_N_TIMERS]):
                    due = st.timers[j, S.TM_DUE]
                    if (
                        st.timers[j, S.TM_ACTIVE] != 0
                        and due < end
                        and (best < 0 or due < st.timers[best, S.TM_DUE])
                    ):
                        best = j
                st.timers[best, S.TM_ACTIVE] = 0
                bounds_stale_nb(st)
                write_event_nb(
                    st,
                    ev,
                    K.EV_TIMER,
                    -1,
                    best,
                    0.0,
                    np.nan,
                    0.0,
                    0.0,
                    float(st.timers[best, S.TM_DUE]),
                    0.0,
                    float(st.timers[best, S.TM_TAG]),
                )
                return K.EV_TIMER
            c[S.C_STAGE] = S.STAGE_SIGNALS
            c[S.C_SIG_INST] = 0
            stage = S.STAGE_SIGNALS
        if stage == S.STAGE_SIGNALS:
            if st.signals.shape[0] > 0 and c[S.C_STARTED] != 0:
                k = st.signals.shape[1]
                while c[S.C_SIG_INST] < k:
                    i = c[S.C_SIG_INST]
                    c[S.C_SIG_INST] = i + 1
                    code = st.signals[t, i]
                    if code != 0 and not np.isnan(st.ohlcv[t, i, 3]):
                        write_event_nb(
                            st,
                            ev,
                            K.EV_SIGNAL,
                            i,
                            -1.0,
                            0.0,
                            st.ohlcv[t, i, 3],
                            0.0,
                            0.0,
                            float(code),
                            0.0,
                            0.0,
                        )
                        return K.EV_SIGNAL
            c[S.C_STAGE] = S.STAGE_RISK
            stage = S.STAGE_RISK
        if stage == S.STAGE_RISK:
            c[S.C_STAGE] = S.STAGE_RISK_POP
            stage = S.STAGE_RISK_POP
            p = st.params
            if c[S.C_FLATTEN_BAR] > 0 and t >= c[S.C_FLATTEN_BAR] - 1:
                kill_flatten_nb(st, t)
            if c[S.C_STARTED] != 0 and (risk_watch_nb(st) or kill_pending_nb(st)):
                R.observe_nb(
                    st.monitor,
                    float(bar_ms_nb(st, t)),
                    equity_nb(st),
                    p[S.P_RISK_DRAWDOWN],
                    p[S.P_RISK_DAILY_LOSS],
                    kill_pending_nb(st) and t >= p[S.P_KILL_BAR],
                )
        if stage == S.STAGE_RISK_POP:
            if R.command_due_nb(st.monitor):
                et = risk_command_nb(st, t, ev)
                if et != K.EV_NONE:
                    return et
            c[S.C_STAGE] = S.STAGE_BAR
            stage = S.STAGE_BAR
        if stage == S.STAGE_BAR:
            c[S.C_STAGE] = S.STAGE_DONE
            if st.params[S.P_WANTS_BARS] > 0 and c[S.C_STARTED] != 0:
                write_event_nb(
                    st, ev, K.EV_BAR, 0, -1.0, 0.0, st.ohlcv[t, 0, 3], 0.0, 0.0, 0.0, 0.0, 0.0
                )
                return K.EV_BAR
        c[S.C_STAGE] = S.STAGE_NEW
        c[S.C_BAR] = t + 1


@kernel_jit
def step_nb(st: S.SimState, actions: np.ndarray, n_actions: int, ev: np.ndarray) -> int:
    """The Python path's one call per event: carry out the last reaction, find the next event.
    The event loop is inlined here as in the compiled driver: a second compiled copy, but
    neither path pays a call per event that passes the whole state on the stack."""
    if n_actions > 0:
        apply_actions_nb(st, actions, n_actions)
    return next_event_inline_nb(st, ev)


@kernel_jit
def finish_nb(st: S.SimState, close_positions: bool) -> None:
    """After the last bar: cancel what rests and, if asked, close every position at the last
    known close with the taker fee (PLATFORM.md §4 ``closeAtEnd``)."""
    n = st.times.shape[0]
    st.counters[S.C_BAR] = n - 1
    while st.counters[S.C_N_ACTIVE] > 0:
        cancel_order_nb(st, st.active[0], K.R_END, False)
    for r in range(st.counters[S.C_N_ACTIVE_TRIG]):
        st.trig[st.trig_live[r], S.T_ACTIVE] = 0.0
    st.counters[S.C_N_ACTIVE_TRIG] = 0
    if close_positions:
        for i in range(st.pos.shape[0]):
            q = st.pos[i, S.PS_QTY]
            if q == 0.0:
                continue
            t = n - 1
            while t > 0 and np.isnan(st.ohlcv[t, i, 3]):
                t -= 1
            close = st.ohlcv[t, i, 3]
            side = -1.0 if q > 0 else 1.0
            px = slipped_price_nb(st, i, side, close, abs(q), t)
            fee = px * abs(q) * st.inst[i, S.I_TAKER]
            apply_fill_nb(st, i, -2, side, abs(q), px, fee, 1.0, 0.0, abs(px - close) * abs(q))
    update_bounds_nb(st)
    st.counters[S.C_BAR] = n
